"""A frozen ``nn.Linear`` plus a rank-adaptive adapter ``s * V S U^T`` kept in SVD-like form.

Conventions (one layer, ``W0`` of shape ``out x in``)::

    y = W0 x + b + s * V S U^T x,   U: in x r (orthonormal), V: out x r (orthonormal), S: r x r

``U``, ``V`` and ``S`` live in tensors sized for ``r_max``; only the leading ``r`` columns
(the ``rank`` buffer) are used. ``U`` and ``V`` are never touched by the optimizer: they change
only in the geometric step. ``S`` is an ordinary trainable parameter.

The backward pass (one tape, :class:`_AdapterFunction`) also accumulates the two projected
gradients the geometric step needs, ``G U`` and ``G^T V`` with ``G = dL/d(Delta W)``. These are
the K- and L-step directions of the parallel BUG integrator that the paper writes as
``grad_V S^{-T}`` and ``grad_U S^{-1}``; reading them off the tape avoids inverting ``S``,
so ``S = 0`` (the default start, ``Delta W = 0``) is as good as any other value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class _AdapterFunction(torch.autograd.Function):
    """``s * x U S^T V^T`` whose backward also accumulates ``G U`` and ``G^T V`` into the layer."""

    @staticmethod
    def forward(ctx, x, U, S, V, scaling: float, layer: GeoLoRALinear):
        # In the factors' precision also under autocast: the rank-r products are cheap, and the projected
        # gradients feed QR and SVD, which bf16 would spoil (and mixed dtypes would break the backward).
        with torch.autocast(x.device.type, enabled=False):
            x2 = x.reshape(-1, x.shape[-1]).to(U.dtype)
            a = x2 @ U
            out = (a @ S.T) @ V.T * scaling
        ctx.save_for_backward(x2, a, U, S, V)
        ctx.scaling, ctx.layer, ctx.x_shape, ctx.x_dtype = scaling, layer, x.shape, x.dtype
        return out.reshape(*x.shape[:-1], V.shape[0])

    @staticmethod
    def backward(ctx, grad_out):
        x2, a, U, S, V = ctx.saved_tensors
        g = grad_out.reshape(-1, V.shape[0]).to(V.dtype) * ctx.scaling
        gV = g @ V
        grad_x = ((gV @ S) @ U.T).reshape(ctx.x_shape).to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
        grad_S = gV.T @ a if ctx.needs_input_grad[2] else None
        layer = ctx.layer
        if layer.collect_basis_gradients:
            r = U.shape[1]
            with torch.no_grad():
                layer.grad_K[:, :r] += (g.T @ a).to(layer.grad_K.dtype)
                layer.grad_L[:, :r] += (x2.T @ gV).to(layer.grad_L.dtype)
        return grad_x, None, grad_S, None, None, None


@dataclass
class Augmented:
    """One layer's augmented-and-diagonalised factors, before truncation.

    ``U @ diag(sigma) @ V.T``-style: columns sorted by decreasing ``sigma``.
    """

    U: torch.Tensor
    sigma: torch.Tensor
    V: torch.Tensor


def _augment_basis(basis: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Orthonormal ``[basis, new]`` spanning ``[basis, direction]`` with ``new`` orthogonal to ``basis``.

    Householder QR always returns orthonormal columns, also when ``direction`` is zero or
    parallel to ``basis`` (the new columns are then arbitrary and get zero coefficients).
    The first columns of ``Q`` equal ``basis`` up to sign; fixing the sign keeps them equal,
    and taking ``Q`` whole re-orthonormalises the old basis against round-off drift.
    """
    Q, R = torch.linalg.qr(torch.cat([basis, direction], dim=1), mode="reduced")
    r = basis.shape[1]
    signs = torch.sign(torch.diagonal(R)[:r])
    signs[signs == 0] = 1
    Q[:, :r] *= signs
    return Q


