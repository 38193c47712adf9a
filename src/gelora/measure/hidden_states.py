"""Hidden states at every layer boundary of a Transformers model, as point clouds for an ID estimator.

A model with L blocks has L + 1 boundaries: the embedding output h_0 and the block outputs h_1..h_L
(``output_hidden_states=True``). Only the sampled points are kept, moved to CPU float32 batch by batch, so memory
grows with the number of points, not with the number of tokens processed.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
from tqdm.auto import tqdm

from gelora.distributed import gather_objects, is_main_process, num_processes, process_index
from gelora.errors import GeloraError
from gelora.utils import resolve_device

POOLINGS = ("tokens", "mean", "first", "last")


def _forward_kwargs(model) -> set[str]:
    """Names the model's ``forward`` accepts (DistilBERT takes no ``token_type_ids``, for one)."""
    return set(inspect.signature(model.forward).parameters)


def text_rows(texts) -> list[tuple[str, ...]]:
    """``texts`` as rows of one text or a pair: a plain string is a one-text row (never a pair of its characters)."""
    rows = [(t,) if isinstance(t, str) else tuple(t) for t in texts]
    bad = next((i for i, row in enumerate(rows) if not 1 <= len(row) <= 2 or not all(isinstance(t, str) for t in row)),
               None)
    if bad is not None:
        raise GeloraError(f"text {bad} is {rows[bad]!r}; give each text as a string, or a pair as (text, text)")
    mixed = next((i for i, row in enumerate(rows) if len(row) != len(rows[0])), None)
    if mixed is not None:  # a batch is cut to its shortest row: pairs would lose their second text silently
        raise GeloraError(f"the texts mix single texts and pairs (text 0 has {len(rows[0])}, text {mixed} has "
                          f"{len(rows[mixed])}); give all as single texts or all as pairs")
    return rows


def check_encoding(tokenizer, texts: list[tuple[str, ...]], max_length: int) -> None:
    """Raise unless ``tokenizer`` can pad and ``max_length`` leaves room for one content token beside the
    special tokens.

    Below that length Transformers' tokenizers cannot truncate: they log an error and return the sequences whole,
    so a pair at ``max_length=2`` came back untruncated, exactly as at 100,000.
    """
    if tokenizer.pad_token is None:
        raise GeloraError("the tokenizer has no pad token; set tokenizer.pad_token (e.g. to eos) or use load_tokenizer")
    pair = bool(texts) and len(texts[0]) == 2
    minimum = tokenizer.num_special_tokens_to_add(pair=pair) + 1
    if max_length < minimum:
        unit = "each pair of texts" if pair else "each text"
        raise GeloraError(
            f"--max-length {max_length} leaves no room for content: the tokenizer adds {minimum - 1} special "
            f"token(s) to {unit}; use --max-length {minimum} or more"
        )


def _token_scores(mask: torch.Tensor, text_ids: list[int], seed: int) -> torch.Tensor:
    """Random sort keys for the real tokens of each row (2.0 on padding), drawn from ``(seed, text index)`` alone.

    So a text yields the same points whatever batch, padding or process it lands in: a run sharded over
    processes samples exactly the tokens a single process does.
    """
    scores = torch.full(mask.shape, 2.0)
    for row, text in enumerate(text_ids):
        real = mask[row].bool()
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, text]).generate_state(1)[0]))
        scores[row, real] = torch.rand(int(real.sum()), generator=generator)
    return scores


def _select_points(
    mask: torch.Tensor,
    special: torch.Tensor,
    pooling: str,
    tokens_per_sequence: int,
    scores: torch.Tensor,
) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor]:
    """Decide which positions of a (B, T) batch become points.

    Returns ``(rows, cols)`` to index every boundary with (None for ``mean``) and the source row of each point.
    """
    batch, length = mask.shape
    rows = torch.arange(batch)
    if pooling == "mean":
        return None, rows
    if pooling == "first":  # first non-pad position: correct for left and right padding alike
        return (rows, mask.float().argmax(dim=1)), rows
    if pooling == "last":  # last non-pad position
        return (rows, length - 1 - mask.flip(1).float().argmax(dim=1)), rows
    # tokens: a seeded random subset of each sequence's real tokens. Special tokens ([CLS], [SEP], BOS) are skipped:
    # at the embedding boundary they are (near-)identical across texts and would only add duplicate points.
    eligible = mask.bool() & ~special.bool()
    scores = scores.masked_fill(~eligible, 2.0)  # ineligible positions sort last
    order = scores.argsort(dim=1)[:, :tokens_per_sequence]
    keep = eligible.gather(1, order)
    r, j = keep.nonzero(as_tuple=True)
    return (r, order[r, j]), r


