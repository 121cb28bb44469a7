"""What ``mgan train --repeat auto`` reads from each photo (engine/layout.py ``find_repeat``):
the repeat and its correlations, or why it refuses. Photos that do not repeat must be
refused; a pattern's repeat must match what is measured by hand.

    python -m bench.repeats [PHOTO ...]

Without photos: the built-ins' photos (training/exemplars/) and the benchmark set
(bench/exemplars/), at the scale they train at (their own, none over 512 px).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402
from bench.texture_runs import load_rgb  # noqa: E402
from engine.layout import find_repeat  # noqa: E402


def main() -> None:
    photos = [Path(p) for p in sys.argv[1:]] or sorted((ROOT / "training" / "exemplars").glob("*.png")) + sorted(
        (ROOT / "bench" / "exemplars").glob("*.png"))
    print(describe())
    print("\n| photo | size | repeat read (WxH px) | correlation across, down | seconds |")
    print("|---|---|---|---|---:|")
    for p in photos:
        rgb = load_rgb(p)
        t0 = time.perf_counter()
        try:
            (h, w), (down, across) = find_repeat(rgb / 255.0)
            read, corr = f"{w}x{h}", f"{across:.2f}, {down:.2f}"
        except ValueError as e:
            read, corr = "refused", str(e).split("(", 1)[1].split(")", 1)[0]
        name = p.resolve().relative_to(ROOT) if p.resolve().is_relative_to(ROOT) else p
        print(f"| {name} | {rgb.shape[1]}x{rgb.shape[0]} | {read} | {corr} | "
              f"{time.perf_counter() - t0:.1f} |", flush=True)


if __name__ == "__main__":
    main()
