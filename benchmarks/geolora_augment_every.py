"""GeoLoRA's ``augment_every``: one geometric step per optimizer step (the default) against one every N steps.

A toy regression with a known answer: one 8 x 8 linear layer whose target adds a rank-3 matrix to its weights,
full batch, Adam on ``S``; GeoLoRA starts at rank 2 (τ = 0.15, r_max = 8). Prints the final loss and rank of each
setting for each seed, then the mean over seeds. Seconds on a CPU.

    PYTHONPATH=src python benchmarks/geolora_augment_every.py [--every 1 31] [--lr 0.05] [--steps 93] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch import nn

from gelora.geolora import GeoLoRAConfig, GeoLoRAIntegrator, apply_geolora

SIZE, TARGET_RANK, START_RANK = 8, 3, 2


def problem(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Base weights, inputs and targets ``X (W0 + D)^T`` with a rank-3 ``D``."""
    g = torch.Generator().manual_seed(seed)
    base = 0.1 * torch.randn(SIZE, SIZE, generator=g)
    singular = torch.tensor([1.0, 0.6, 0.3])
    delta = torch.randn(SIZE, TARGET_RANK, generator=g) @ torch.diag(singular) @ torch.randn(TARGET_RANK, SIZE,
                                                                                              generator=g) / 3
    inputs = torch.randn(64, SIZE, generator=g)
    return base, inputs, inputs @ (base + delta).T


def train(every: int, lr: float, steps: int, seed: int) -> tuple[float, int]:
    """Final loss and rank of GeoLoRA with a geometric step every ``every`` optimizer steps."""
    base, inputs, targets = problem(seed)
    model = nn.Sequential(nn.Linear(SIZE, SIZE, bias=False))
    model[0].weight.data.copy_(base)
    torch.manual_seed(seed)  # the adapter's random initial bases
    apply_geolora(model, GeoLoRAConfig(["0"], r_init=START_RANK, r_min=1, r_max=SIZE, tau=0.15, augment_every=every))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    integrator = GeoLoRAIntegrator(model, optimizer)

    def loss() -> torch.Tensor:
        return 0.5 * (model(inputs) - targets).pow(2).sum(1).mean()

    for _ in range(steps):
        loss().backward()
        integrator.step()
    with torch.no_grad():
        return loss().item(), integrator.ranks()["0"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, nargs="+", default=[1, 31])
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=93)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    print(f"lr {args.lr}, {args.steps} steps, seeds {args.seeds}")
    for every in args.every:
        results = [train(every, args.lr, args.steps, seed) for seed in args.seeds]
        losses = [loss for loss, _ in results]
        spread = f" ± {statistics.stdev(losses):.3f}" if len(losses) > 1 else ""
        print(f"augment_every={every:<3d} final loss {statistics.fmean(losses):.3f}{spread}; "
              f"per seed (loss, rank): {[(round(loss, 3), rank) for loss, rank in results]}")


if __name__ == "__main__":
    main()