def _merge_by_text(shards: list[tuple[list[list[torch.Tensor]] | None, list[torch.Tensor]]]) -> list[torch.Tensor]:
    """One cloud per boundary, ordered by text, from the processes' ``(clouds, sources)`` (batch by batch).

    Every text's points come from one batch, in the same order on any process, so a stable sort by text index
    of the shards' concatenation gives the single-process order. A process without batches sends ``None``.
    """
    shards = [(clouds, sources) for clouds, sources in shards if clouds is not None]
    by_text = torch.cat([s for _, sources in shards for s in sources]).argsort(stable=True)
    boundaries = range(len(shards[0][0]))
    return [torch.cat([batch for clouds, _ in shards for batch in clouds[b]])[by_text] for b in boundaries]


@torch.no_grad()
def collect_hidden_states(
    model,
    tokenizer,
    texts: list[tuple[str, ...]],
    *,
    pooling: str = "tokens",
    max_length: int = 128,
    batch_size: int = 32,
    tokens_per_sequence: int = 8,
    max_points: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
) -> list[torch.Tensor]:
    """Point clouds at the L + 1 layer boundaries of ``model`` on ``texts``.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        Any model whose forward returns ``hidden_states`` (encoders, decoders, with or without a head). It is put in
        eval mode and moved to ``device``.
    tokenizer : transformers.PreTrainedTokenizerBase
        Needs a pad token (``gelora.models.load_tokenizer`` sets one for decoders).
    texts : list of str, or of tuple of str
        One per example: a text (a string or a 1-tuple), or a pair (encoded together, as for classification).
    pooling : {"tokens", "mean", "first", "last"}
        ``tokens``: up to ``tokens_per_sequence`` random non-padding, non-special tokens per text (seeded);
        ``mean``: mean over the attention mask; ``first`` / ``last``: the first / last non-padding token.
    max_length, batch_size : int
        Truncation length in tokens (special tokens included; a pair is truncated longest first) and texts per
        forward pass.
    tokens_per_sequence : int
        Cap per text for ``tokens`` pooling.
    max_points : int, optional
        Keep at most this many points (a seeded random subset, the same for every boundary).
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    seed : int
        Seeds the token sampling (per text) and the ``max_points`` subset.
    progress : bool
        Show a progress bar over batches.

    Under data parallelism (``torch.distributed`` initialised, e.g. by ``accelerate launch``) each process runs
    every ``num_processes``-th batch and the points are gathered: every process returns what a single process
    would, from the same batches.

    Returns
    -------
    list of torch.Tensor
        L + 1 float32 CPU tensors of shape (n_points, hidden_size); row k of every tensor comes from the same token
        (or text), ordered by text.
    """
    if pooling not in POOLINGS:
        raise GeloraError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    texts = text_rows(texts)
    if not texts:
        raise GeloraError("no texts to encode; check the data file or task split")
    if tokens_per_sequence < 1 or batch_size < 1:
        raise GeloraError("tokens_per_sequence and batch_size must be >= 1")
    check_encoding(tokenizer, texts, max_length)
    device = resolve_device(device)
    model.eval().to(device)
    # The backbone alone gives the same hidden states; a head (an LLM's vocabulary-sized LM head is a fifth of
    # SmolLM2's forward) would only add time and memory.
    body = getattr(model, "base_model", model)
    accepted = _forward_kwargs(body)

    # Batch texts of similar length together: far less padding to run through the model.
    order = sorted(range(len(texts)), key=lambda i: -sum(len(t) for t in texts[i]))
    clouds: list[list[torch.Tensor]] | None = None
    sources: list[torch.Tensor] = []
    batches = range(0, len(order), batch_size)[process_index() :: num_processes()]
    for start in tqdm(batches, desc="hidden states", unit="batch", disable=not (progress and is_main_process())):
        idx = order[start : start + batch_size]
        columns = list(zip(*(texts[i] for i in idx)))
        enc = tokenizer(
            *columns[:2],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
            return_special_tokens_mask=True,
        )
        special = enc.pop("special_tokens_mask")
        mask = enc["attention_mask"]
        inputs = {k: v.to(device) for k, v in enc.items() if k in accepted}
        if "use_cache" in accepted:
            inputs["use_cache"] = False
        hidden = getattr(body(**inputs, output_hidden_states=True), "hidden_states", None)
        if not hidden:
            raise GeloraError(f"{type(model).__name__} returns no hidden_states; profile a Transformers encoder/decoder")
        scores = _token_scores(mask, idx, seed) if pooling == "tokens" else None
        where, rows = _select_points(mask, special, pooling, tokens_per_sequence, scores)
        if clouds is None:
            clouds = [[] for _ in hidden]
        for cloud, h in zip(clouds, hidden):
            h = h.float().cpu()
            if where is None:
                m = mask.unsqueeze(-1).float()
                cloud.append((h * m).sum(1) / m.sum(1).clamp_min(1))
            else:
                cloud.append(h[where])
        sources.append(torch.as_tensor(idx)[rows])

    points = _merge_by_text(gather_objects((clouds, sources)))
    if max_points is not None and points[0].shape[0] > max_points:
        generator = torch.Generator().manual_seed(seed)
        subset = torch.randperm(points[0].shape[0], generator=generator)[:max_points].sort().values
        points = [p[subset] for p in points]
    return points
