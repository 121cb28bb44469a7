"""Ablation of the texture recipe: each change switched off alone, at the same time budget,
on benchmark photos (bench/exemplars/). Figures as in bench/quality.py (swd / floor: lower
is better; spectrum: lower is better), and the grid peak of bench/checkerboard.py (the
largest of the period-2 and period-4 peaks, mean over the two textures: about 1-4 on a
photo; lower is better), and the mesh (bench/metrics.mesh_excess: the texture's largest
power at periods under 8 px over the photo's; 2.6-4.8 for a part of a photo; lower is better),
and each run's collapses (training/loop.py: gone back from at half G's rate).

    python -m bench.texture_ablation [--minutes 2] [--only tiles,rock,rug] [--variants "full recipe,..."] [--out DIR]
    python -m bench.texture_ablation --calibrate steps.json   # steps in --minutes on this CPU
    python -m bench.texture_ablation --steps-json steps.json --device cuda
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402
from bench.texture_runs import (add_budget_args, budgeted, exemplar_files, floor_swd, grid_peak,  # noqa: E402
                                measure, mesh_peak, resolve_budget, side_by_side, structure_of, textures_of, train,
                                window_side)
from engine.generator import GeneratorConfig  # noqa: E402
from engine.noise import NoiseParams  # noqa: E402
from training.texture import TrainConfig  # noqa: E402

FULL = TrainConfig()
VARIANTS = {
    "full recipe": FULL,
    "- multi-scale (scale 1 only)": replace(FULL, scales=(1,)),
    "- random 0..7 px shift": replace(FULL, shift=False),
    "- D's hinge term": replace(FULL, adv_ratio=0.0),
    "- residual G (previous upsample G)": replace(FULL, generator=GeneratorConfig(arch="upsample", widths=(256, 128, 64)).to_dict()),
    "- sliced Wasserstein (Gram + colour)": replace(FULL, loss="gram", lr_g=2e-4, adv_ratio=2.0),
    "- weight average (EMA)": replace(FULL, ema=0.0),
    "- periodic inputs (lattice off)": replace(FULL, lattice="off"),
    "- stripes (one wave)": replace(FULL, lattice="waves"),
    "- bilinear upsampling (nearest)": replace(FULL, generator=GeneratorConfig(upsample="nearest").to_dict()),
    "- grid penalty": replace(FULL, grid_weight=0.0),
    "+ spectrum term": replace(FULL, spectrum_weight=1.0),
    "+ 2-D spectrum term": replace(FULL, spectrum_weight=1.0, spectrum_kind="2d"),
    "+ 2-D spectrum term 0.1": replace(FULL, spectrum_weight=0.1, spectrum_kind="2d"),
    "- tracked balance (smoothed every 50 steps)": replace(FULL, track_balance=False),
    "+ relu5_1 term": replace(FULL, relu5=True),
    "+ relu5_1 term on canvas 256 (batch 1)": replace(FULL, relu5=True, crop=256, batch=1),
    "- flips (the photo as it is)": replace(FULL, augment="none"),
    "- flips (mirrored left-right only)": replace(FULL, augment="mirror"),
    "+ canvas 256 (batch 1)": replace(FULL, crop=256, batch=1),
    "+ canvas 192 (batch 2)": replace(FULL, crop=192, batch=2),
    "- mesh penalty": replace(FULL, mesh_weight=0.0),
    "+ mesh penalty 0.2": replace(FULL, mesh_weight=0.2),
    "+ mesh penalty above 2.5x": replace(FULL, mesh_weight=0.05, mesh_allowed=2.5),
    "+ mesh penalty on regular photos": replace(FULL, mesh_regular=True),
    "+ stripes as irregular photos (bilinear with grid and mesh penalties)": replace(FULL, stripe_penalties=True),
    "- rates' decay (constant rates)": replace(FULL, lr_decay=0.0),
    "+ SW over the batch": replace(FULL, sw_pooled=True),
    "- D's global head (patch scores alone)": replace(FULL, d_global=False),
    "+ D's fine head": replace(FULL, d_fine=True),
    "+ SW over the batch and coarse layout": replace(FULL, sw_pooled=True, layout=True),
    "+ coarse layout": replace(FULL, layout=True),
    "+ coarse layout followed at 1/32": replace(FULL, layout=True, layout_scale=32),
    "+ coarse layout followed at 1/8": replace(FULL, layout=True, layout_scale=8),
    "+ coarse layout followed at 1/8 3x": replace(FULL, layout=True, layout_scale=8, layout_weight=3.0),
    "+ lr_g 6e-4": replace(FULL, lr_g=6e-4),
    "+ lr_g 1e-3": replace(FULL, lr_g=1e-3),
    "+ lr_g 2e-3": replace(FULL, lr_g=2e-3),
    "+ lr_g 1e-3 and lr_d 6e-4": replace(FULL, lr_g=1e-3, lr_d=6e-4),
    "- start from a built-in (from scratch)": replace(FULL, start_from="off"),
    "+ noise scale 64 (larger input features)": replace(FULL, noise=NoiseParams(scale=64.0).to_dict()),
    "+ noise scale 16 (smaller input features)": replace(FULL, noise=NoiseParams(scale=16.0).to_dict()),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="tiles,rock,rug")
    ap.add_argument("--variants", help="comma-separated variant names (default: all), e.g. "
                                       "'full recipe,- periodic inputs (lattice off)'")
    ap.add_argument("--out", help="save each variant's first texture beside the photo here")
    ap.add_argument("--keep", help="keep each variant's preset here, as DIR/<photo> <variant>")
    add_budget_args(ap, minutes=2.0)
    args = ap.parse_args()
    print(describe())
    files = exemplar_files(only=args.only)
    variants = VARIANTS
    if args.variants:
        names = [v.strip() for v in args.variants.split(",")]
        unknown = [v for v in names if v not in VARIANTS]
        if unknown:
            ap.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
        variants = {v: VARIANTS[v] for v in names}
    steps_json = resolve_budget(args, files, variants, describe())
    if steps_json is None:
        return
    print()
    results = {name: [] for name in variants}
    print("| variant | exemplar | steps | collapses | swd / floor | structure | spectrum | colour | grid peak | mesh |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for f in files:
        for name, cfg in variants.items():
            label = f"{f.stem} {name.strip('- ')}"  # its files' name under --out and --keep
            synth, ex, fig = train(f, budgeted(cfg, name, args.minutes, steps_json, args.train_seed), device=args.device,
                                 keep=Path(args.keep) / label if args.keep else None)
            tex, _ = textures_of(synth)
            if args.out:
                side_by_side(Path(args.out) / f"{label}.png", ex, {name: tex[0]})
            side = window_side(ex)
            m = measure(tex, ex, floor_swd(ex, side), side)
            m["grid"] = grid_peak(tex)
            m["mesh"] = mesh_peak(tex, ex)
            m["structure"] = structure_of(synth, ex)
            m["collapses"] = fig["collapses"]
            results[name].append(m)
            print(f"| {name} | {f.stem} | {fig['steps']} | {fig['collapses']} | {m['swd']:.2f} | {m['structure']:.0f} "
                  f"| {m['spectrum']:.2f} "
                  f"| {m['color']:.1f} | {m['grid']:.1f} | {m['mesh']:.1f} |", flush=True)
    print(f"\nMean over {', '.join(f.stem for f in files)}:\n")
    print("| variant | collapses | swd / floor | structure | spectrum | colour | grid peak | mesh |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, ms in results.items():
        print(f"| {name} | {sum(m['collapses'] for m in ms)} | {np.mean([m['swd'] for m in ms]):.2f} | "
              f"{np.mean([m['structure'] for m in ms]):.0f} | "
              f"{np.mean([m['spectrum'] for m in ms]):.2f} | {np.mean([m['color'] for m in ms]):.1f} | {np.mean([m['grid'] for m in ms]):.1f} | "
              f"{np.mean([m['mesh'] for m in ms]):.1f} |")


if __name__ == "__main__":
    main()
