"""The intrinsic-dimension profile of a model on task data: one ID (with a bootstrap interval) per layer boundary."""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
import time
import typing
import warnings
from dataclasses import asdict, dataclass, field

import torch

from gelora.distributed import gather_objects, num_processes, process_index
from gelora.errors import GeloraError
from gelora.io import read_format_json, write_format_json
from gelora.measure import estimate
from gelora.measure.intrinsic_dimension import check_bootstrap, make_estimator
from gelora.measure.hidden_states import check_encoding, collect_hidden_states, text_rows
from gelora.options import ProfileOptions
from gelora.utils import resolve_device

# Below this many points a TwoNN / GRIDE fit says nothing useful about the dimension.
MIN_POINTS = 20
PROFILE_FORMAT = "gelora.profile/1"
# Profiles come with 95% intervals unless asked otherwise (``gelora profile`` and ``profile_model`` alike).
DEFAULT_BOOTSTRAP = 100
# What a model must share with the profiled one for a plan from the profile to fit it (``gelora plan --model``).
ARCHITECTURE_KEYS = ("model_type", "hidden_size", "num_hidden_layers")
_KINDS = {int: (numbers.Integral, "an integer"), float: (numbers.Real, "a number"), str: (str, "a string"),
          dict: (dict, "an object"), list: (list, "a list")}


@functools.cache
def _field_kinds(cls: type) -> dict[str, tuple[type, bool]]:
    """``name -> (base type, optional)`` from the annotations of dataclass ``cls``."""
    kinds = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = type(None) in typing.get_args(hint)
        base = args[0] if optional else hint
        kinds[name] = (typing.get_origin(base) or base, optional)
    return kinds


