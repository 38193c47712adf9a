"""Where models and data come from: Hub ids, local folders, the minilm alias, GLUE folders and user files."""

import pytest

from gelora.data import DATA_DIR_ENV, load_file, load_task, text_pairs
from gelora.errors import GeloraError
from gelora.models import resolve_model


def test_model_names_resolve_to_hub_ids_or_folders(tmp_path):
    assert resolve_model("bert-base-uncased") == "bert-base-uncased"  # Hub ids pass through to from_pretrained
    assert resolve_model("FacebookAI/roberta-base") == "FacebookAI/roberta-base"
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    with pytest.raises(GeloraError, match="does not exist"):
        resolve_model(str(tmp_path / "missing" / "model"))
    with pytest.raises(GeloraError, match="no config.json"):
        resolve_model(str(tmp_path.parent))


def test_csv_file_and_data_dir_from_the_environment(tmp_path, monkeypatch):
    csv = tmp_path / "pairs.csv"
    csv.write_text("premise,hypothesis,label\na cat sat,a cat,1\ndogs run,cats sleep,0\n")
    rows = text_pairs(load_file(csv, ("premise", "hypothesis"))["train"], ("premise", "hypothesis"))
    assert rows == [("a cat sat", "a cat"), ("dogs run", "cats sleep")]
    glue = tmp_path / "glue" / "sst2"
    glue.mkdir(parents=True)
    for split in ("train", "validation"):
        (glue / f"{split}.jsonl").write_text('{"sentence": "fine", "label": 1}\n')
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "glue"))
    assert load_task("glue/sst2")["validation"]["sentence"] == ["fine"]
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(GeloraError, match=f"fix --data-dir or \\${DATA_DIR_ENV}"):
        load_task("glue/sst2")


def test_a_hub_id_fails_fast_offline_without_retry_chatter(capfd):
    import time

    from gelora.models import hub_reachable, load_tokenizer

    if hub_reachable():
        pytest.skip("the Hub is reachable from here")
    start = time.perf_counter()
    with pytest.raises(GeloraError, match="cannot be reached and the model is not in the local Hugging Face cache"):
        load_tokenizer("some-org/some-model")
    assert time.perf_counter() - start < 10  # was ~50 s of retries
    assert "Retry" not in capfd.readouterr().err


def test_offline_a_hub_id_in_the_local_cache_still_loads(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    from gelora import models

    snapshot = tmp_path / "models--tiny-org--tiny-llama" / "snapshots" / ("0" * 40)
    LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                 num_attention_heads=2)).save_pretrained(snapshot)  # fmt: skip
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(models, "hub_reachable", lambda: False)
    model = models.load_model("tiny-org/tiny-llama", AutoModelForCausalLM, cache_dir=tmp_path)
    assert model.config.hidden_size == 8


def test_online_the_hub_is_asked_as_usual(monkeypatch):
    from huggingface_hub import constants

    from gelora import models

    seen = []

    class Auto:  # records what from_pretrained gets, and whether the Hub was in offline mode meanwhile
        @staticmethod
        def from_pretrained(name, **kwargs):
            seen.append((kwargs, constants.HF_HUB_OFFLINE))
            return object(), {"missing_keys": []}

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for reachable in (True, False):
        monkeypatch.setattr(models, "hub_reachable", lambda reachable=reachable: reachable)
        models.load_model("some-org/some-model", Auto, dtype="auto")
    asked = {"dtype": "auto", "output_loading_info": True}  # (gelora reports newly initialised weights itself)
    assert seen == [(asked, False), (asked, True)]
    assert constants.HF_HUB_OFFLINE is False  # offline for that one call only


def test_text_pairs_names_a_missing_column_of_a_dataset_or_a_dict():
    from datasets import Dataset

    for rows in (Dataset.from_dict({"text": ["a"]}), {"text": ["a"]}):
        with pytest.raises(GeloraError, match="^column.s. review not in the data; available: text$"):
            text_pairs(rows, ("review",))
        assert text_pairs(rows, ("text",)) == [("a",)]
