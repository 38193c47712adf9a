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