def _check_fields(obj, where: str) -> None:
    """Raise one line naming the first field whose value lacks its annotated type: a hand-edited profile.json
    fails where it is read, not with a traceback deep inside ``gelora plan``."""
    for name, (base, optional) in _field_kinds(type(obj)).items():
        value = getattr(obj, name)
        if value is None and optional:
            continue
        kind, what = _KINDS[base]
        bad = isinstance(value, bool) or not isinstance(value, kind)
        if bad or (base is float and not math.isfinite(value)):
            raise GeloraError(
                f"{where}: {name!r} is {value!r}, not {what}{' or null' if optional else ''}; "
                "fix the file or make it again with `gelora profile`"
            )


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

    def __post_init__(self) -> None:
        _check_fields(self, f"profile boundary {self.index}")


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
    model_config : dict, optional
        The profiled architecture (``ARCHITECTURE_KEYS`` of the model's config), which a model to plan for must
        share; None in profiles written before it was recorded (then only the depth is compared).
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
    model_config: dict | None = None

    def __post_init__(self) -> None:
        _check_fields(self, "profile")

    @property
    def dimensions(self) -> list[float | None]:
        return [b.id for b in self.boundaries]

    @property
    def num_blocks(self) -> int:
        return len(self.boundaries) - 1

    def to_json(self, path: str | os.PathLike) -> None:
        write_format_json(path, PROFILE_FORMAT, asdict(self))

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


def architecture(model) -> dict | None:
    """``ARCHITECTURE_KEYS`` of the model's Transformers config (None for a model without one)."""
    config = getattr(model, "config", None)
    return None if config is None else {key: getattr(config, key, None) for key in ARCHITECTURE_KEYS}


def check_architecture(profile: Profile, model, name: str) -> None:
    """Raise unless ``model`` (called ``name``) has the architecture ``profile`` was measured on.

    The IDs describe that architecture's hidden states; a different model of the same depth would take its ranks
    silently. A copy of the same model elsewhere (or a fine-tune of it) passes. Old profiles record no architecture.
    """
    model_config = architecture(model)
    if not profile.model_config or model_config is None:
        return
    differ = {k: (v, model_config.get(k)) for k, v in profile.model_config.items() if model_config.get(k) != v}
    if differ:
        shown = ", ".join(f"{k} {theirs!r} profiled, {ours!r} here" for k, (theirs, ours) in differ.items())
        raise GeloraError(
            f"the profile was measured on {profile.model!r} and {name!r} is another architecture ({shown}); "
            "plan for the profiled model, or profile this one first"
        )


def _check_texts(texts: list[tuple[str, ...]], options: ProfileOptions) -> None:
    """Texts that can give a profile: some content, and enough distinct texts for MIN_POINTS distinct points."""
    if not texts:
        raise GeloraError("no texts to profile; check the data file or task split")
    if not any(t.strip() for row in texts for t in row):
        raise GeloraError(
            f"none of the {len(texts)} texts has any content (all empty or whitespace); check the data and "
            "--text-columns"
        )
    distinct = len(set(texts))
    per_text = options.tokens_per_sequence if options.pooling == "tokens" else 1
    if distinct * per_text < MIN_POINTS:
        raise GeloraError(
            f"{len(texts)} texts ({distinct} distinct) give at most {distinct * per_text} distinct points with "
            f"{options.pooling!r} pooling; need at least {MIN_POINTS}: raise --num-samples or use more varied data"
        )


def check_profile_settings(
    options: ProfileOptions, *, seed: int = 0, batch_size: int = 32, device: str | None = None, **estimator_params
) -> None:
    """Raise on a setting no profile can use. ``gelora profile`` calls this before reading data or loading the
    model, so bad input fails in a second, not after the load; :func:`profile_model` calls it again."""
    options.validate()
    make_estimator(options.estimator, **estimator_params)
    if seed < 0:
        raise GeloraError(f"--seed must be >= 0 (got {seed}); seeds are non-negative integers")
    check_bootstrap(options.bootstrap, seed)
    if batch_size < 1:
        raise GeloraError(f"--batch-size must be at least 1 (got {batch_size})")
    if options.max_points is not None and options.max_points < MIN_POINTS:
        raise GeloraError(f"--max-points {options.max_points} keeps too few points; use at least {MIN_POINTS}, or no cap")
    resolve_device(device)


def profile_texts(
    tokenizer, texts: list[tuple[str, ...]], options: ProfileOptions, *, seed: int = 0, max_length: int = 128
) -> list[tuple[str, ...]]:
    """The texts a profile uses (the seeded subset), after checking they can give one with this tokenizer: some
    content, enough distinct texts, and a ``max_length`` with room for content. Needs no model."""
    if tokenizer is None:
        raise GeloraError("a loaded model needs its tokenizer; pass tokenizer= (gelora.models.load_tokenizer)")
    texts = sample_texts(text_rows(texts), options.num_samples, seed)
    _check_texts(texts, options)
    check_encoding(tokenizer, texts, max_length)
    return texts


def _options(options: ProfileOptions | None, settings: dict) -> tuple[ProfileOptions, dict]:
    """``options`` (default: ProfileOptions with DEFAULT_BOOTSTRAP) updated by the ProfileOptions fields in
    ``settings``; the rest of ``settings`` are estimator parameters."""
    if options is not None and not isinstance(options, ProfileOptions):
        raise TypeError(f"options must be a gelora.options.ProfileOptions, not {type(options).__name__}")
    names = {f.name for f in dataclasses.fields(ProfileOptions)}
    given = {k: v for k, v in settings.items() if k in names}
    options = dataclasses.replace(options or ProfileOptions(bootstrap=DEFAULT_BOOTSTRAP), **given)
    return options, {k: v for k, v in settings.items() if k not in names}


def profile_model(
    model,
    tokenizer,
    texts: list[tuple[str, ...]],
    options: ProfileOptions | None = None,
    *,
    seed: int = 0,
    max_length: int = 128,
    batch_size: int = 32,
    device: str | None = None,
    progress: bool = True,
    model_name: str | None = None,
    data: dict | None = None,
    **settings,
) -> Profile:
    """Profile ``model``: hidden states at every layer boundary on ``texts``, then one ID per boundary.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A loaded model (``gelora.models.load_backbone(name)`` loads one by name).
    tokenizer : transformers.PreTrainedTokenizerBase
    texts : list of str, or of tuples of one or two str (sentence pairs)
    options : ProfileOptions, optional
        Pooling, estimator, ``num_samples``, ``tokens_per_sequence``, ``max_points``, ``bootstrap`` (default:
        the ProfileOptions defaults with ``bootstrap=DEFAULT_BOOTSTRAP``).
    seed : int
        Seeds the text subset, the token sampling and the bootstrap (>= 0).
    max_length, batch_size, device
        See :func:`gelora.measure.hidden_states.collect_hidden_states`.
    model_name : str, optional
        Recorded in the profile (default: the model's ``name_or_path``).
    data : dict, optional
        Provenance of the texts, recorded in the profile.
    **settings
        Any ProfileOptions field by keyword (``pooling="mean"``, ``num_samples=None`` for all texts), overriding
        ``options``; anything else goes to the estimator (``discard_fraction``, ``method``, ``range_max``).

    Raises
    ------
    GeloraError
        Bad settings or texts (before any forward pass), too few points, or no boundary with an ID.
    """
    if isinstance(model, (str, os.PathLike)):
        raise TypeError(
            f"profile_model takes a loaded model, not the name {str(model)!r}; load it with "
            "gelora.models.load_backbone(name) and load_tokenizer(name)"
        )
    options, estimator_params = _options(options, settings)
    check_profile_settings(options, seed=seed, batch_size=batch_size, device=device, **estimator_params)
    texts = profile_texts(tokenizer, texts, options, seed=seed, max_length=max_length)
    model_name = model_name or getattr(model, "name_or_path", "") or type(model).__name__

    t0 = time.perf_counter()
    clouds = collect_hidden_states(
        model,
        tokenizer,
        texts,
        pooling=options.pooling,
        max_length=max_length,
        batch_size=batch_size,
        tokens_per_sequence=options.tokens_per_sequence,
        max_points=options.max_points,
        device=device,
        seed=seed,
        progress=progress,
    )
    t1 = time.perf_counter()
    n_points = clouds[0].shape[0]
    if n_points < MIN_POINTS:
        raise GeloraError(
            f"only {n_points} points from {len(texts)} texts (at most {options.tokens_per_sequence} content tokens "
            f"per text within --max-length {max_length}); need at least {MIN_POINTS}: raise --num-samples, "
            "--tokens-per-sequence or --max-length"
        )
    # The neighbour search runs where the model ran: on a GPU it is the O(N^2 D) part that benefits most.
    search_device = next(model.parameters()).device
    clouds = [c.to(search_device) for c in clouds]
    boundaries = estimate_boundaries(clouds, options.estimator, options.bootstrap, seed, **estimator_params)
    if all(b.id is None for b in boundaries):
        raise GeloraError(
            f"no layer boundary has an ID (e.g. {boundaries[-1].name}: {boundaries[-1].reason}); "
            "profile more varied texts, or use another --pooling"
        )
    t2 = time.perf_counter()
    data = {**(data or {}), "n_texts": len(texts), "max_length": max_length}
    if options.pooling == "tokens":
        data["tokens_per_sequence"] = options.tokens_per_sequence
    return Profile(
        model=model_name,
        data=data,
        pooling=options.pooling,
        estimator=options.estimator,
        seed=seed,
        n_points=n_points,
        boundaries=boundaries,
        bootstrap=options.bootstrap,
        timings={"forward_s": round(t1 - t0, 3), "estimate_s": round(t2 - t1, 3)},
        model_config=architecture(model),
    )
