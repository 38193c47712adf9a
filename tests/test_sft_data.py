"""SFT data: formats, loading, completion-only labels, truncation, packing, GSM8K scoring and greedy generation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gelora.errors import GeloraError
from gelora.train.tasks.generation import exact_match, generate_answers, gsm8k_answer
from gelora.train.tasks.sft_data import (
    IGNORE_INDEX,
    SFTFormat,
    detect_format,
    end_of_turn_id,
    load_sft_dataset,
    pack,
    prompt_ids,
    split_conversation,
    tokenize_sft,
)
from helpers import CHAT_TEMPLATE, GENERATION_TEMPLATE, make_llama, make_tokenizer, prompt_completion_rows

GSM8K_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gsm8k"
CONVERSATION = [
    {"role": "system", "content": "the cat"},
    {"role": "user", "content": "how many apples ?"},
    {"role": "assistant", "content": "seven apples"},
    {"role": "user", "content": "the dog ?"},
    {"role": "assistant", "content": "a big dog sleeps"},
]


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


@pytest.fixture(scope="module")
def llama(tok):
    return make_llama(len(tok))


def trained(row: dict) -> list[int]:
    return [t for t in row["labels"] if t != IGNORE_INDEX]


def words(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# --- formats and loading -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "columns, named, expected",
    [
        (["messages", "id"], (None, None), SFTFormat("messages", ("messages",))),
        (["prompt", "completion"], (None, None), SFTFormat("prompt-completion", ("prompt", "completion"))),
        (["messages", "q", "a"], ("q", "a"), SFTFormat("prompt-completion", ("q", "a"))),
    ],
)
def test_detect_format(columns, named, expected):
    assert detect_format(columns, *named) == expected


@pytest.mark.parametrize(
    "columns, named, match",
    [
        (["question", "answer"], (None, None), "no SFT columns.*found: question, answer"),
        (["question", "answer"], ("q", "answer"), "column\\(s\\) q not in the data; available: question, answer; give data with them"),
        (["question", "answer"], ("question", None), "give both"),
    ],
)
def test_detect_format_errors(columns, named, match):
    with pytest.raises(GeloraError, match=match):
        detect_format(columns, *named)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_files_load_alike_with_named_columns(tmp_path, suffix):
    import datasets

    rows = [{"question": f"q{i}", "answer": f"a{i}", "extra": i} for i in range(4)]
    path = tmp_path / f"train{suffix}"
    writer = {".jsonl": "to_json", ".csv": "to_csv", ".parquet": "to_parquet"}[suffix]
    getattr(datasets.Dataset.from_list(rows), writer)(str(path))
    ds = load_sft_dataset(path, prompt_column="question", completion_column="answer")
    assert ds.column_names == ["prompt", "completion"]
    assert ds.to_list() == [{"prompt": r["question"], "completion": r["answer"]} for r in rows]


def test_a_csv_column_of_numbers_is_read_as_text(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("answer,question\n42,six times seven?\n5.5,eleven halves?\n")
    ds = load_sft_dataset(path, prompt_column="question", completion_column="answer")
    assert ds.to_list() == [{"prompt": "six times seven?", "completion": "42"},
                            {"prompt": "eleven halves?", "completion": "5.5"}]
    path.write_text("question,answer\n7,42\n8,\n")  # a hole makes the numbers floats: the empty row is named
    with pytest.raises(GeloraError, match="row 1: no completion \\(an empty cell or null\\)"):
        load_sft_dataset(path, prompt_column="question", completion_column="answer")
    path.write_text("question,answer\n7,42\n8,56\n")
    assert load_sft_dataset(path, prompt_column="question", completion_column="answer").to_list() == [
        {"prompt": "7", "completion": "42"}, {"prompt": "8", "completion": "56"}]


def test_file_without_the_named_columns(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(GeloraError, match="column\\(s\\) problem not in .*d.jsonl \\(train\\); available: question, answer"):
        load_sft_dataset(path, prompt_column="problem", completion_column="answer")


def test_folder_split_and_file_split(tmp_path):
    write_jsonl(tmp_path / "test.jsonl", [{"prompt": "p", "completion": "c"}])
    assert load_sft_dataset(tmp_path, split="test").to_list() == [{"prompt": "p", "completion": "c"}]
    with pytest.raises(GeloraError, match="no validation.jsonl"):
        load_sft_dataset(tmp_path, split="validation")
    with pytest.raises(GeloraError, match="holds one split, not 'test'"):
        load_sft_dataset(tmp_path / "test.jsonl", split="test")
    with pytest.raises(GeloraError, match="does not exist"):
        load_sft_dataset(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(
    "row, match",
    [
        ({"prompt": "p", "completion": "  "}, "row 1: empty completion"),
        ({"prompt": None, "completion": "c"}, "row 1: no prompt \\(an empty cell or null\\)"),
        ({"prompt": "p", "completion": ["c"]}, "row 1: the completion is not text \\(list \\['c'\\]\\)"),
    ],
)
def test_bad_prompt_completion_rows(tmp_path, row, match):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "completion": "c"}, row])
    with pytest.raises(GeloraError, match=match):
        load_sft_dataset(path)


@pytest.mark.parametrize(
    "messages, match",
    [
        (CONVERSATION[:2], "row 1: 'messages' has no assistant turn"),
        (CONVERSATION[2:], "row 1: 'messages' starts with an assistant turn"),
        ([{"role": "user"}], "row 1: 'messages' must be a list of"),
    ],
)
def test_bad_messages_rows(tmp_path, messages, match):
    path = write_jsonl(tmp_path / "d.jsonl", [{"messages": CONVERSATION}, {"messages": messages}])
    with pytest.raises(GeloraError, match=match):
        load_sft_dataset(path)


@pytest.mark.parametrize("reachable", [False, True])
def test_a_hub_dataset_that_cannot_be_loaded_gives_one_line(monkeypatch, reachable):
    import datasets

    offline_during_call = []

    def fail(*args, **kwargs):
        offline_during_call.append(datasets.config.HF_HUB_OFFLINE)  # offline: answer from the cache, no retries
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    monkeypatch.setattr("gelora.models.hub_reachable", lambda: reachable)
    reason = "Couldn't reach" if reachable else "the Hub .* cannot be reached and the local datasets cache"
    match = f"could not load 'openai/gsm8k' \\(config main, split test\\) from the Hub \\({reason}"
    with pytest.raises(GeloraError, match=match) as info:
        load_sft_dataset("openai/gsm8k", config="main", split="test")
    assert "\n" not in str(info.value) and offline_during_call == [not reachable]


@pytest.mark.skipif(not GSM8K_DIR.is_dir(), reason="GSM8K data folder not present")
def test_gsm8k_folder_loads_and_every_reference_has_an_answer():
    ds = load_sft_dataset(GSM8K_DIR, split="test", prompt_column="question", completion_column="answer")
    assert len(ds) == 1319 and ds.column_names == ["prompt", "completion"]
    answers = [gsm8k_answer(c) for c in ds["completion"]]
    tails = [c.rsplit("####", 1)[1].strip().replace(",", "") for c in ds["completion"]]
    assert exact_match(answers, tails) == 1.0


# --- tokenisation --------------------------------------------------------------------------------------------------


def test_prompt_completion_with_chat_template(tok):
    rows = prompt_completion_rows(5)
    data = tokenize_sft(rows, tok, max_length=64)
    assert (data.truncated, data.dropped, len(data.rows)) == (0, 0, 5)
    for row, out, (prompt, completion) in zip(rows, data.rows, data.texts):
        # Loss on the completion and the assistant's end-of-turn token, nothing else.
        assert trained(out) == words(tok, row["completion"] + " <|end|>")
        start = out["labels"].index(trained(out)[0])
        assert out["input_ids"][:start] == prompt_ids(tok, row["prompt"])
        # The texts are what the model sees: they tokenise to exactly the row's ids.
        assert words(tok, prompt) == out["input_ids"][:start]
        assert words(tok, prompt + completion) == out["input_ids"]
        assert out["attention_mask"] == [1] * len(out["input_ids"])


def test_plain_concatenation_without_chat_template():
    tok = make_tokenizer(chat_template=None)
    row = prompt_completion_rows(1)[0]
    out = tokenize_sft([row], tok, max_length=64).rows[0]
    head, tail = words(tok, row["prompt"]), words(tok, row["completion"]) + [tok.eos_token_id]
    assert out["input_ids"] == head + tail
    assert out["labels"] == [IGNORE_INDEX] * len(head) + tail


def test_messages_loss_on_every_assistant_turn(tok):
    out = tokenize_sft([{"messages": CONVERSATION}], tok, max_length=64)
    expected = words(tok, "seven apples <|end|>") + words(tok, "a big dog sleeps <|end|>")
    assert trained(out.rows[0]) == expected
    prompt, completion = out.texts[0]
    assert prompt.endswith("how many apples ? <|end|> <|assistant|> ") and completion.startswith("seven apples")


def test_generation_markers_give_the_same_labels_as_prefixes():
    rows = [{"messages": CONVERSATION}, {"messages": CONVERSATION[:3]}]
    by_prefix = tokenize_sft(rows, make_tokenizer(CHAT_TEMPLATE), max_length=64).rows
    by_mask = tokenize_sft(rows, make_tokenizer(GENERATION_TEMPLATE), max_length=64).rows
    assert by_mask == by_prefix


def test_template_that_renders_turns_differently_is_refused():
    # Drops <|end|> after the last turn only: a turn renders differently alone than inside the conversation.
    template = CHAT_TEMPLATE.replace("<|end|> {% endfor %}", "{% if not loop.last %}<|end|> {% endif %}{% endfor %}")
    with pytest.raises(GeloraError, match="row 0: the chat template renders the first 2 turn\\(s\\) differently"):
        tokenize_sft([{"messages": CONVERSATION}], make_tokenizer(template), max_length=64)


def test_messages_need_a_chat_template():
    with pytest.raises(GeloraError, match="no chat template, which 'messages' data needs"):
        tokenize_sft([{"messages": CONVERSATION}], make_tokenizer(chat_template=None), max_length=64)


def test_tokenize_checks_rows_too(tok):
    with pytest.raises(GeloraError, match="row 0: empty completion"):
        tokenize_sft([{"prompt": "a", "completion": ""}], tok, max_length=64)
    with pytest.raises(GeloraError, match="max_length must be at least 1"):
        tokenize_sft(prompt_completion_rows(1), tok, max_length=0)


def test_truncation_is_counted_and_rows_without_completion_dropped(tok):
    rows = [
        {"prompt": "the cat", "completion": "runs"},  # 7 tokens with the template: fits
        {"prompt": "the cat", "completion": "runs over the river house"},  # 11 tokens: cut, keeps 3 of the completion
        {"prompt": "the cat sees the dog over the river", "completion": "runs"},  # the prompt alone is 11 tokens
    ]
    data = tokenize_sft(rows, tok, max_length=8)
    assert (data.truncated, data.dropped, len(data.rows)) == (2, 1, 2)
    assert [len(r["input_ids"]) for r in data.rows] == [7, 8]
    assert trained(data.rows[1]) == words(tok, "runs over the")
    assert data.texts[1][1] == "runs over the river house <|end|> "  # texts are the whole rendering, uncut


# --- packing -------------------------------------------------------------------------------------------------------


def test_pack_blocks_keep_every_row_and_label(tok):
    rows = tokenize_sft(prompt_completion_rows(12), tok, max_length=40).rows
    blocks = pack(rows, max_length=40, pad_token_id=tok.pad_token_id)
    assert all(len(b[k]) == 40 for b in blocks for k in ("input_ids", "labels", "position_ids"))
    assert len(blocks) < len(rows)
    # Every row appears whole, starting at position 0, with its labels (the first one is never predicted).
    pieces = []
    for b in blocks:
        starts = [i for i, p in enumerate(b["position_ids"]) if p == 0] + [40]
        pieces += [tuple(b["input_ids"][s:e]) for s, e in zip(starts, starts[1:])]
    assert sorted(tuple(r["input_ids"]) for r in rows) == sorted(p for p in pieces if set(p) != {tok.pad_token_id})
    assert sum(len(trained(b)) for b in blocks) == sum(len(trained(r)) for r in rows)


def test_packed_loss_equals_rows_one_by_one(tok, llama):
    rows = tokenize_sft(prompt_completion_rows(5), tok, max_length=48).rows
    blocks = pack(rows, max_length=48)
    with torch.no_grad():
        summed = sum(
            llama(**{k: torch.tensor([v]) for k, v in r.items()}).loss * (len(trained(r)) - (r["labels"][0] != -100))
            for r in rows
        )
        batch = {k: torch.tensor([b[k] for b in blocks]) for k in blocks[0]}
        n = sum(len(trained(b)) for b in blocks)
        packed = llama(**batch, use_cache=False).loss * n
    torch.testing.assert_close(packed, summed)


def test_pack_refuses_rows_longer_than_a_block(tok):
    rows = tokenize_sft(prompt_completion_rows(2), tok, max_length=64).rows
    with pytest.raises(GeloraError, match="more than the block length 5"):
        pack(rows, max_length=5)


# --- GSM8K scoring -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72", "72"),
        ("He pays 2 * 500 = 1,000 dollars.\n#### 1,000", "1000"),
        ("#### -3.50", "-3.5"),
        ("3 apples and 5 pears make 8 fruits. So the answer is 18.", "18"),
        ("The total is $1,234.50.", "1234.5"),
        ("It is 100", "100"),
        ("no number here", None),
        ("#### 12 then 13", "12"),
        ("Read pages 10-12", "12"),
        ("5-3 = 2, so x = -2", "-2"),
        ("half is .5", "0.5"),
        ("it costs $-.25", "-0.25"),
    ],
)
def test_gsm8k_answer(text, expected):
    assert gsm8k_answer(text) == expected


def test_exact_match_is_numeric_and_none_never_matches():
    assert exact_match(["-3.50", "7", None, "abc"], ["-3.5", "8", "1", "abc"]) == 0.5
    with pytest.raises(GeloraError, match="as many predictions as references"):
        exact_match(["1"], ["1", "2"])


# --- greedy generation ---------------------------------------------------------------------------------------------


def test_left_padded_batches_generate_like_single_prompts(tok, llama):
    prompts = [r["prompt"] for r in prompt_completion_rows(4)]
    assert len({len(prompt_ids(tok, p)) for p in prompts}) > 1  # the batch needs padding
    batched = generate_answers(llama, tok, prompts, max_new_tokens=6, batch_size=4)
    alone = [generate_answers(llama, tok, [p], max_new_tokens=6, batch_size=1)[0] for p in prompts]
    assert batched == alone


def test_generation_returns_only_the_completion_and_stops_at_eos(tok):
    model = make_llama(len(tok))
    with torch.no_grad():
        model.lm_head.weight.zero_()  # all logits equal: greedy picks token 0, "seven"
    model.train()
    assert generate_answers(model, tok, ["how many apples ?"] * 2, max_new_tokens=3) == ["seven seven seven"] * 2
    assert model.training  # the caller's mode is restored
    model.generation_config.eos_token_id = 0
    assert generate_answers(model, tok, ["how many apples ?"], max_new_tokens=3) == ["seven"]


def _successor_llama(tok, successor: dict[str, str]):
    """A one-block Llama whose greedy next token after ``a`` is ``successor[a]`` (one-hot embeddings, the blocks'
    outputs zeroed, so the head sees the current token only)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    width = -(-len(tok) // 4) * 4  # two heads of an even size (RoPE)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=width, intermediate_size=8,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                         tie_word_embeddings=False)).eval()
    ids = tok.convert_tokens_to_ids
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight", "embed_tokens.weight", "lm_head.weight")):
                weight.zero_()
        model.model.embed_tokens.weight[:, : len(tok)] = torch.eye(len(tok))
        for a, b in successor.items():
            model.lm_head.weight[ids(b), ids(a)] = 50.0
    return model


def test_generation_stops_at_the_chat_templates_end_of_turn(tok):
    assert tok.convert_ids_to_tokens(end_of_turn_id(tok)) == "<|end|>" != tok.eos_token
    first, second = tok.convert_ids_to_tokens([0, 1])
    # The model ends its turn and, unless stopped, writes a user turn and its answer after it.
    model = _successor_llama(tok, {"<|assistant|>": first, first: "<|end|>", "<|end|>": "<|user|>",
                                   "<|user|>": second, second: tok.eos_token})
    assert generate_answers(model, tok, ["how many apples ?"], max_new_tokens=8) == [first]


def test_end_of_turn_id_of_other_templates():
    plain = make_tokenizer(chat_template=None)
    assert end_of_turn_id(plain) is None
    plain.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    plain.chat_template = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    assert plain.convert_ids_to_tokens(end_of_turn_id(plain)) == "<|im_end|>"
    plain.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    assert end_of_turn_id(plain) is None  # no special token ends a turn: eos alone stops generation


def test_split_conversation_cuts_before_the_last_assistant_turn():
    assert split_conversation(CONVERSATION, 0) == (CONVERSATION[:4], "a big dog sleeps")
    assert split_conversation(CONVERSATION[:4], 0) == (CONVERSATION[:4], None)  # ends with a user turn: answer it
    with pytest.raises(GeloraError, match="row 3: 'messages' has no user turn before the answer"):
        split_conversation(CONVERSATION[:1] + CONVERSATION[2:3], 3)
    with pytest.raises(GeloraError, match="row 1: 'messages' must be a list"):
        split_conversation("hello", 1)


def test_a_conversation_prompt_is_the_chat_template_with_the_generation_prompt(tok):
    expected = tok.apply_chat_template(CONVERSATION[:4], tokenize=True, add_generation_prompt=True,
                                       return_dict=True)["input_ids"]
    assert prompt_ids(tok, CONVERSATION[:4]) == list(expected)


def test_the_hub_split_lookup_answers_from_the_cache_offline(monkeypatch):
    """Offline, the evaluation split of a cached Hub dataset is still found (not a held-out fraction instead)."""
    import datasets

    from gelora.train.tasks.base import _held_out_split

    offline_during_call = []

    def split_names(source, config):
        offline_during_call.append(datasets.config.HF_HUB_OFFLINE)
        return ["train", "test"]

    monkeypatch.setattr(datasets, "get_dataset_split_names", split_names)
    monkeypatch.setattr("gelora.models.hub_reachable", lambda: False)
    assert _held_out_split("openai/gsm8k", "main") == "test" and offline_during_call == [True]
