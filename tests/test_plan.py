import math

import pytest
from peft import get_peft_model
import transformers as tf
from helpers import FAMILIES, family_config, tiny_model

from gelora.errors import GeloraError
from gelora.plan import RankPlan, lora_param_count, plan_ranks, uniform_plan
from gelora.profile import BoundaryID, Profile


def synthetic_profile(ids, half_width=0.5):
    boundaries = [
        BoundaryID(i, f"b{i}", d, None if d is None else d - half_width, None if d is None else d + half_width, 100)
        for i, d in enumerate(ids)
    ]
    return Profile("tiny", {}, "tokens", "twonn", 0, 100, boundaries)


def adapted_ranks(peft_model):
    """Actual LoRA rank of every adapted module, by its name in the base model."""
    return {
        name.removeprefix("base_model.model."): m.r["default"]
        for name, m in peft_model.named_modules()
        if hasattr(m, "lora_A") and "default" in m.lora_A
    }


def lora_params(peft_model):
    return sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)


def test_lower_bound_rule_arithmetic():
    # lb = max(ceil(d_{i+1} - d_i), 0): ceil(2.2)=3, ceil(-1.0)->0, ceil(1.0)=1 (float noise must not round up)
    profile = synthetic_profile([3.0, 5.2, 4.2, 5.2 + 1e-9 - 0.2 + 0.2])
    with pytest.raises(GeloraError, match="4 boundaries.*has 2 blocks"):
        plan_ranks(profile, tiny_model("bert"))
    model = _bert_with_layers(3)
    plan = plan_ranks(profile, model, offset=2, min_rank=3)
    assert [b.lb for b in plan.blocks] == [3, 0, 1]
    assert plan.ranks == [5, 3, 3]  # max(lb + 2, 3)
    literal = plan_ranks(profile, model, offset=0, min_rank=0)
    assert literal.ranks == [3, 0, 1]
    # the conservative end widens every gap by 2 * half_width, the liberal end narrows it
    assert literal.ci_ranks == {"conservative": [4, 0, 2], "liberal": [2, 0, 0]}


def _bert_with_layers(n):
    cfg = family_config("bert")
    cfg.num_hidden_layers = n
    return tf.AutoModel.from_config(cfg)


def test_undefined_boundary_takes_the_nearest_defined_id():
    plan = plan_ranks(synthetic_profile([None, 4.0, 9.0]), tiny_model("bert"), offset=0, min_rank=0)
    assert [b.lb for b in plan.blocks] == [0, 5]
    assert any("boundary 0" in n for n in plan.notes)
    with pytest.raises(GeloraError, match="every boundary ID"):
        plan_ranks(synthetic_profile([None, None, None]), tiny_model("bert"))


@pytest.mark.parametrize("family", FAMILIES)
def test_plan_applies_with_matching_ranks(family):
    model = tiny_model(family)
    plan = plan_ranks(synthetic_profile([2.0, 2.0, 7.4]), model, offset=0, min_rank=0)
    assert plan.ranks == [0, 6]
    peft_model = get_peft_model(model, plan.to_lora_config(lora_dropout=0.0))
    actual = adapted_ranks(peft_model)
    assert actual == plan.ranks_by_module()
    assert not any(name in actual for name in plan.blocks[0].modules)  # rank-0 block: no adapter
    assert lora_params(peft_model) == plan.total_params == lora_param_count(model, plan.ranks_by_module())


@pytest.mark.parametrize("family", ["bert", "gpt2", "qwen2"])
def test_budget_rule_matches_uniform_lora_parameters(family):
    model = tiny_model(family)
    uniform = lora_params(get_peft_model(tiny_model(family), uniform_plan(model, 8).to_lora_config()))
    plan = plan_ranks(synthetic_profile([3.0, 7.3, 8.1]), model, rule="budget", budget_rank=8)
    assert plan.ranks[0] > plan.ranks[1] >= 1
    actual = lora_params(get_peft_model(model, plan.to_lora_config()))
    assert abs(actual / uniform - 1) <= 0.02
    assert plan.params["budget_params"] == uniform == uniform_plan(tiny_model(family), 8).total_params


