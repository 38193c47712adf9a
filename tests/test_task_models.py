"""Task models (QA, sequence classification) start from the checkpoint's pretrained backbone, whatever name the
task class gives it; only the task head is new, and a model that would train on random backbone weights is refused.
"""

from __future__ import annotations

import pytest
import torch
from helpers import make_llama, make_tokenizer, tiny_config
from safetensors.torch import load_file, save_file

from gelora import logs, models
from gelora.errors import GeloraError
from gelora.train.tasks import make_task


@pytest.fixture
def warned(monkeypatch) -> list[str]:
    """gelora's warnings while loading (recorded here: warn_once says each message once per process)."""
    seen: list[str] = []
    monkeypatch.setattr(logs, "warn_once", seen.append)
    return seen


@pytest.fixture
def backbone_loads(monkeypatch) -> list[str]:
    """The models whose backbone had to be loaded again with AutoModel."""
    calls: list[str] = []
    original = models._load_pretrained_backbone

    def recorded(model, name, stray):
        calls.append(name)
        return original(model, name, stray)

    monkeypatch.setattr(models, "_load_pretrained_backbone", recorded)
    return calls


def causal_lm(folder: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder)


def test_qa_on_a_causal_lm_checkpoint_keeps_its_pretrained_backbone(chat_model, tmp_path, warned):
    # LlamaForQuestionAnswering keeps its backbone under `transformer.`, the causal LM under `model.`
    qa = make_task(tiny_config(chat_model, tmp_path, task="qa")).build_model()
    reference = causal_lm(chat_model["model"])
    assert type(qa).__name__ == "LlamaForQuestionAnswering" and qa.base_model_prefix == "transformer"
    for name, weight in reference.model.state_dict().items():
        assert torch.equal(qa.transformer.state_dict()[name], weight), name
    assert warned == [f"{chat_model['model']}: qa_outputs newly initialised (not in the checkpoint); expected for a "
                      "task head that fine-tuning trains"]


@pytest.mark.parametrize("fixture", ["chat_model", "tiny"])
def test_classifiers_load_their_backbone_directly(fixture, request, tmp_path, warned, backbone_loads):
    from transformers import AutoModel

    source = request.getfixturevalue(fixture)
    model = make_task(tiny_config(source, tmp_path)).build_model()  # glue/rte: two classes
    reference = AutoModel.from_pretrained(source["model"])
    assert backbone_loads == []  # Llama (`model.`) and BERT (`bert.`) find their weights under their own prefix
    for name, weight in reference.state_dict().items():
        assert torch.equal(model.base_model.state_dict()[name], weight), name
    head = "score" if fixture == "chat_model" else "classifier"
    assert len(warned) == 1 and warned[0].startswith(f"{source['model']}: {head} newly initialised")


def test_a_checkpoint_whose_backbone_cannot_be_found_is_refused(tmp_path, backbone_loads):
    folder = tmp_path / "renamed"
    tok = make_tokenizer()
    make_llama(len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    weights = folder / "model.safetensors"
    # a layout neither the QA class nor AutoModel reads: every backbone weight would be random
    save_file({k.replace("model.", "decoder.", 1): v for k, v in load_file(weights).items()}, weights,
              metadata={"format": "pt"})
    with pytest.raises(GeloraError) as refused:
        make_task(tiny_config({"model": str(folder), "data_dir": None}, tmp_path / "run", task="qa")).build_model()
    message = str(refused.value)
    assert backbone_loads == [str(folder)]  # refused only after AutoModel found nothing either
    assert "\n" not in message and str(folder) in message and "LlamaForQuestionAnswering" in message
    assert "transformer.embed_tokens" in message and "qa_outputs" not in message