class GeoLoRALinear(nn.Module):
    """``nn.Linear`` with a frozen base and a GeoLoRA adapter.

    Parameters
    ----------
    base
        The linear layer to adapt; its parameters are frozen.
    rank
        Initial rank.
    r_min, r_max
        Rank bounds; ``r_max`` is capped at ``min(in_features, out_features)``.
    scaling
        Fixed factor ``s`` of the adapter output.
    init_s
        Initial diagonal of ``S``.
    dropout
        Dropout probability on the adapter input.
    generator
        Random source for the initial orthonormal bases.
    """

    def __init__(
        self,
        base: nn.Linear,
        rank: int,
        r_min: int,
        r_max: int,
        scaling: float = 1.0,
        init_s: float = 0.0,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        n_in, n_out = base.in_features, base.out_features
        self.r_max = min(r_max, n_in, n_out)
        self.r_min = min(r_min, self.r_max)
        rank = min(max(rank, self.r_min), self.r_max)
        self.scaling = float(scaling)
        device = base.weight.device

        def random_orthonormal(n: int) -> torch.Tensor:
            return torch.linalg.qr(torch.randn(n, self.r_max, generator=generator))[0].to(device)

        self.lora_U = nn.Parameter(random_orthonormal(n_in), requires_grad=False)
        self.lora_V = nn.Parameter(random_orthonormal(n_out), requires_grad=False)
        S = torch.zeros(self.r_max, self.r_max, device=device)
        S[range(rank), range(rank)] = init_s
        self.lora_S = nn.Parameter(S)
        self.register_buffer("rank", torch.tensor(rank, dtype=torch.long, device=device))
        self.register_buffer("grad_K", torch.zeros(n_out, self.r_max, device=device), persistent=False)
        self.register_buffer("grad_L", torch.zeros(n_in, self.r_max, device=device), persistent=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self._r = rank  # python copy of ``rank``: avoids a device sync in every forward
        self.collect_basis_gradients = True
        self.truncation_count = 0

    @property
    def r(self) -> int:
        """Current rank."""
        return self._r

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self._r
        U, S, V = self.lora_U[:, :r], self.lora_S[:r, :r], self.lora_V[:, :r]
        delta = _AdapterFunction.apply(self.dropout(x), U, S, V, self.scaling, self)
        return self.base(x) + delta.to(x.dtype)

    def delta_weight(self) -> torch.Tensor:
        """``s * V S U^T`` (shape ``out x in``) at the current rank."""
        r = self._r
        return self.scaling * self.lora_V[:, :r] @ self.lora_S[:r, :r] @ self.lora_U[:, :r].T

    def lora_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """PEFT LoRA factors ``(A, B)`` with ``B @ A == delta_weight()``: ``A = U^T``, ``B = s V S``."""
        r = self._r
        return self.lora_U[:, :r].T, self.scaling * self.lora_V[:, :r] @ self.lora_S[:r, :r]

    def parameter_count(self) -> int:
        """Trainable numbers at the current rank: ``r (in + out) + r^2``."""
        return self._r * (self.in_features + self.out_features) + self._r**2

    def zero_basis_gradients(self) -> None:
        self.grad_K.zero_()
        self.grad_L.zero_()

    @torch.no_grad()
    def augment(self, S_grad: torch.Tensor | None, lr: float) -> Augmented:
        """Basis augmentation and coefficient step of GeoLoRA (parallel BUG), then an SVD.

        With ``K = V S`` and ``L = U S^T`` (so ``Delta W = V S U^T = K U^T = V L^T``), one explicit
        Euler step of each sub-flow from the same tape (paper, Algorithm 1):

        - ``V_hat = [V, V_bar] = qr([V, G U])``,  ``U_hat = [U, U_bar] = qr([U, G^T V])``;
        - ``S_hat = [[S - lr grad_S,        -lr (G^T V)^T U_bar],``
          ``         [-lr V_bar^T (G U),     0                 ]]``;

        the off-diagonal blocks are ``V_bar^T K(lr)`` and ``L(lr)^T U_bar`` (the old-basis parts
        vanish by orthogonality). ``S_grad`` is the full-size gradient of ``lora_S``; ``None`` means ``S`` was already stepped by the optimizer.
        Returns ``V_hat P``, ``sigma``, ``U_hat Q`` for the SVD ``S_hat = P diag(sigma) Q^T``.
        """
        r = self._r
        U, V, S = self.lora_U[:, :r], self.lora_V[:, :r], self.lora_S[:r, :r]
        grad_K, grad_L = self.grad_K[:, :r], self.grad_L[:, :r]
        V_hat = _augment_basis(V, grad_K)
        U_hat = _augment_basis(U, grad_L)
        V_bar, U_bar = V_hat[:, r:], U_hat[:, r:]
        S_hat = torch.zeros(V_hat.shape[1], U_hat.shape[1], dtype=S.dtype, device=S.device)
        S_hat[:r, :r] = S if S_grad is None else S - lr * S_grad[:r, :r]
        S_hat[r:, :r] = -lr * V_bar.T @ grad_K
        S_hat[:r, r:] = -lr * grad_L.T @ U_bar
        P, sigma, Qt = torch.linalg.svd(S_hat, full_matrices=False)
        return Augmented(U=U_hat @ Qt.T, sigma=sigma, V=V_hat @ P)

    @torch.no_grad()
    def set_factors(self, augmented: Augmented, rank: int) -> None:
        """Keep the leading ``rank`` directions of ``augmented``: the (single) truncation of this step."""
        if not self.r_min <= rank <= min(self.r_max, augmented.sigma.numel()):
            raise ValueError(f"rank {rank} outside [{self.r_min}, {self.r_max}] or the augmented rank")
        self.lora_U.zero_()
        self.lora_V.zero_()
        self.lora_S.zero_()
        self.lora_U[:, :rank] = augmented.U[:, :rank]
        self.lora_V[:, :rank] = augmented.V[:, :rank]
        self.lora_S[range(rank), range(rank)] = augmented.sigma[:rank]
        self._set_rank(rank)
        self.truncation_count += 1

    def _set_rank(self, rank: int) -> None:
        self._r = int(rank)
        self.rank.fill_(rank)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._r = int(self.rank)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, r={self._r}, r_max={self.r_max}, s={self.scaling}"
