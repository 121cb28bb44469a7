"""The texture presets' figures against their own photos: the quality measures of
bench/quality.py (swd / floor, colour, spectrum, seam, diversity, copies, mesh) and the grid
peak of bench/checkerboard.py, on three 256x256 textures (seeds 0-2) of each preset beside the
exemplar it was trained on (its exemplar.png, at training scale); the large-structure
distance (bench.metrics.structure_swd) on two 512x512 textures (seeds 1, 2).

    python -m bench.preset_quality [stone bricks ...] [--presets DIR] [--size WxH]

``--size``: every texture at this size instead (a repeat preset at a size that holds its
repeats unstretched: 456x584 for the fabric built-in's 226x292 px).

Presets that follow a pattern's repeat (``mgan train --repeat``) also get a second table:
the pattern match (bench.metrics.pattern_match: how faithfully the textures, seeds 0-2,
draw the photo's motifs in place) beside the photo's own level (``pattern_floor``), on
textures of ``--size``, or else of the size near 512x512 that holds whole repeats
unstretched (a stretched repeat matches the photo less, whatever G draws).

Without --presets: the built-in presets (presets/). With it: every texture preset folder
under DIR (for example a copy of presets/ from before a retrain, to compare the two).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402
from bench.metrics import pattern_floor, pattern_match  # noqa: E402
from bench.texture_runs import (floor_swd, grid_peak, load_rgb, measure, mesh_peak, structure_of,  # noqa: E402
                                textures_of, window_side)
from engine.layout import repeat_fit  # noqa: E402
from engine.presets import BUILTIN_DIR, open_preset  # noqa: E402
from engine.synth import Synthesizer, parse_size  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", help="preset names (default: every texture preset in the folder)")
    ap.add_argument("--presets", default=str(BUILTIN_DIR), help="folder of preset folders")
    ap.add_argument("--size", help="WIDTHxHEIGHT of every texture (default: 256x256, and 512x512 for structure)")
    args = ap.parse_args()
    size = parse_size(args.size) if args.size else None
    print(describe())
    folders = sorted(p for p in Path(args.presets).iterdir() if (p / "preset.json").is_file())
    presets = [open_preset(str(p)) for p in folders if not args.names or p.name in args.names]
    presets = [p for p in presets if p.kind == "texture"]
    if not presets:
        sys.exit(f"no texture presets{' named ' + ', '.join(args.names) if args.names else ''} in {args.presets}")
    print(f"\npresets: {args.presets}" + (f", textures {args.size}" if size else "") + "\n")
    print("| preset | steps | swd / floor | structure | colour | spectrum | seam | diversity | copies | grid | mesh |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    patterns = []
    for info in presets:
        ex = load_rgb(info.path / "exemplar.png")
        synth = Synthesizer.load(info)
        tex, _ = textures_of(synth, size or 256, seeds=(0, 1, 2))
        repeat = synth.generator.config.repeat
        if repeat:
            whole = size or repeat_fit(repeat, (512, 512))[2]
            drawn = tex if size else textures_of(synth, whole, seeds=(0, 1, 2))[0]
            patterns.append((info.name, repeat, whole, np.mean([pattern_match(t, ex, repeat) for t in drawn]),
                             pattern_floor(ex, repeat)))
        side = window_side(ex)
        m = measure(tex, ex, floor_swd(ex, side), side)
        steps = info.meta.get("training", {}).get("steps_done", "?")
        print(f"| {info.name} | {steps} | {m['swd']:.2f} | {structure_of(synth, ex, size=size or (512, 512)):.0f} | {m['color']:.1f} "
              f"| {m['spectrum']:.2f} | {m['seam']:.2f} "
              f"| {m['diversity']:.2f} | {m['copies']:.2f} | {grid_peak(tex):.1f} | {mesh_peak(tex, ex):.1f} |", flush=True)
    if patterns:
        print("\nPresets that follow a pattern's repeat: the pattern match (1 = the photo's own motifs in place, "
              "0 = none of them), against the photo's repeats matched with each other\n")
        print("| preset | repeat | textures | pattern match | the photo's own |")
        print("|---|---|---|---:|---:|")
        for name, (rh, rw), (th, tw), match, floor in patterns:
            print(f"| {name} | {rw}x{rh} | {tw}x{th} | {match:.2f} | {floor:.2f} |")


if __name__ == "__main__":
    main()
