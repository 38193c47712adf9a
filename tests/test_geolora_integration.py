"""GeoLoRA on a tiny BERT: plain loop, HF Trainer, PEFT export, merge, save/load, target errors."""

import copy

import pytest
import torch
import transformers
from peft import PeftModel

from gelora.errors import GeloraError
from gelora.geolora import (
    GeoLoRACallback,
    GeoLoRAConfig,
    GeoLoRAIntegrator,
    apply_geolora,
    export_to_peft,
    geolora_layers,
    load_geolora,
    merge,
    ranks,
    save_geolora,
    trainable_parameter_count,
)

TARGETS = ["query", "key", "value", "dense"]




def tiny_bert(hidden_size=32):
    torch.manual_seed(0)
    config = transformers.BertConfig(
        hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=100, num_labels=2
    )
    return transformers.BertForSequenceClassification(config).eval()


def batch(n=8, length=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {
        "input_ids": torch.randint(0, 100, (n, length), generator=g),
        "attention_mask": torch.ones(n, length, dtype=torch.long),
        "labels": torch.randint(0, 2, (n,), generator=g),
    }


def geolora_bert(steps=6, **overrides):
    """(base copy, trained GeoLoRA model, integrator) after a few plain-loop steps."""
    base = tiny_bert()
    model = apply_geolora(
        copy.deepcopy(base),
        GeoLoRAConfig(TARGETS, r_init=4, r_max=8, tau=0.1, modules_to_save=["classifier"], **overrides),
    )
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    integrator = GeoLoRAIntegrator(model, optimizer)
    data = batch()
    for _ in range(steps):
        model(**data).loss.backward()
        integrator.step()
    return base, model.eval(), integrator


@torch.no_grad()
def logits(model, data):
    return model(input_ids=data["input_ids"], attention_mask=data["attention_mask"]).logits


def test_plain_loop_trains_tiny_bert():
    base, model, integrator = geolora_bert(steps=10)
    names = list(geolora_layers(model))
    assert len(names) == 2 * 6 + 1  # q, k, v, attention out, intermediate, output per layer + pooler
    assert all(p.requires_grad == ("lora_S" in n or "classifier" in n) for n, p in model.named_parameters())
    current = integrator.ranks()
    assert set(current) == set(names) and all(1 <= r <= 8 for r in current.values())
    assert len(integrator.rank_history) == 11
    expected = sum(r * (m.in_features + m.out_features) + r * r for r, m in zip(current.values(), geolora_layers(model).values()))
    assert integrator.trainable_parameter_count() == expected + 32 * 2 + 2
    assert not torch.allclose(logits(model, batch(seed=2)), logits(base, batch(seed=2)))
    assert {layer.truncation_count for layer in geolora_layers(model).values()} == {10}


def test_rank_pattern_sets_initial_ranks():
    name = "bert.encoder.layer.0.attention.self.query"
    model = apply_geolora(tiny_bert(), GeoLoRAConfig(TARGETS, r_init=4, r_max=8, rank_pattern={name: 7}))
    assert ranks(model)[name] == 7 and ranks(model)["bert.encoder.layer.1.attention.self.query"] == 4
    with pytest.raises(GeloraError, match="rank_pattern"):
        apply_geolora(tiny_bert(), GeoLoRAConfig(TARGETS, rank_pattern={"bert.nothing": 2}))


def test_regex_targets_and_unmatched_target_error():
    model = apply_geolora(tiny_bert(), GeoLoRAConfig(r".*attention\.self\.(query|value)", r_init=2))
    assert len(geolora_layers(model)) == 4
    with pytest.raises(GeloraError, match=r"\['q_proj'\].*'query'"):
        apply_geolora(tiny_bert(), GeoLoRAConfig(["query", "q_proj"]))
    with pytest.raises(GeloraError, match="matches no Linear"):
        apply_geolora(tiny_bert(), GeoLoRAConfig(r"nothing.*"))
    with pytest.raises(GeloraError, match="modules_to_save"):
        apply_geolora(tiny_bert(), GeoLoRAConfig(["query"], modules_to_save=["head"]))


def test_hf_trainer_with_callback(tmp_path):
    model = apply_geolora(tiny_bert(), GeoLoRAConfig(TARGETS, r_init=4, r_max=8, modules_to_save=["classifier"]))
    data = batch(n=16)
    dataset = [{k: v[i] for k, v in data.items()} for i in range(16)]
    integrator = GeoLoRAIntegrator(model)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=4, learning_rate=1e-2,
        report_to=[], use_cpu=True, save_strategy="no", logging_strategy="no", dataloader_num_workers=0,
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=dataset, callbacks=[GeoLoRACallback(integrator)])
    trainer.train()
    assert integrator.optimizer is not None and integrator.step_count == 4
    assert {layer.truncation_count for layer in geolora_layers(model).values()} == {4}
    assert all(torch.isfinite(layer.lora_S).all() for layer in geolora_layers(model).values())


def test_export_to_peft_matches_geolora_outputs(tmp_path):
    base, model, _ = geolora_bert(scaling=0.5)
    assert len(set(ranks(model).values())) > 1, "ranks differ per module, so rank_pattern is exercised"
    data = batch(seed=3)
    expected = logits(model, data)
    export_to_peft(model, tmp_path / "peft")
    peft_model = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "peft").eval()
    torch.testing.assert_close(logits(peft_model, data), expected, atol=1e-5, rtol=0)
    for name, r in ranks(model).items():
        assert peft_model.base_model.model.get_submodule(name).lora_A["default"].weight.shape[0] == r


def test_merge_matches_geolora_outputs():
    _, model, _ = geolora_bert(scaling=0.5)
    data = batch(seed=4)
    expected = logits(model, data)
    merged = merge(copy.deepcopy(model))
    assert not geolora_layers(merged)
    assert all(type(m) is torch.nn.Linear for n, m in merged.named_modules() if n.endswith(("query", "dense")))
    torch.testing.assert_close(logits(merged, data), expected, atol=1e-5, rtol=0)


def test_save_load_round_trip(tmp_path):
    base, model, integrator = geolora_bert()
    save_geolora(model, tmp_path / "geo")
    loaded = load_geolora(copy.deepcopy(base), tmp_path / "geo").eval()
    assert ranks(loaded) == ranks(model)
    assert trainable_parameter_count(loaded) == integrator.trainable_parameter_count()
    data = batch(seed=5)
    torch.testing.assert_close(logits(loaded, data), logits(model, data), atol=1e-6, rtol=0)
    with pytest.raises(GeloraError, match="no GeoLoRA adapter"):
        load_geolora(tiny_bert(), tmp_path)
    with pytest.raises(GeloraError, match=r"trained on layers of other sizes .*saved \(32, \d+\), this model \(48, \d+\)"):
        load_geolora(tiny_bert(hidden_size=48), tmp_path / "geo")  # the same module names, wider layers
