"""GeLoRA's LoraConfig in TRL: profile a causal LM, plan ranks, train with trl.SFTTrainer, reload with PEFT."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset
from peft import PeftModel
from transformers import LlamaForCausalLM

from gelora.plan import plan_ranks
from gelora.profile import profile_model
from helpers import make_llama, make_tokenizer, prompt_completion_rows

trl = pytest.importorskip("trl")


def test_sft_trainer_trains_and_saves_the_planned_ranks(tmp_path):
    tok = make_tokenizer()
    make_llama(len(tok), seed=2).save_pretrained(tmp_path / "base")  # a seed whose plan has unequal ranks
    tok.save_pretrained(tmp_path / "base")
    model = LlamaForCausalLM.from_pretrained(tmp_path / "base")
    rows = prompt_completion_rows(32)

    profile = profile_model(
        model, tok, [(r["prompt"] + " " + r["completion"],) for r in rows], bootstrap=0, progress=False
    )
    plan = plan_ranks(profile, model, rule="budget", budget_rank=2)
    planned = plan.ranks_by_module()
    assert len(set(planned.values())) > 1  # the test means something only if the ranks differ by block

    args = trl.SFTConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        bf16=False,  # TRL 1.16 defaults to True; Accelerate would leave the trained model's forward under bf16 autocast
        gradient_checkpointing=False,
        max_length=64,
        dataloader_num_workers=0,
    )
    trainer = trl.SFTTrainer(
        model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        peft_config=plan.to_lora_config(task_type="CAUSAL_LM"),
    )
    trainer.train()
    trained = trainer.model.eval()
    trained.save_pretrained(tmp_path / "adapter")

    reloaded = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(tmp_path / "base"), tmp_path / "adapter")
    reloaded.eval()
    ranks = {
        name.removeprefix("base_model.model."): module.r["default"]
        for name, module in reloaded.named_modules()
        if hasattr(module, "lora_A") and "default" in module.r
    }
    assert ranks == planned

    batch = tok([r["prompt"] for r in rows[:4]], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = LlamaForCausalLM.from_pretrained(tmp_path / "base")(**batch).logits
        after, again = trained(**batch).logits, reloaded(**batch).logits
    torch.testing.assert_close(again, after)
    assert not torch.allclose(after, before)  # two steps moved the adapter away from the base model


def test_sft_vs_trl_script_gives_both_trainers_the_same_tokens_in_the_same_order(chat_model, tmp_path):
    from helpers import load_script

    script = load_script("sft_vs_trl")
    out = tmp_path / "trl.json"
    script.main(["--model", chat_model["model"], "--data", chat_model["data"], "--steps", "2", "--batch-size", "3",
                 "--max-length", "40", "--eval-rows", "4", "--seeds", "0", "--out", str(out)])
    result = json.loads(out.read_text())
    (run,) = result["runs"]
    assert run["trl"]["rows_tokenised_differently"] == 0
    assert run["gelora"]["tokens"] == run["trl"]["tokens"] > 0  # the same 6 rows
    assert run["gelora"]["trainable"] == run["trl"]["trainable"]
    assert abs(run["loss_gap"]) < 0.05 and run["ratio"] > 0
