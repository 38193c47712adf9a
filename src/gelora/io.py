"""Atomic file writes: a reader never sees a half-written file, and a crash never truncates an old one."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gelora.errors import GeloraError


def _new_temp_file(path: Path) -> str:
    """Create an empty, new file beside ``path`` with the mode a plain ``open(path, "w")`` would give it.

    ``tempfile.mkstemp`` creates files mode 0600, which ``os.replace`` would carry onto the user's output; creating
    with 0666 lets the kernel apply the umask (and any default ACL) as it does for every other file.
    """
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return str(tmp)
        except FileExistsError:  # another writer's temporary file: draw another name
            continue


def _plain_file_mode(folder: Path) -> int:
    """The permission bits a plain new file gets in ``folder`` (0644 under umask 022), learned from a probe file
    rather than by changing the process-wide umask."""
    probe = _new_temp_file(folder / ".mode")
    try:
        return os.stat(probe).st_mode & 0o777
    finally:
        os.unlink(probe)


def give_plain_modes(folder: str | os.PathLike) -> None:
    """Give every file under ``folder`` the mode a plain new file gets there.

    Writers we do not control may create files 0600 (safetensors does for adapters and checkpoints): the user's
    umask, not the library's choice, decides who may read their outputs.
    """
    folder = Path(folder)
    mode = _plain_file_mode(folder)
    for file in folder.rglob("*"):
        if file.is_file() and file.stat().st_mode & 0o777 != mode:
            os.chmod(file, mode)


def _fsync(path: str | os.PathLike) -> None:
    """Flush a file's or folder's contents to disk.

    A rename is only as durable as what it renames: without this a power cut can leave an empty file under the new
    name, or lose the rename itself (the folder's entry).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    The file gets the mode the umask gives a new file (0644 under umask 022), as a plain write would, and is on disk
    (contents and name) when this returns.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp_file(path)
    mode = os.stat(tmp).st_mode & 0o777
    try:
        write(tmp)
        if os.stat(tmp).st_mode & 0o777 != mode:  # a writer that recreated the file with its own mode
            os.chmod(tmp, mode)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_dir(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_dir)`` on a fresh folder beside ``path``, then move each file it wrote into ``path``.

    Every file lands whole (``os.replace``), nothing lands if ``write`` fails, and files already in ``path`` that
    ``write`` did not produce are left alone (a user's folder may hold other work). Folders and files get the modes
    the umask gives (the private 0700 staging folder is never moved into place).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        write(tmp)
        give_plain_modes(tmp)
        folders = {path.parent}
        for file in sorted(p for p in tmp.rglob("*") if p.is_file()):
            dest = path / file.relative_to(tmp)
            dest.parent.mkdir(parents=True, exist_ok=True)
            _fsync(file)
            os.replace(file, dest)
            folders.update(dest.parents[: len(file.relative_to(tmp).parts)])  # every folder that gained an entry
        for folder in folders:
            _fsync(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, write)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure atomically (format taken from the final suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=120, bbox_inches="tight"))


def write_format_json(path: str | os.PathLike, fmt: str, obj: dict[str, Any]) -> Path:
    """Write ``obj`` atomically as a versioned gelora document, ``{"format": fmt, **obj}``.

    ``fmt`` names the kind of document and its version (``"gelora.plan/1"``); :func:`read_format_json` checks it.
    """
    return atomic_write_json(path, {"format": fmt, **obj})


def read_format_json(path: str | os.PathLike, fmt: str, kind: str, command: str) -> dict:
    """Read a document written by :func:`write_format_json` with ``fmt``, returned without the format key.

    ``kind`` names the document in errors ("plan", "profile") and ``command`` what writes it (``gelora plan``).
    """
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except FileNotFoundError:
        raise GeloraError(f"{kind} {str(path)!r} does not exist; create it with `{command}`") from None
    except json.JSONDecodeError as e:
        raise GeloraError(f"{kind} {str(path)!r} is not valid JSON ({e})") from None
    if not isinstance(obj, dict) or obj.pop("format", None) != fmt:
        raise GeloraError(f"{str(path)!r} is not a gelora {kind} (written by `{command}`)")
    return obj