def test_budget_rule_keeps_min_rank_and_largest_remainder():
    model = _bert_with_layers(4)
    # shape max(lb + 1, 1) = [11, 1, 1, 1] scaled to 4 * 4 = 16 ranks: exact [12.57, 1.14, ...]; min_rank 2 pins the
    # small blocks at 2 and the first takes the remaining 10
    plan = plan_ranks(synthetic_profile([1.0, 11.0, 11.0, 11.0, 11.0]), model, rule="budget", budget_rank=4, min_rank=2)
    assert plan.ranks == [10, 2, 2, 2]
    plan = plan_ranks(synthetic_profile([1.0, 3.0, 4.5, 5.0, 5.0]), model, rule="budget", budget_rank=3, min_rank=1)
    # shape [3, 3, 2, 1] -> scale 12 / 9: exact [4, 4, 2.67, 1.33]; largest remainder gives the spare rank to block 2
    assert plan.ranks == [4, 4, 3, 1] and sum(plan.ranks) == 12


def test_plan_made_on_the_backbone_applies_under_a_task_head():
    plan = plan_ranks(synthetic_profile([1.0, 4.0, 6.0]), tiny_model("bert"))
    classifier = tiny_model("bert", head=True)
    plan.check_model(classifier)
    peft_model = get_peft_model(classifier, plan.to_lora_config(task_type="SEQ_CLS"))
    actual = adapted_ranks(peft_model)
    assert {k.removeprefix("bert."): v for k, v in actual.items()} == plan.ranks_by_module()


def test_alpha_keeps_the_same_scale_everywhere():
    plan = plan_ranks(synthetic_profile([1.0, 4.0, 6.0]), tiny_model("bert"))
    peft_model = get_peft_model(tiny_model("bert"), plan.to_lora_config())
    adapted = [m for _, m in peft_model.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A]
    assert {m.r["default"] for m in adapted} == {4, 3} and {m.scaling["default"] for m in adapted} == {2.0}
    fixed = plan.to_lora_config(lora_alpha=16)
    assert fixed.alpha_pattern == {} and fixed.lora_alpha == 16
    with pytest.raises(GeloraError, match="comes from the plan"):
        plan.to_lora_config(r=4)


def test_plan_from_another_model_is_detected():
    plan = plan_ranks(synthetic_profile([1.0, 4.0, 6.0]), tiny_model("bert"))
    with pytest.raises(GeloraError, match="lacks its module.*encoder.layer.0.attention.self.query"):
        plan.check_model(tiny_model("llama"))


def test_json_round_trip(tmp_path):
    plan = plan_ranks(synthetic_profile([1.0, 4.0, 6.0]), tiny_model("gpt2"), rule="budget", budget_rank=2)
    plan.to_json(tmp_path / "plan.json")
    again = RankPlan.from_json(tmp_path / "plan.json")
    assert again == plan and again.fan_in_fan_out
    with pytest.raises(GeloraError, match="not a gelora plan"):
        (tmp_path / "x.json").write_text("{}")
        RankPlan.from_json(tmp_path / "x.json")


@pytest.mark.parametrize("kwargs", [{"rule": "budget", "budget_rank": 0}, {"rule": "budget"}, {"rule": "magic"},
                                    {"offset": -1}])
def test_bad_plan_settings(kwargs):
    with pytest.raises(GeloraError):
        plan_ranks(synthetic_profile([1.0, 4.0, 6.0]), tiny_model("bert"), **kwargs)


def test_all_zero_plan_cannot_become_a_config():
    plan = plan_ranks(synthetic_profile([5.0, 4.0, 3.0]), tiny_model("bert"), offset=0, min_rank=0)
    assert plan.ranks == [0, 0] and math.isclose(plan.total_params, 0)
    with pytest.raises(GeloraError, match="rank 0"):
        plan.to_lora_config()


