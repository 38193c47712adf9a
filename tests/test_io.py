"""Atomic writes: a file or folder of outputs lands whole or not at all, and nothing else in the folder is touched."""

import pytest

from gelora.io import atomic_write_dir, atomic_write_text


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
