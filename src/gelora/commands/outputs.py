"""The ``--out`` folder of ``profile``, ``plan`` and ``compare-profiles``: checked before any work is done."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

from gelora.errors import GeloraError

PROFILE_FILES = ("profile.json", "profile.png")
PLAN_FILES = ("plan.json", "plan.png")  # made from a profile: stale once the folder's profile is replaced


def check_out_folder(out: str | os.PathLike) -> Path:
    """``out`` as a Path, after checking it is (or can become) a folder this process can write.

    Checked up front so a path that is a file fails at once instead of with ``[Errno 17]`` after minutes of work;
    nothing is created here, so bad input leaves nothing behind.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GeloraError(f"--out {str(out)!r} is a file; give a folder (it is created if missing)")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise GeloraError(f"--out {str(out)!r} cannot be created: {str(existing)!r} is a file; give another folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise GeloraError(f"--out {str(out)!r}: no permission to write in {str(existing)!r}; give another folder")
    return out


def check_plan_folder(out: Path, profile: str | os.PathLike) -> None:
    """Refuse an ``out`` that holds another profile: the plan would sit next to a profile it was not made from."""
    there = out / PROFILE_FILES[0]
    if there.is_file() and not filecmp.cmp(there, profile, shallow=False):
        raise GeloraError(
            f"--out {str(out)!r} holds another profile.json than {str(profile)!r}; a plan there would not match it: "
            f"write the plan next to its profile (--out {str(Path(profile).parent)!r}) or into a new folder"
        )


def remove_stale_plan(out: Path) -> list[str]:
    """Remove the plan files in ``out`` (made from the profile being replaced) and return their names."""
    removed = [name for name in PLAN_FILES if (out / name).is_file()]
    for name in removed:
        (out / name).unlink()
    return removed