def test_budget_plan_survives_a_ci_end_with_no_increase():
    # IDs rise by 0.6 per block with CI half-width 0.5: the point bounds are 1 (ceil 0.6) but at the liberal end
    # (hi_i vs lo_{i+1}) every increase is negative. With offset 0 and min_rank 0 that end has nowhere to put the
    # budget; the plan itself must still be made, reporting that end as all zero.
    model = _bert_with_layers(4)
    profile = synthetic_profile([1.0, 1.6, 2.2, 2.8, 3.4])
    plan = plan_ranks(profile, model, rule="budget", budget_rank=2, offset=0, min_rank=0)
    assert plan.ranks == [2, 2, 2, 2] and plan.ci_ranks["liberal"] == [0, 0, 0, 0]
    with pytest.raises(GeloraError, match="every block has rank 0"):
        plan_ranks(synthetic_profile([3.0, 2.0, 1.0, 1.0, 1.0]), model, rule="budget", budget_rank=2, offset=0, min_rank=0)


# ------------------------------------------------------------------------------ ranks a block cannot use


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_rank": 100000}, "--min-rank 100000 is above the largest rank block 0 can use: 32 = min"),
        ({"offset": 33}, "--offset 33 is above the largest rank"),
        ({"rule": "budget", "budget_rank": 100000}, "--budget-rank 100000 is above .*use --budget-rank 32 or less"),
    ],
)
def test_settings_no_block_can_honour_are_errors(kwargs, message):
    with pytest.raises(GeloraError, match=message):
        plan_ranks(synthetic_profile([1.0, 4.0, 6.0]), tiny_model("bert"), **kwargs)


def test_narrowest_module_sets_the_cap():
    # Qwen2's grouped-query k_proj maps 32 -> 16 (one KV head of 16): no block can use rank 17
    with pytest.raises(GeloraError, match="block 0 can use: 16 = min\\(in, out\\) of layers.0.self_attn.k_proj"):
        plan_ranks(synthetic_profile([1.0, 4.0, 6.0]), tiny_model("qwen2"), min_rank=17)
    with pytest.raises(GeloraError, match="--rank 17 is above"):
        uniform_plan(tiny_model("qwen2"), 17)


def test_lower_bound_rank_above_the_cap_is_capped_with_a_note():
    # lb = [39, 1]: block 0 would want 40, but min(in, out) = 32 for every module of the hidden-32 BERT
    plan = plan_ranks(synthetic_profile([1.0, 40.0, 41.0]), tiny_model("bert"))
    assert [b.lb for b in plan.blocks] == [39, 1] and plan.ranks == [32, 2]
    assert any(n.startswith("block 0: rank capped at 32") and "asked for 40" in n for n in plan.notes)
    assert max(plan.ci_ranks["conservative"]) == 32


def test_budget_rank_above_a_cap_goes_to_the_other_blocks():
    # shape [41, 1, 1, 1] scaled to 4 x 16 = 64 ranks would give block 0 about 60; it is held at 32 and the other
    # three share the remaining 32 ranks: 10.67 each, the two spare ranks by largest remainder (ties in block order)
    model = _bert_with_layers(4)
    plan = plan_ranks(synthetic_profile([1.0, 41.0, 41.0, 41.0, 41.0]), model, rule="budget", budget_rank=16)
    assert plan.ranks == [32, 11, 11, 10]
    assert plan.total_params == plan.params["budget_params"] == uniform_plan(model, 16).total_params
    assert any(n.startswith("block 0: rank capped at 32") for n in plan.notes)


def test_budget_rank_needs_the_budget_rule():
    with pytest.raises(GeloraError, match="--budget-rank only applies to --rule budget"):
        plan_ranks(synthetic_profile([1.0, 4.0, 6.0]), tiny_model("bert"), budget_rank=4)


def test_plan_ranks_takes_options_and_model_objects():
    from gelora.options import PlanOptions

    profile = synthetic_profile([3.0, 7.3, 8.1])
    model = tiny_model("bert")
    by_options = plan_ranks(profile, model, PlanOptions(rule="budget", budget_rank=4), model_name="mine")
    assert by_options == plan_ranks(profile, model, rule="budget", budget_rank=4, model_name="mine")
    assert by_options.model == "mine"
    with pytest.raises(TypeError, match="loaded model.*load_backbone"):
        plan_ranks(profile, "minilm")
