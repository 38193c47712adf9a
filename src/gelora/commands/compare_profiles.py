"""``gelora compare-profiles A.json B.json ...``: overlay plot and side-by-side table of ID profiles."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="overlay several profile.json files (e.g. one model on two tasks)")
    p.add_argument("profiles", nargs="+", help="profile.json files")
    p.add_argument("--labels", help="comma-separated legend labels (default: model and data of each)")
    p.add_argument("--out", required=True, help="output folder for compare.png and compare.json")
    return p


def _label(profile) -> str:
    source = profile.data.get("task") or Path(profile.data.get("file", "data")).name
    return f"{profile.model} / {source} / {profile.pooling}"


def comparison_table(profiles, labels: list[str]) -> tuple[str, list[dict]]:
    """One row per boundary, one ID column per profile (``-`` where undefined or absent)."""
    depth = max(len(p.boundaries) for p in profiles)
    rows = [{"index": i, **{lab: (p.dimensions[i] if i < len(p.boundaries) else None)
                            for lab, p in zip(labels, profiles)}} for i in range(depth)]
    lines = [f"[{k}] {lab}" for k, lab in enumerate(labels)]
    lines.append(f"{'#':>3}" + "".join(f"{f'[{k}]':>8}" for k in range(len(labels))))
    for row in rows:
        lines.append(f"{row['index']:>3}" + "".join(f"{row[lab]:8.2f}" if row[lab] is not None else f"{'-':>8}"
                                                   for lab in labels))
    return "\n".join(lines), rows


def run(args: argparse.Namespace) -> int:
    from gelora.commands.outputs import check_out_folder
    from gelora.errors import GeloraError
    from gelora.io import atomic_write_json
    from gelora.plots import plot_profiles
    from gelora.profile import Profile

    out = check_out_folder(args.out)
    profiles = [Profile.from_json(p) for p in args.profiles]
    labels = [s.strip() for s in args.labels.split(",")] if args.labels else [_label(p) for p in profiles]
    if len(labels) != len(profiles):
        raise GeloraError(f"{len(labels)} labels for {len(profiles)} profiles; give one label per profile")
    if len(set(labels)) != len(labels):
        labels = [f"{lab} ({path})" for lab, path in zip(labels, args.profiles)]
    text, rows = comparison_table(profiles, labels)
    atomic_write_json(out / "compare.json", {"profiles": list(args.profiles), "labels": labels, "rows": rows})
    plot_profiles(profiles, labels, out / "compare.png")
    print(text)
    print(f"wrote {out / 'compare.json'} and {out / 'compare.png'}")
    return 0
