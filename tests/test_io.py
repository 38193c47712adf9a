"""Atomic writes: a file or folder of outputs lands whole or not at all, and nothing else in the folder is touched."""

import json
import os
import stat
from pathlib import Path

import pytest

from gelora.errors import GeloraError
from gelora.geolora.config import GEOLORA_FORMAT, GeoLoRAConfig
from gelora.io import (
    atomic_write,
    atomic_write_dir,
    atomic_write_json,
    atomic_write_text,
    read_format_json,
    write_format_json,
)


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


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_files_get_the_mode_of_the_umask(tmp_path, umask):
    written = [
        atomic_write_text(tmp_path / "a.txt", "text"),
        atomic_write_json(tmp_path / "b.json", {"k": 1}),
        atomic_write(tmp_path / "c.bin", lambda tmp: Path(tmp).write_bytes(b"\0")),
    ]
    assert [_mode(p) for p in written] == [0o666 & ~umask] * 3
    (tmp_path / "plain.txt").write_text("as open() makes it")
    assert _mode(written[0]) == _mode(tmp_path / "plain.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.bin", "plain.txt"]


def test_atomic_folders_get_the_mode_of_the_umask(tmp_path, umask):
    def write(folder):
        (folder / "README.md").write_text("plain write")
        (folder / "sub").mkdir()
        atomic_write_json(folder / "sub" / "ranks.json", [1, 2])
        os.close(os.open(folder / "private.bin", os.O_WRONLY | os.O_CREAT, 0o600))  # as safetensors writes

    out = atomic_write_dir(tmp_path / "run" / "adapter", write)
    folders = [tmp_path / "run", out, out / "sub"]
    assert [_mode(p) for p in folders] == [0o777 & ~umask] * 3
    files = [out / "README.md", out / "sub" / "ranks.json", out / "private.bin"]
    assert [_mode(p) for p in files] == [0o666 & ~umask] * 3


def test_a_writer_that_recreates_the_file_privately_still_gives_the_umask_mode(tmp_path, umask):
    def private(tmp):
        os.unlink(tmp)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600))

    assert _mode(atomic_write(tmp_path / "w.safetensors", private)) == 0o666 & ~umask


def test_a_runs_weights_and_checkpoints_get_the_umask_mode(tiny, tmp_path):
    from helpers import tiny_config

    from gelora.train.runner import train

    old = os.umask(0o027)
    try:
        train(tiny_config(tiny, tmp_path / "run", epochs=1, max_train_samples=8))
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(p.name == "adapter_model.safetensors" for p in files)
    assert any(p.name == "model.safetensors" and "checkpoint" in p.parts for p in files)
    assert {str(p.relative_to(tmp_path)): _mode(p) for p in files if _mode(p) != 0o640} == {}


def test_failed_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "old")

    def half_then_crash(tmp):
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "a.txt", half_then_crash)
    assert (tmp_path / "a.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.fixture
def synced(monkeypatch):
    """The paths ``os.fsync`` is called on (Linux: read back from /proc)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name a file descriptor")
    paths, fsync = [], os.fsync

    def record(fd):
        paths.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    return paths


def test_atomic_write_syncs_the_file_before_the_rename_and_the_folder_after(tmp_path, synced):
    atomic_write(tmp_path / "fig.png", lambda tmp: Path(tmp).write_bytes(b"png"))
    assert len(synced) == 2 and synced[0].name.startswith(".fig.png.") and synced[1] == tmp_path


def test_atomic_write_dir_syncs_every_file_and_every_folder_that_gained_one(tmp_path, synced):
    def write(folder):
        (folder / "a.bin").write_bytes(b"a")
        (folder / "sub").mkdir()
        (folder / "sub" / "b.bin").write_bytes(b"b")

    out = atomic_write_dir(tmp_path / "adapter", write)
    files = [p for p in synced if p.name.endswith(".bin")]
    assert sorted(p.name for p in files) == ["a.bin", "b.bin"] and all(".partial" in str(p) for p in files)
    assert sorted(p for p in synced if p not in files) == [tmp_path, out, out / "sub"]


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
