"""Atomic file writes: a reader never sees a half-written file, and a crash never truncates an old one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gelora.errors import GeloraError


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_dir(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_dir)`` on a fresh folder beside ``path``, then move each file it wrote into ``path``.

    Every file lands whole (``os.replace``), nothing lands if ``write`` fails, and files already in ``path`` that
    ``write`` did not produce are left alone (a user's folder may hold other work).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        write(tmp)
        for file in sorted(p for p in tmp.rglob("*") if p.is_file()):
            dest = path / file.relative_to(tmp)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

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
