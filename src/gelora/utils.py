"""Small helpers shared by the commands and the measuring code: the torch device to run on, a point cloud from a file.

torch and numpy are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gelora.errors import GeloraError

if TYPE_CHECKING:
    import numpy as np
    import torch

POINT_FILE_TYPES = (".npy", ".pt", ".pth", ".csv")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device`` (default: cuda when available, else cpu); a clear error if unusable."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise GeloraError(f"unknown device {str(device)!r}; use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise GeloraError(f"device {str(device)!r} needs a CUDA GPU, and none is available here; use --device cpu")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise GeloraError(f"device {str(device)!r} does not exist: {torch.cuda.device_count()} CUDA GPU(s) here")
    return resolved


def load_points(path: str | Path) -> np.ndarray | torch.Tensor:
    """Read a point cloud (rows = points) from a .npy, .pt/.pth (a tensor saved with ``torch.save``) or .csv file.

    Raises
    ------
    GeloraError
        The path is missing or a folder, the file type is not one of these, or the file cannot be read as one.
    """
    file = Path(path)
    if not file.exists():
        raise GeloraError(f"file {str(path)!r} does not exist")
    if file.is_dir():
        raise GeloraError(f"{str(path)!r} is a folder; give a file of points ({', '.join(POINT_FILE_TYPES)})")
    suffix = file.suffix.lower()
    if suffix not in POINT_FILE_TYPES:
        raise GeloraError(f"unsupported file type {suffix or '(none)'!r} for {str(path)!r}; use .npy, .pt or .csv")
    if suffix == ".csv":
        return _load_csv(file)
    if suffix == ".npy":
        return _load_npy(file)
    return _load_tensor(file)


def _load_npy(file: Path) -> np.ndarray:
    import numpy as np

    try:
        return np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError):  # numpy's own words are about pickling, whatever the damage
        raise GeloraError(
            f"{str(file)!r} is not a readable .npy file (no .npy header, truncated, or holding Python objects); "
            "expected a numeric array saved with numpy.save"
        ) from None


def _load_tensor(file: Path) -> torch.Tensor:
    import torch

    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # torch raises pickle, zip and runtime errors whose text is about its internals, not the file
        raise GeloraError(
            f"{str(file)!r} is not a readable torch.save file (corrupt, truncated or holding arbitrary Python "
            "objects); expected a 2-D tensor saved with torch.save(tensor, path)"
        ) from None
    if not isinstance(obj, torch.Tensor):
        raise GeloraError(f"{str(file)!r} holds a {type(obj).__name__}, not a tensor; save a 2-D tensor")
    return obj


def _load_csv(file: Path) -> np.ndarray:
    import numpy as np

    try:
        with open(file, encoding="utf-8") as f:
            first = f.readline()
        skip = 0 if _is_numeric_row(first) else 1  # else a header row
        return np.loadtxt(file, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64)
    except ValueError as e:  # UnicodeDecodeError included: a binary file named .csv
        raise GeloraError(f"{str(file)!r} is not a numeric CSV ({e})") from None


def _is_numeric_row(line: str) -> bool:
    try:
        [float(v) for v in line.strip().split(",")]
    except ValueError:
        return False
    return True
