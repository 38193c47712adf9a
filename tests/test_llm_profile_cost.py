"""``benchmarks/llm_profile_cost.py``: GeLoRA's profile + plan cost in an SFT run and the stability of its plans."""

from __future__ import annotations

import json

import pytest
from helpers import load_script, make_sft_folder


cost = load_script("llm_profile_cost")


def test_changed_blocks_counts_differing_ranks():
    assert cost.changed_blocks([1, 2, 3, 4], [1, 3, 3, 5]) == 2
    assert cost.changed_blocks([2, 2], [2, 2]) == 0
    with pytest.raises(ValueError, match="2 and 3 blocks"):
        cost.changed_blocks([1, 2], [1, 2, 3])


def test_cost_share_is_gelora_time_over_the_whole_run():
    assert cost.cost_share(10.0, 1.5, 60) == pytest.approx(0.1)  # 10 s of 10 + 90
    assert cost.cost_share(0.0, 1.0, 5) == 0.0


@pytest.fixture(scope="module")
def gsm8k_like(tmp_path_factory) -> dict[str, str]:
    """A tiny random Llama with a chat template, and question/answer files in GSM8K's columns."""
    return make_sft_folder(tmp_path_factory.mktemp("llm-cost"), n_train=24)


def test_main_times_profiles_plans_and_steps_and_compares_sizes(gsm8k_like, tmp_path, capsys):
    out = tmp_path / "cost.json"
    cost.main(["--model", gsm8k_like["model"], "--data", gsm8k_like["data"], "--sizes", "24,20", "--bootstrap", "20",
               "--budget-rank", "4", "--max-length", "32", "--timed-steps", "1", "--steps", "60",
               "--figures", str(tmp_path / "figures"), "--out", str(out)])
    result = json.loads(out.read_text())
    sizes = result["sizes"]
    assert [s["num_samples"] for s in sizes] == [20, 24]  # ascending, whatever the order given
    for s in sizes:
        assert 20 <= s["n_points"] <= 8 * s["num_samples"]
        assert s["forward_s"] + s["estimate_s"] <= s["profile_seconds"] + 0.01
        assert s["profile_cpu_seconds"] > 0 and set(s["plan_cpu_seconds"]) == {"budget", "lower-bound"}
        assert len(s["dimensions"]) == 3  # embeddings + 2 blocks
    assert result["step_seconds"]["wall"] > 0 and result["step_seconds"]["cpu"] > 0
    for rule, rows in result["stability"].items():
        first, last = rows
        assert first["changed_vs_previous"] is None and last["changed_vs_largest"] == 0
        assert last["changed_vs_previous"] == first["changed_vs_largest"]  # two sizes: the same comparison
        assert first["changed_vs_largest"] == sum(a != b for a, b in zip(first["ranks"], last["ranks"]))
        for row in rows:
            assert len(row["ranks"]) == 2 and set(row["ci_ranks"]) == {"conservative", "liberal"}
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "model_data_plan_budget.png", "model_data_plan_lower_bound.png", "model_data_profile.png"]
    printed = capsys.readouterr().out
    largest = sizes[-1]
    wall = cost.cost_share(largest["profile_seconds"] + largest["plan_seconds"]["budget"],
                           result["step_seconds"]["wall"], 60)
    cpu = cost.cost_share(largest["profile_cpu_seconds"] + largest["plan_cpu_seconds"]["budget"],
                          result["step_seconds"]["cpu"], 60)
    assert f"{wall:.1%} ({cpu:.1%}) of the 60-step run" in printed
