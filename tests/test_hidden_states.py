import pytest
import torch
from helpers import FAMILIES, make_texts, tiny_model

from gelora.errors import GeloraError
from gelora.measure.hidden_states import _select_points, _token_scores, collect_hidden_states


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_gives_l_plus_one_clouds(family, tokenizer):
    model = tiny_model(family)
    texts = make_texts(12, pairs=True)
    clouds = collect_hidden_states(model, tokenizer, texts, pooling="tokens", tokens_per_sequence=3, progress=False)
    assert len(clouds) == model.config.num_hidden_layers + 1
    assert {c.shape for c in clouds} == {(36, 32)}  # every text has >= 3 real tokens
    assert all(c.dtype == torch.float32 and c.device.type == "cpu" for c in clouds)


def test_token_sampling_never_picks_padding_or_special_tokens():
    lengths = torch.tensor([2, 5, 9, 12, 1])
    mask = (torch.arange(12) < lengths[:, None]).long()
    special = torch.zeros_like(mask)
    special[:, 0] = 1
    special[torch.arange(5), lengths - 1] = 1
    (rows, cols), src = _select_points(mask, special, "tokens", 4, _token_scores(mask, list(range(5)), seed=0))
    assert bool((mask[rows, cols] == 1).all()) and bool((special[rows, cols] == 0).all())
    eligible = (mask.bool() & ~special.bool()).sum(1)
    assert torch.bincount(rows, minlength=5).tolist() == torch.clamp(eligible, max=4).tolist()
    assert len(set(zip(rows.tolist(), cols.tolist()))) == len(rows)  # no position twice
    assert torch.equal(src, rows)


def _manual(model, tokenizer, texts):
    enc = tokenizer([t[0] for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc, output_hidden_states=True).hidden_states
    return hidden, enc["attention_mask"]


def test_mean_pooling_equals_manual_masked_mean(tokenizer):
    model = tiny_model("bert")
    texts = make_texts(10)
    clouds = collect_hidden_states(model, tokenizer, texts, pooling="mean", batch_size=3, progress=False)
    hidden, mask = _manual(model, tokenizer, texts)
    m = mask.unsqueeze(-1).float()
    for cloud, h in zip(clouds, hidden):
        torch.testing.assert_close(cloud, (h * m).sum(1) / m.sum(1), atol=1e-5, rtol=1e-4)


def test_last_pooling_takes_the_last_real_token_with_right_padding(tokenizer):
    model = tiny_model("llama")
    texts = make_texts(8)
    assert tokenizer.padding_side == "right"
    clouds = collect_hidden_states(model, tokenizer, texts, pooling="last", batch_size=8, progress=False)
    hidden, mask = _manual(model, tokenizer, texts)
    last = mask.sum(1) - 1
    torch.testing.assert_close(clouds[-1], hidden[-1][torch.arange(8), last], atol=1e-5, rtol=1e-4)


def test_sampled_tokens_are_real_token_vectors_of_their_text(tokenizer):
    model = tiny_model("bert")
    texts = make_texts(6)
    clouds = collect_hidden_states(model, tokenizer, texts, tokens_per_sequence=2, batch_size=4, progress=False)
    hidden, mask = _manual(model, tokenizer, texts)
    for k, point in enumerate(clouds[-1]):
        text = k // 2  # points come ordered by text, two per text
        real = hidden[-1][text][mask[text].bool()]
        assert torch.cdist(point[None], real).min() < 1e-4


def test_seed_and_max_points(tokenizer):
    model = tiny_model("bert")
    texts = make_texts(20)
    a = collect_hidden_states(model, tokenizer, texts, seed=1, max_points=50, progress=False)
    b = collect_hidden_states(model, tokenizer, texts, seed=1, max_points=50, progress=False)
    c = collect_hidden_states(model, tokenizer, texts, seed=2, max_points=50, progress=False)
    assert a[0].shape == (50, 32) and torch.equal(a[2], b[2]) and not torch.equal(a[2], c[2])


@pytest.mark.parametrize("kwargs", [{"pooling": "max"}, {"tokens_per_sequence": 0}])
def test_bad_settings(kwargs, tokenizer):
    with pytest.raises(GeloraError):
        collect_hidden_states(tiny_model("bert"), tokenizer, make_texts(3), progress=False, **kwargs)


def test_no_texts(tokenizer):
    with pytest.raises(GeloraError, match="no texts"):
        collect_hidden_states(tiny_model("bert"), tokenizer, [], progress=False)


def test_plain_strings_are_single_texts(tokenizer):
    model = tiny_model("bert")
    texts = make_texts(6)
    plain = collect_hidden_states(model, tokenizer, [t for (t,) in texts], progress=False)
    assert all(torch.equal(a, b) for a, b in zip(plain, collect_hidden_states(model, tokenizer, texts, progress=False)))
    with pytest.raises(GeloraError, match="text 1 is .*give each text as a string, or a pair"):
        collect_hidden_states(model, tokenizer, [texts[0], ("a", "b", "c")], progress=False)
    with pytest.raises(GeloraError, match=r"mix single texts and pairs \(text 0 has 1, text 1 has 2\)"):
        collect_hidden_states(model, tokenizer, [texts[0], ("a", "b")], progress=False)


def test_pairs_are_truncated_to_max_length(tokenizer):
    # [CLS] a [SEP] b [SEP] at max_length 6 leaves 3 content tokens per pair (every sentence has >= 3 words)
    texts = make_texts(10, pairs=True)
    clouds = collect_hidden_states(tiny_model("bert"), tokenizer, texts, tokens_per_sequence=50, max_length=6,
                                   progress=False)
    assert clouds[0].shape == (30, 32)


@pytest.mark.parametrize("pairs, minimum", [(True, 4), (False, 3)])
def test_max_length_without_room_for_content_names_the_minimum(tokenizer, pairs, minimum):
    # Below the minimum the tokenizer cannot truncate and silently returned whole sequences
    texts = make_texts(3, pairs=pairs)
    with pytest.raises(GeloraError, match=f"--max-length {minimum - 1} leaves no room.*use --max-length {minimum}"):
        collect_hidden_states(tiny_model("bert"), tokenizer, texts, max_length=minimum - 1, progress=False)
    assert collect_hidden_states(tiny_model("bert"), tokenizer, texts, tokens_per_sequence=50, max_length=minimum,
                                 progress=False)[0].shape == (3, 32)


def test_a_model_with_a_head_runs_its_backbone_only_and_gives_the_full_models_hidden_states(tokenizer):
    from helpers import make_llama

    model = make_llama(len(tokenizer))  # LlamaForCausalLM: a vocabulary-sized LM head over the blocks
    calls = []
    model.lm_head.register_forward_hook(lambda *args: calls.append(1))
    texts = make_texts(8)
    clouds = collect_hidden_states(model, tokenizer, texts, pooling="mean", batch_size=8, progress=False)
    assert calls == []  # the head never ran
    hidden, mask = _manual(model, tokenizer, texts)  # the full model's forward, head included
    assert len(calls) == 1
    m = mask.unsqueeze(-1).float()
    for cloud, h in zip(clouds, hidden):
        torch.testing.assert_close(cloud, (h * m).sum(1) / m.sum(1), atol=1e-5, rtol=1e-4)
