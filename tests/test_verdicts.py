"""``benchmarks/verdicts.py``: GeLoRA's claims are judged only with enough seeds, on the tasks both methods finished."""

from __future__ import annotations

import pytest
from helpers import load_script, ok_row
from scipy.stats import ttest_ind

from gelora.bench.results import RESULTS_FILE, ResultsLog

verdicts = load_script("verdicts")

GELORA = [0.60, 0.55, 0.65]  # per seed
LORA = [0.58, 0.50, 0.60]


def _claims(rows) -> list[str]:
    lines = verdicts.verdict_lines(rows)
    assert lines[:2] == ["### Targets", ""] and lines[-1] == ""
    return lines[2:-1]


def test_one_seed_gives_no_verdict_even_at_equal_scores():
    # chance-level accuracy for both: the old report called this "met"
    rows = [ok_row("rte", m, 0, 0.5) for m in ("gelora", "lora", "adalora")]
    claims = _claims(rows)
    assert len(claims) == 3 and all(c.endswith(": not enough seeds (n = 1)") for c in claims)


def test_one_seed_on_one_side_is_not_enough():
    rows = [ok_row("rte", "gelora", s, 0.6) for s in range(3)] + [ok_row("rte", "lora", 0, 0.5)]
    score, step, _ = _claims(rows)
    assert score.endswith("not enough seeds (n = 1)") and step.endswith("not enough seeds (n = 1)")


def test_three_seeds_give_verdicts_with_the_numbers():
    rows = []
    for seed, (g, lo) in enumerate(zip(GELORA, LORA)):
        for task in ("rte", "mrpc"):
            rows += [
                ok_row(task, "gelora", seed, g, step=1.1, wall=5.0),
                ok_row(task, "lora", seed, lo, step=1.0, wall=4.0),
                ok_row(task, "adalora", seed, 0.4, step=1.2, wall=10.0),
            ]
    score, step, wall = _claims(rows)
    p = ttest_ind(GELORA, LORA, equal_var=False).pvalue  # same scores on both tasks: the task mean is the score
    assert score.startswith("- mean score across tasks ≥ LoRA's at equal trainable params (rte, mrpc): 0.6000 ± 0.0500")
    assert f"(+0.0400; n = 3, 3 seeds; Welch p = {p:.2f})" in score and score.endswith("**met**")
    assert "1.100× (mean over rte, mrpc)" in step and step.endswith("**missed**")  # 10% above LoRA's
    assert "10.0 s vs 20.0 s (0.50×" in wall and wall.endswith("**met**")


def test_squad_f1_enters_the_mean_on_the_scale_of_accuracies():
    # GeLoRA 10 F1 points worse on SQuAD, 0.05 better on rte: a 0..100 F1 would outweigh the accuracy
    rows = [ok_row(task, method, s, score) for s in range(3) for task, method, score in
            (("rte", "gelora", 0.60), ("rte", "lora", 0.55), ("qa:squad_v2", "gelora", 50.0),
             ("qa:squad_v2", "lora", 60.0))]
    score = _claims(rows)[0]
    assert "(rte, qa:squad_v2): 0.5500 ± 0.0000 vs 0.5750 ± 0.0000" in score and score.endswith("**missed**")


def test_lower_score_is_missed():
    rows = [ok_row("rte", m, s, v) for m, scores in (("gelora", LORA), ("lora", GELORA)) for s, v in enumerate(scores)]
    assert _claims(rows)[0].endswith("**missed**")


def test_no_task_in_common_is_not_measured():
    # gelora finished only rte, the baselines only mrpc (this crashed the old report)
    rows = [ok_row("rte", "gelora", s, 0.6) for s in range(2)]
    rows += [ok_row("mrpc", m, s, 0.5) for m in ("lora", "adalora") for s in range(2)]
    claims = _claims(rows)
    assert [c.split(": ", 1)[1] for c in claims] == [
        "not measured (gelora and lora finished no task in common)",
        "not measured (gelora and lora finished no task in common)",
        "not measured (gelora and adalora finished no task in common)",
    ]


def test_no_gelora_runs():
    assert _claims([ok_row("rte", "lora", s, 0.5) for s in range(2)]) == ["- not measured: no finished `gelora` runs"]


def test_script_prints_and_writes_the_verdicts(tmp_path, capsys):
    log = ResultsLog(tmp_path / RESULTS_FILE)
    for seed, (g, lo) in enumerate(zip(GELORA, LORA)):
        log.record(ok_row("rte", "gelora", seed, g))
        log.record(ok_row("rte", "lora", seed, lo))
    log.record({"task": "rte", "method": "adalora", "seed": 0, "status": "failed", "error": "RuntimeError: boom"})
    assert verdicts.main([str(tmp_path), "--out", str(tmp_path / "verdicts.md")]) == 0
    printed = capsys.readouterr().out
    assert "**met**" in printed and "not measured (gelora and adalora" in printed  # a failed run is not a result
    assert (tmp_path / "verdicts.md").read_text() + "\n" == printed


@pytest.mark.parametrize("content", [None, "not json\n"], ids=["missing", "torn"])
def test_script_refuses_a_folder_without_results(tmp_path, capsys, content):
    if content is not None:
        (tmp_path / RESULTS_FILE).write_text(content)
    assert verdicts.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("verdicts: error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _loss_row(method: str, seed: int, loss: float) -> dict:
    return ok_row("sft:gsm8k", method, seed, loss) | {"metric": "eval_loss", "greater_is_better": False}


def test_an_eval_loss_is_judged_lower_is_better_and_never_averaged_with_accuracies():
    losses = {"gelora": [1.20, 1.22, 1.21], "lora": [1.00, 1.01, 1.02]}  # GeLoRA worse: a higher loss
    sft = [_loss_row(m, s, v) for m, values in losses.items() for s, v in enumerate(values)]
    score = _claims(sft)[0]
    assert score.startswith("- mean eval loss across tasks ≤ LoRA's at equal trainable params (sft:gsm8k): 1.2100")
    assert score.endswith("**missed**")
    accuracy = [ok_row("rte", m, s, v) for s in range(3) for m, v in (("gelora", 0.6), ("lora", 0.5))]
    score = _claims(sft + accuracy)[0]  # the loss task is left out of the mean of scores, as the bench's table does
    assert "(rte): 0.6000 ± 0.0000 vs 0.5000 ± 0.0000" in score and score.endswith("**met**")
