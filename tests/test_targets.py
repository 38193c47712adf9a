import pytest
from helpers import FAMILIES, TARGETS_PER_BLOCK, tiny_model
from torch import nn

from gelora.errors import GeloraError
from gelora.plan import find_block_targets, find_blocks
from gelora.plan.targets import is_linear, matches_suffix


@pytest.mark.parametrize("family", FAMILIES)
def test_targets_found_per_block(family):
    model = tiny_model(family)
    targets = find_block_targets(model)
    modules = dict(model.named_modules())
    assert len(targets) == model.config.num_hidden_layers
    for i, block in enumerate(targets):
        assert len(block) == TARGETS_PER_BLOCK[family]
        assert all(is_linear(modules[name]) for name in block)
        assert all(f".{i}." in name for name in block)


def test_targets_under_a_task_head_keep_its_prefix():
    targets = find_block_targets(tiny_model("bert", head=True))
    assert targets[0][0] == "bert.encoder.layer.0.attention.self.query"
    assert "classifier" not in str(targets)


def test_gpt2_conv1d_layers_are_targets():
    names = find_block_targets(tiny_model("gpt2"))[1]
    assert names == ["h.1.attn.c_attn", "h.1.attn.c_proj", "h.1.mlp.c_fc", "h.1.mlp.c_proj"]


def test_suffix_override():
    assert find_block_targets(tiny_model("llama"), ["q_proj", "mlp.down_proj"])[0] == [
        "layers.0.self_attn.q_proj",
        "layers.0.mlp.down_proj",
    ]


def test_unknown_suffix_lists_the_block_modules():
    with pytest.raises(GeloraError, match="qkv.*available.*attention.self.query"):
        find_block_targets(tiny_model("bert"), ["qkv"])


def test_model_without_linear_layers():
    model = nn.Sequential(nn.Embedding(10, 4), nn.ModuleList([nn.LayerNorm(4), nn.LayerNorm(4)]))
    with pytest.raises(GeloraError, match="linear modules: none"):
        find_blocks(model)


def test_suffix_matching_follows_module_boundaries():
    name = "encoder.layer.0.attention.self.query"
    assert matches_suffix(name, ["query"]) and matches_suffix(name, ["self.query"]) and matches_suffix(name, [name])
    assert not matches_suffix(name, ["uery"]) and not matches_suffix(name, ["attention"]) and not matches_suffix(name, [])
