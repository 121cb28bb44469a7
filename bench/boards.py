"""How well the boards' mean width is read from a photo's spectrum (engine/lattice.py
``stripe_wave``), against widths counted by hand: the figure that tells a user when to
give ``mgan train --boards PX``.

A ``boards.json`` lists {name, path, width}: a photo of boards and their mean width in px,
counted by hand across the boards (the photo's extent over its number of boards). The set
measured in docs/MEASURED.md: the bench's planks and the wood built-in's photo (shipped),
and boards from Debian 12's ``ufoai-textures`` (``0textures.pk3``, ``textures/tex_mattn/``
and ``textures/tex_buildings/``, GPL-2+ or public domain, not shipped: ``apt-get download``
it and unzip the members the JSON names).

    python -m bench.boards --photos /path/to/boards.json
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.texture_runs import load_rgb  # noqa: E402
from engine.lattice import read_lattice  # noqa: E402


def read_boards(rgb: np.ndarray) -> tuple[str, float | None]:
    """(what the spectrum calls the photo, the boards' mean period in px or None)."""
    waves, boards = read_lattice(rgb / 255.0)
    if boards:
        return "stripes", 1 / math.hypot(*boards)
    return (f"{len(waves)} wave" + ("s" if len(waves) > 1 else "")) if waves else "irregular", None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", required=True, help="JSON: [{name, path, width}], width counted by hand in px")
    args = ap.parse_args()
    base = Path(args.photos).resolve().parent
    rows = json.loads(Path(args.photos).read_text())
    print("| photo | size | counted by hand (px) | read as | read width (px) | error |")
    print("|---|---|---:|---|---:|---:|")
    errors = []
    for r in rows:
        path = Path(r["path"]) if Path(r["path"]).is_absolute() else base / r["path"]
        rgb = load_rgb(path)
        size = f"{rgb.shape[1]}x{rgb.shape[0]}"
        kind, width = read_boards(rgb)
        err = (width / r["width"] - 1) if width else None
        if err is not None:
            errors.append(abs(err))
        print(f"| {r['name']} | {size} | {r['width']:.1f} | {kind} | {width:.1f} | {100 * err:+.0f}% |" if width else
              f"| {r['name']} | {size} | {r['width']:.1f} | {kind} | - | - |")
    if errors:
        print(f"\nread as stripes: {len(errors)} of {len(rows)}; within 10%: {sum(e <= 0.1 for e in errors)}; "
              f"median error {100 * float(np.median(errors)):.0f}%")


if __name__ == "__main__":
    main()
