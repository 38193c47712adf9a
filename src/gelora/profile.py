"""The intrinsic-dimension profile of a model on task data: one ID (with a bootstrap interval) per layer boundary."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import asdict, dataclass, field

import torch

from gelora.distributed import gather_objects, num_processes, process_index
from gelora.errors import GeloraError
from gelora.io import atomic_write_json, read_format_json
from gelora.measure import estimate
from gelora.measure.intrinsic_dimension import check_bootstrap, make_estimator
from gelora.measure.hidden_states import collect_hidden_states

# Below this many points a TwoNN / GRIDE fit says nothing useful about the dimension.
MIN_POINTS = 20
PROFILE_FORMAT = "gelora.profile/1"


@dataclass
class BoundaryID:
    """ID at one layer boundary (index 0 = embedding output, i = output of block i - 1).

    ``id`` is None when undefined (e.g. all points identical), with the cause in ``reason``.
    """

    index: int
    name: str
    id: float | None
    ci_low: float | None
    ci_high: float | None
    n_points: int
    n_used: int = 0
    reason: str | None = None


@dataclass
class Profile:
    """Per-boundary intrinsic dimensions of ``model`` on ``data``.

    Attributes
    ----------
    model : str
        Model name or folder (what ``gelora plan`` loads).
    data : dict
        Where the texts came from (task or file, split, columns, number of texts, max_length ...).
    pooling, estimator : str
    seed : int
    n_points : int
        Points per boundary.
    boundaries : list of BoundaryID
        L + 1 entries.
    bootstrap : int
        Bootstrap resamples behind the intervals.
    timings : dict
        Seconds spent in forward passes (``forward_s``) and in ID estimation (``estimate_s``).
    """

    model: str
    data: dict
    pooling: str
    estimator: str
    seed: int
    n_points: int
    boundaries: list[BoundaryID]
    bootstrap: int = 0
    timings: dict = field(default_factory=dict)

    @property
    def dimensions(self) -> list[float | None]:
        return [b.id for b in self.boundaries]

    @property
    def num_blocks(self) -> int:
        return len(self.boundaries) - 1

    def to_json(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, {"format": PROFILE_FORMAT, **asdict(self)})

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "Profile":
        obj = read_format_json(path, PROFILE_FORMAT, "profile", "gelora profile")
        try:
            obj["boundaries"] = [BoundaryID(**b) for b in obj["boundaries"]]
            return cls(**obj)
        except (KeyError, TypeError) as e:
            raise GeloraError(f"profile {str(path)!r} is malformed ({e})") from None

    def table(self) -> str:
        """A compact text table: boundary, name, ID and interval, points used."""
        lines = [f"{'#':>3}  {'boundary':<16} {'ID':>7}  {'95% CI':<17} {'points':>7}"]
        for b in self.boundaries:
            if b.id is None:
                lines.append(f"{b.index:>3}  {b.name:<16} {'-':>7}  undefined: {b.reason}")
                continue
            ci = f"[{b.ci_low:6.2f}, {b.ci_high:6.2f}]" if b.ci_low is not None else ""
            lines.append(f"{b.index:>3}  {b.name:<16} {b.id:7.2f}  {ci:<17} {b.n_used:>7}")
        return "\n".join(lines)


def boundary_name(index: int) -> str:
    return "embeddings" if index == 0 else f"block {index - 1} out"


def estimate_boundary(index: int, X: torch.Tensor, estimator: str, bootstrap: int, seed: int, **params) -> BoundaryID:
    """ID of one point cloud; undefined (with the reason) instead of an error when the cloud has no dimension."""
    n = X.shape[0]
    name = boundary_name(index)
    if bool((X == X[0]).all()):
        reason = f"all {n} points are identical (e.g. the same first-token vector at the embedding layer)"
        return BoundaryID(index, name, None, None, None, n, 0, reason)
    try:
        with warnings.catch_warnings():  # duplicates dropped by the estimator show up as n_used < n_points
            warnings.simplefilter("ignore")
            r = estimate(X, estimator, n_bootstrap=bootstrap, seed=seed, **params)
    except GeloraError as e:
        return BoundaryID(index, name, None, None, None, n, 0, str(e))
    return BoundaryID(index, name, r.dimension, r.ci_low, r.ci_high, n, r.n_used)


def estimate_boundaries(
    clouds: list[torch.Tensor], estimator: str, bootstrap: int, seed: int, **params
) -> list[BoundaryID]:
    """One ``BoundaryID`` per cloud. Under data parallelism process p estimates boundaries p, p + P, ... and all
    processes receive all results: each estimate depends only on its cloud and ``seed``, so this equals the
    single-process result while the O(N^2 D) neighbour searches are split over the processes."""
    mine = range(process_index(), len(clouds), num_processes())
    local = [estimate_boundary(i, clouds[i], estimator, bootstrap, seed, **params) for i in mine]
    return sorted((b for shard in gather_objects(local) for b in shard), key=lambda b: b.index)


def sample_texts(texts: list, num_samples: int | None, seed: int) -> list:
    """The seeded random subset of ``num_samples`` texts a profile uses, in their original order (all when None
    or when there are no more)."""
    if num_samples is None or len(texts) <= num_samples:
        return texts
    keep = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed))[:num_samples]
    return [texts[i] for i in sorted(keep.tolist())]


def profile_model(
    model,
    tokenizer,
    texts: list[tuple[str, ...]],
    *,
    pooling: str = "tokens",
    estimator: str = "twonn",
    bootstrap: int = 100,
    seed: int = 0,
    num_samples: int | None = 1000,
    max_length: int = 128,
    batch_size: int = 32,
    tokens_per_sequence: int = 8,
    max_points: int | None = None,
    device: str | None = None,
    progress: bool = True,
    model_name: str | None = None,
    data: dict | None = None,
    **estimator_params,
) -> Profile:
    """Profile ``model``: hidden states at every layer boundary on ``texts``, then one ID per boundary.

    Parameters
    ----------
    model : transformers.PreTrainedModel or str
        A loaded model, or a name / folder / ``"minilm"`` (then the backbone is loaded, and the tokenizer too when
        ``tokenizer`` is None).
    tokenizer : transformers.PreTrainedTokenizerBase or None
    texts : list of tuple of str
    pooling, max_length, batch_size, tokens_per_sequence, max_points, device
        See :func:`gelora.measure.hidden_states.collect_hidden_states`.
    estimator : {"twonn", "gride"}
    bootstrap : int
        Bootstrap resamples for the 95% interval of each ID (0: none).
    seed : int
        Seeds the text subset, the token sampling and the bootstrap.
    num_samples : int, optional
        Use a seeded random subset of this many texts (None: all).
    model_name : str, optional
        Recorded in the profile (default: the name given, or the model's ``name_or_path``).
    data : dict, optional
        Provenance of the texts, recorded in the profile.
    **estimator_params
        Passed to the estimator (``discard_fraction``, ``method``, ``range_max``).
    """
    make_estimator(estimator, **estimator_params)  # bad settings fail now, not once per boundary after the forward passes
    check_bootstrap(bootstrap, seed)
    if isinstance(model, str):
        from gelora.models import load_backbone, load_tokenizer

        model_name = model_name or model
        tokenizer = tokenizer or load_tokenizer(model)
        model = load_backbone(model)
    if tokenizer is None:
        raise GeloraError("a loaded model needs its tokenizer; pass tokenizer= (or give the model by name)")
    model_name = model_name or getattr(model, "name_or_path", "") or type(model).__name__
    if num_samples is not None and num_samples < 1:
        raise GeloraError(f"--num-samples must be at least 1 (texts to profile), got {num_samples}")
    texts = sample_texts(texts, num_samples, seed)
    if pooling != "tokens" and len(texts) < MIN_POINTS:
        raise GeloraError(
            f"{len(texts)} texts give {len(texts)} points with {pooling!r} pooling; "
            f"need at least {MIN_POINTS}: raise --num-samples or use more data"
        )

    t0 = time.perf_counter()
    clouds = collect_hidden_states(
        model,
        tokenizer,
        texts,
        pooling=pooling,
        max_length=max_length,
        batch_size=batch_size,
        tokens_per_sequence=tokens_per_sequence,
        max_points=max_points,
        device=device,
        seed=seed,
        progress=progress,
    )
    t1 = time.perf_counter()
    n_points = clouds[0].shape[0]
    if n_points < MIN_POINTS:
        raise GeloraError(
            f"only {n_points} points from {len(texts)} texts; need at least {MIN_POINTS}: "
            "raise --num-samples or --tokens-per-sequence"
        )
    # The neighbour search runs where the model ran: on a GPU it is the O(N^2 D) part that benefits most.
    search_device = next(model.parameters()).device
    clouds = [c.to(search_device) for c in clouds]
    boundaries = estimate_boundaries(clouds, estimator, bootstrap, seed, **estimator_params)
    t2 = time.perf_counter()
    data = {**(data or {}), "n_texts": len(texts), "max_length": max_length}
    if pooling == "tokens":
        data["tokens_per_sequence"] = tokens_per_sequence
    return Profile(
        model=model_name,
        data=data,
        pooling=pooling,
        estimator=estimator,
        seed=seed,
        n_points=n_points,
        boundaries=boundaries,
        bootstrap=bootstrap,
        timings={"forward_s": round(t1 - t0, 3), "estimate_s": round(t2 - t1, 3)},
    )
