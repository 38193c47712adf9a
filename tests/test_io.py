"""Atomic writes: a file or folder of outputs lands whole or not at all, and nothing else in the folder is touched."""

import json

import pytest

from gelora.errors import GeloraError
from gelora.geolora.config import GEOLORA_FORMAT, GeoLoRAConfig
from gelora.io import atomic_write_dir, atomic_write_text, read_format_json, write_format_json


def test_atomic_write_dir_moves_whole_files_and_keeps_the_users_others(tmp_path):
    out = tmp_path / "adapter"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "weights.bin").write_text("old")

    def write(folder):
        (folder / "weights.bin").write_text("new")
        (folder / "sub").mkdir()
        (folder / "sub" / "config.json").write_text("{}")

    atomic_write_dir(out, write)
    assert (out / "notes.txt").read_text() == "mine" and (out / "weights.bin").read_text() == "new"
    assert (out / "sub" / "config.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no temporary folder left beside it


def test_failed_writes_leave_the_old_outputs(tmp_path):
    atomic_write_text(tmp_path / "a.json", "old")

    def half_then_crash(folder):
        (folder / "a.json").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_dir(tmp_path, half_then_crash)
    assert (tmp_path / "a.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_versioned_json_round_trip_and_errors(tmp_path):
    path = tmp_path / "doc.json"
    write_format_json(path, "gelora.thing/1", {"values": [1, 2]})
    assert json.loads(path.read_text())["format"] == "gelora.thing/1"
    assert read_format_json(path, "gelora.thing/1", "thing", "gelora thing") == {"values": [1, 2]}
    with pytest.raises(GeloraError, match="is not a gelora other"):
        read_format_json(path, "gelora.other/1", "other", "gelora other")
    with pytest.raises(GeloraError, match="create it with `gelora thing`"):
        read_format_json(tmp_path / "missing.json", "gelora.thing/1", "thing", "gelora thing")


def test_geolora_config_saves_a_versioned_document(tmp_path):
    config = GeoLoRAConfig(["query", "value"], r_init=3, rank_pattern={"encoder.layer.0.attention.self.query": 5})
    config.save(tmp_path / "geolora_config.json")
    assert json.loads((tmp_path / "geolora_config.json").read_text())["format"] == GEOLORA_FORMAT
    assert GeoLoRAConfig.load(tmp_path / "geolora_config.json") == config
