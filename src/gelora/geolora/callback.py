"""``transformers.Trainer`` integration: a callback around the Trainer's optimizer step."""

from __future__ import annotations

from transformers import TrainerCallback

from gelora.geolora.integrator import GeoLoRAIntegrator


class GeoLoRACallback(TrainerCallback):
    """Runs :class:`GeoLoRAIntegrator` inside ``Trainer``'s loop.

    The Trainer builds its optimizer late, so the callback hands it to the integrator on the
    first optimizer step. The Trainer's gradient clipping (``max_grad_norm``) scales the
    gradients of ``S`` and the heads but cannot reach the projected basis gradients, so a
    clipped geometric step mixes both; set ``max_grad_norm=0`` for exact GeoLoRA steps
    (``gelora train`` applies its clipping factor to the basis gradients too).

    Parameters
    ----------
    integrator : GeoLoRAIntegrator
        Built on the model the Trainer trains; its optimizer may be None (the Trainer's is used), and
        one given must be the one the Trainer steps.

    Attributes
    ----------
    integrator : GeoLoRAIntegrator
        Its ``rank_history`` and ``ranks()`` follow the run.

    Examples
    --------
    >>> integrator = GeoLoRAIntegrator(model)          # doctest: +SKIP
    >>> Trainer(model, args, train_dataset=ds, callbacks=[GeoLoRACallback(integrator)])  # doctest: +SKIP
    """

    def __init__(self, integrator: GeoLoRAIntegrator) -> None:
        self.integrator = integrator

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if self.integrator.optimizer is None:
            self.integrator.optimizer = kwargs["optimizer"]
        self.integrator.before_optimizer_step()

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.integrator.after_optimizer_step()
