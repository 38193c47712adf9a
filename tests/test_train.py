"""Every method trains a few steps on a tiny model and writes metrics.json; saved adapters reload exactly."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import tiny_config

from gelora.train import runner


@pytest.fixture
def capture_trained(monkeypatch):
    """Keep the model that the runner saves, to compare it with what loads back from disk."""
    captured = {}
    finish = runner.finish

    def keep(run):
        captured["model"] = run.accelerator.unwrap_model(run.model)
        return finish(run)

    monkeypatch.setattr(runner, "finish", keep)
    return captured


def eval_batch(tiny):
    from gelora.models import load_tokenizer

    tok = load_tokenizer(tiny["model"])
    return dict(tok(["a good movie", "the plot was bad bad"], ["very good", "rather bad"], return_tensors="pt", padding=True))


@pytest.mark.parametrize("method", ["gelora", "lora", "full", "adalora", "eva", "geolora", "gelora-geolora"])
def test_method_trains_writes_metrics_and_reloads(tiny, tmp_path, method, capture_trained):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from gelora.models import load_classifier

    metrics = runner.train(tiny_config(tiny, tmp_path / "run", method=method))

    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert metrics["method"] == method and metrics["metric"] == "accuracy"
    assert [h["step"] for h in metrics["history"]] == [4, 8]
    assert metrics["final"] == metrics["history"][-1]
    assert metrics["best"]["accuracy"] == max(h["accuracy"] for h in metrics["history"])
    assert metrics["median_step_seconds"] > 0 and metrics["wall_seconds"] > 0 and metrics["peak_memory_mb"] > 0
    assert (tmp_path / "run" / "checkpoint" / "latest").exists()
    if method in ("gelora", "gelora-geolora"):
        assert (tmp_path / "run" / "profile.json").exists() and (tmp_path / "run" / "plan.json").exists()
        assert metrics["plan_source"] == "profiled" and metrics["profile_seconds"] > 0

    trained = capture_trained["model"].eval()
    if method == "full":
        assert metrics["trainable_params"] == metrics["total_params"]
        reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    else:
        assert 0 < metrics["trainable_params"] < metrics["total_params"] / 10
        reloaded = PeftModel.from_pretrained(load_classifier(tiny["model"], 2), tmp_path / "run" / "adapter")
    if "geolora" in method:
        history = json.loads((tmp_path / "run" / "rank_history.json").read_text())
        assert history[-1]["ranks"] == metrics["ranks"] and history[-1]["parameters"] == metrics["trainable_params"]
        assert (tmp_path / "run" / "rank_history.png").stat().st_size > 0
    batch = eval_batch(tiny)
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(**batch).logits, trained(**batch).logits, rtol=0, atol=1e-6)


def test_regression_task_uses_one_output_and_correlations(tiny, tmp_path):
    metrics = runner.train(tiny_config(tiny, tmp_path / "run", task="glue/stsb", epochs=1))
    assert metrics["metric"] == "pearson"
    assert set(metrics["final"]) >= {"pearson", "spearman", "train_loss"}


def test_same_seed_same_result_and_no_state_leaks(tiny, tmp_path):
    first = runner.train(tiny_config(tiny, tmp_path / "a", max_steps=3, seed=3))
    assert first["steps"] == 3 and first["final"]["epoch"] == pytest.approx(0.75)  # max_steps stops mid-epoch
    runner.train(tiny_config(tiny, tmp_path / "other", max_steps=2, seed=4, method="full"))
    again = runner.train(tiny_config(tiny, tmp_path / "b", max_steps=3, seed=3))
    assert first["history"] == again["history"]
    finished = runner.train(tiny_config(tiny, tmp_path / "a", max_steps=3, seed=3, resume=True))
    assert finished == json.loads(json.dumps(first))  # resuming a finished run returns its metrics


def test_report_to_tensorboard_logs_loss_lr_and_metrics(tiny, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics = runner.train(tiny_config(tiny, tmp_path / "run", method="geolora", max_steps=3,
                                       report_to=["tensorboard"]))
    events = list((tmp_path / "run" / "logs" / "gelora").glob("events.out.tfevents.*"))  # (hparams: a sub-run)
    assert len(events) == 1
    logged = EventAccumulator(str(events[0].parent)).Reload()
    tags = set(logged.Tags()["scalars"])
    assert {"train/loss", "train/lr", "eval/accuracy", "total_rank"} <= tags
    assert [e.step for e in logged.Scalars("train/loss")] == [1, 2, 3]
    assert logged.Scalars("eval/accuracy")[-1].value == pytest.approx(metrics["final"]["accuracy"])
    assert logged.Scalars("total_rank")[-1].value == sum(metrics["ranks"].values())


def test_unknown_or_missing_tracker_is_refused_before_work(tiny, tmp_path):
    from gelora.errors import GeloraError

    with pytest.raises(GeloraError, match="not a tracker"):
        runner.train(tiny_config(tiny, tmp_path / "run", report_to=["tensorbored"]))
    assert not (tmp_path / "run").exists()


def test_a_continued_adalora_run_records_the_longer_schedule(tiny, tmp_path):
    settings = dict(method="adalora", max_train_samples=16, batch_size=8, rank=2)
    runner.train(tiny_config(tiny, tmp_path / "run", max_steps=4, **settings))
    continued = runner.train(tiny_config(tiny, tmp_path / "run", max_steps=20, resume=True, **settings))
    straight = runner.train(tiny_config(tiny, tmp_path / "straight", max_steps=20, **settings))
    assert continued["adalora"] == straight["adalora"] == {"tinit": 2, "tfinal": 4, "deltaT": 1}


def test_a_finished_run_continues_for_more_epochs(tiny, tmp_path):
    one = runner.train(tiny_config(tiny, tmp_path / "run", epochs=1))
    more = runner.train(tiny_config(tiny, tmp_path / "run", epochs=3, resume=True))
    assert [h["step"] for h in more["history"]] == [4, 8, 12] and more["history"][0] == one["history"][0]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 12
    again = runner.train(tiny_config(tiny, tmp_path / "run", epochs=3, resume=True))
    assert again == json.loads(json.dumps(more))  # nothing more to do: the finished metrics
    from gelora.errors import GeloraError

    shorter = r"finished --epochs 3; a run can be continued for more, not shortened \(asked: --epochs 2\)$"
    with pytest.raises(GeloraError, match=shorter):
        runner.train(tiny_config(tiny, tmp_path / "run", epochs=2, resume=True))
