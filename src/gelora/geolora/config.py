"""Configuration of GeoLoRA adapters and of their geometric integrator."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields

from gelora.errors import GeloraError
from gelora.io import read_format_json, write_format_json

GEOLORA_FORMAT = "gelora.geolora/1"


@dataclass
class GeoLoRAConfig:
    """Settings for :func:`gelora.geolora.apply_geolora` and the integrator.

    Parameters
    ----------
    target_modules
        Linear modules to adapt: a list of name suffixes (``["query", "value"]`` matches
        ``...attention.self.query``) or one regular expression matched against the full name.
    r_init
        Initial rank of every adapter not listed in ``rank_pattern``.
    rank_pattern
        ``{full module name: initial rank}``; overrides ``r_init`` (for starting from a GeLoRA plan).
    r_min, r_max
        Bounds on every adapter's rank. ``r_max`` is also capped by the layer's dimensions.
    tau
        Relative truncation tolerance: after each geometric step a layer keeps the smallest rank
        whose discarded singular values have Euclidean norm below ``tau * ||S||_F``.
    rank_budget
        Optional total rank over all adapters; when the per-layer ranks exceed it, the
        singular values of all layers are pooled and only the largest are kept.
    scaling
        Fixed factor ``s`` in ``y = W0 x + s * V S U^T x``. It never changes with the rank.
    init_s
        Initial diagonal value of ``S``. ``0`` makes the adapted model equal the base model.
    augment_every
        Basis augmentation + truncation every this many optimizer steps; the steps in between
        only update ``S`` (and other trainable modules) with the user's optimizer, in fixed bases.
        Not the authors' "coefficient steps" (they train the augmented ``S`` between augmentation and
        truncation); 1, the paper's scheme, did better in a check (``docs/geolora.md``).
    geometric_lr
        Step size of the geometric step; ``None`` uses the current learning rate of the
        optimizer's parameter group holding the layer's ``S``.
    dropout
        Dropout on the adapter's input.
    modules_to_save
        Name suffixes of non-adapted modules trained in full (e.g. ``["classifier"]``).
    seed
        Seed for the random orthonormal initial bases.
    """

    target_modules: list[str] | str
    r_init: int = 8
    rank_pattern: dict[str, int] = field(default_factory=dict)
    r_min: int = 1
    r_max: int = 32
    tau: float = 0.15
    rank_budget: int | None = None
    scaling: float = 1.0
    init_s: float = 0.0
    augment_every: int = 1
    geometric_lr: float | None = None
    dropout: float = 0.0
    modules_to_save: list[str] = field(default_factory=list)
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, str):
            if not self.target_modules:
                raise GeloraError("target_modules is empty; give suffix names like ['query', 'value'] or a regex.")
        else:
            self.target_modules = list(self.target_modules)
            if not self.target_modules or not all(isinstance(t, str) and t for t in self.target_modules):
                raise GeloraError("target_modules must be a non-empty list of module-name suffixes or one regex string.")
        self.rank_pattern = {str(k): v for k, v in dict(self.rank_pattern).items()}
        self.modules_to_save = list(self.modules_to_save)
        if not (isinstance(self.r_min, int) and self.r_min >= 1):
            raise GeloraError(f"r_min must be an integer >= 1 (PEFT cannot hold rank 0), got {self.r_min!r}.")
        if not (isinstance(self.r_max, int) and self.r_max >= self.r_min):
            raise GeloraError(f"r_max must be an integer >= r_min={self.r_min}, got {self.r_max!r}.")
        for name, rank in [("r_init", self.r_init), *self.rank_pattern.items()]:
            if not (isinstance(rank, int) and self.r_min <= rank <= self.r_max):
                raise GeloraError(
                    f"Initial rank of {name!r} is {rank!r}; it must be an integer in [r_min, r_max] = "
                    f"[{self.r_min}, {self.r_max}]. Change the rank or the bounds."
                )
        if not 0.0 <= self.tau < 1.0:
            raise GeloraError(f"tau is a relative tolerance in [0, 1), got {self.tau!r}.")
        if self.rank_budget is not None and not (isinstance(self.rank_budget, int) and self.rank_budget >= 1):
            raise GeloraError(f"rank_budget must be a positive integer or None, got {self.rank_budget!r}.")
        if not (isinstance(self.augment_every, int) and self.augment_every >= 1):
            raise GeloraError(f"augment_every must be an integer >= 1, got {self.augment_every!r}.")
        if self.geometric_lr is not None and not self.geometric_lr > 0:
            raise GeloraError(f"geometric_lr must be positive or None, got {self.geometric_lr!r}.")
        if not 0.0 <= self.dropout < 1.0:
            raise GeloraError(f"dropout must be in [0, 1), got {self.dropout!r}.")

    def initial_rank(self, module_name: str) -> int:
        """Initial rank of the adapter on ``module_name``."""
        return self.rank_pattern.get(module_name, self.r_init)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GeoLoRAConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GeloraError(f"Unknown GeoLoRA config keys {unknown}; valid keys are {sorted(known)}.")
        return cls(**data)

    def save(self, path: str | os.PathLike) -> None:
        """Write the config as a versioned JSON document (what :meth:`load` reads)."""
        write_format_json(path, GEOLORA_FORMAT, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> GeoLoRAConfig:
        return cls.from_dict(read_format_json(path, GEOLORA_FORMAT, "GeoLoRA config", "gelora.geolora.save_geolora"))
