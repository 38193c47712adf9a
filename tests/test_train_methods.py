"""AdaLoRA and EVA are wired the way their papers (and PEFT) need: reallocation, regulariser, data-driven init."""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from helpers import tiny_config

from gelora.models import load_tokenizer
from gelora.train import runner
from gelora.train.methods import BuildContext, method_class
from gelora.train.tasks import make_task


def built(tiny, tmp_path, method, total_steps=8, **overrides):
    """The method object, the model it builds for the tiny rte task, and the task's data."""
    from accelerate import Accelerator

    config = tiny_config(tiny, tmp_path, method=method, max_eval_samples=8, **overrides)
    task = make_task(config)
    tokenizer = load_tokenizer(config.model)
    data = task.load(tokenizer)
    chosen = method_class(method)(config)
    model = chosen.build(task.build_model(), BuildContext(config, task, data, tokenizer, Accelerator(), total_steps))
    return chosen, model, data


def test_adalora_loss_includes_orthogonal_regulariser(tiny, tmp_path):
    _, model, data = built(tiny, tmp_path, "adalora")
    model = model.eval()
    batch = data.collate(data.train[:4])
    out = model(**batch)
    regs = [
        torch.linalg.matrix_norm((p @ p.T if "lora_A" in n else p.T @ p) - torch.eye(p.shape[0 if "lora_A" in n else 1]))
        for n, p in model.named_parameters()
        if "lora_A" in n or "lora_B" in n
    ]
    expected_reg = 0.5 * torch.stack(regs).mean()
    assert expected_reg > 0.01
    torch.testing.assert_close(out.loss - F.cross_entropy(out.logits, batch["labels"]), expected_reg)


def test_adalora_update_and_allocate_every_step_reallocates_ranks(tiny, tmp_path, monkeypatch):
    from peft.tuners.adalora import AdaLoraModel

    calls = []
    original = AdaLoraModel.update_and_allocate
    monkeypatch.setattr(
        AdaLoraModel, "update_and_allocate", lambda self, step: (calls.append(step), original(self, step))[1]
    )
    metrics = runner.train(tiny_config(tiny, tmp_path / "run", method="adalora", epochs=3))
    assert calls == list(range(metrics["steps"]))
    ranks = list(metrics["ranks"].values())
    # init_r = 6 everywhere at the start; the budget leaves an average of target_r = 4, unevenly spread.
    assert sum(ranks) == 4 * len(ranks) and len(set(ranks)) > 1
    saved = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert saved["init_r"] == 6 and saved["target_r"] == 4 and saved["total_step"] == metrics["steps"]
    assert saved["rank_pattern"]


def test_eva_initialises_from_svd_and_redistributes_ranks(tiny, tmp_path):
    eva, model, _ = built(tiny, tmp_path, "eva")
    ranks = eva.ranks(model)
    assert sum(ranks.values()) == 4 * len(ranks)  # EVA keeps the total budget of r * modules ...
    assert len(set(ranks.values())) > 1 and max(ranks.values()) <= 2 * 4  # ... and moves it, up to rho * r
    config = model.peft_config["default"]
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            key = name.removeprefix("base_model.model.")
            assert config.rank_pattern.get(key, config.r) == ranks[key]
            a = module.lora_A["default"].weight
            # EVA's A holds right-singular vectors (orthonormal rows); the default Kaiming init does not.
            torch.testing.assert_close(a @ a.T, torch.eye(a.shape[0]), atol=1e-4, rtol=0)


def test_every_adapter_method_trains_the_head_including_the_bert_pooler(tiny, tmp_path):
    # BERT's classifier reads the backbone's pooler (tanh of a dense layer on [CLS]): it is the head's first layer.
    from helpers import tiny_model

    head_modules = make_task(tiny_config(tiny, tmp_path)).head_modules
    assert head_modules(tiny_model("bert", head=True)) == ["classifier", "bert.pooler"]
    assert head_modules(tiny_model("roberta", head=True)) == ["classifier"]  # its head holds its own dense layer
    for method in ("lora", "adalora", "eva", "geolora"):
        (tmp_path / method).mkdir()
        model = built(tiny, tmp_path / method, method)[1]
        trained = {n for n, p in model.named_parameters() if p.requires_grad}
        assert any(".pooler." in n for n in trained) and any("classifier" in n for n in trained), method
        assert not any("encoder.layer.0.attention.self.query.base_layer" in n or n.endswith("query.weight") for n in trained)


def test_geolora_refuses_gpt2_conv1d_before_planning(tiny, tmp_path):
    import pytest
    from helpers import tiny_model

    from gelora.errors import GeloraError

    config = tiny_config(tiny, tmp_path, method="gelora-geolora")
    with pytest.raises(GeloraError, match="GPT-2's Conv1D layers; use --method lora or gelora"):
        method_class("gelora-geolora")(config).build(tiny_model("gpt2", head=True), ctx=None)  # ctx: never reached
