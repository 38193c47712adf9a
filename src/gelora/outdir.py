"""Output folders that gelora owns: claimed by a marker file, resumed only with the same settings, never mixed.

A training run marks its folder with ``run.json``, a bench with ``bench.json``; each lists what it writes there,
so ``--overwrite`` removes exactly those entries and leaves a user's other files alone.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gelora.errors import GeloraError


@dataclass(frozen=True)
class OutputFolder:
    """A folder kind: its ``marker`` file, the entries it ``owns``, and what to call it in messages."""

    marker: str
    owns: tuple[str, ...]
    kind: str  # "run", "bench"

    def claim(
        self,
        path: str | Path,
        identity: dict[str, Any],
        *,
        resume: bool,
        overwrite: bool,
        read_identity: Callable[[dict[str, Any]], dict[str, Any]] = lambda saved: saved,
        is_started: Callable[[Path], bool] = lambda _: True,
    ) -> bool:
        """Check that ``path`` may take this run; return True when it continues an earlier one with ``identity``.

        A folder holding the same kind with other settings, or foreign files, is refused unless ``overwrite``;
        one that was claimed but never started (``is_started`` false, e.g. killed before its first checkpoint)
        is free again. Nothing is changed here: call ``clear`` (with ``overwrite``) and write the marker after.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise GeloraError(f"--out {str(path)!r} is a file; give a folder")
        marker = path / self.marker
        if marker.exists():
            if overwrite or not is_started(path):
                return False
            if not resume:
                raise GeloraError(
                    f"--out {str(path)!r} already holds another gelora {self.kind}; pass --resume to continue it, "
                    "--overwrite to replace it, or choose another folder"
                )
            old = read_identity(json.loads(marker.read_text()))
            differ = [k for k in identity if old.get(k) != identity[k]]
            if differ:
                changes = ", ".join(f"{k}: {_shown(old.get(k))} -> {_shown(identity[k])}" for k in differ)
                raise GeloraError(
                    f"--out {str(path)!r} holds a {self.kind} with different settings ({changes}); use the original "
                    "settings, --overwrite to start over, or another folder"
                )
            return True
        foreign = sorted(p.name for p in path.iterdir()) if path.exists() else []
        if foreign and not overwrite:
            shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
            raise GeloraError(
                f"--out {str(path)!r} already holds files ({shown}) and no {self.marker}: not a gelora {self.kind} "
                "to resume; choose an empty or new folder"
            )
        return False

    def clear(self, path: str | Path) -> None:
        """Remove what this kind writes into ``path`` (and nothing else)."""
        for name in self.owns:
            target = Path(path) / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()


def _shown(value: Any) -> str:
    # None stands for "the default in force" in gelora's settings (defaults that depend on other settings).
    return "its default" if value is None else repr(value)
