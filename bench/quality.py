"""Texture quality on a public benchmark set of colour photos (bench/exemplars/, not the
built-in presets' own photos): the new recipe and the previous one, each trained for the
same time budget, against Gatys et al.'s optimisation, all measured in one run.

Per exemplar and candidate (two 256x256 textures, seeds 1 and 2):
  swd        Laplacian-pyramid 7x7 patch sliced Wasserstein distance (Karras et al. 2018)
             over the exemplar's own crop-to-whole distance: 1.0 is as close as another
             part of the photo itself (VGG-free; lower is better)
  colour     sliced W1 distance of the RGB pixel distributions, in 1/255 units
  spectrum   mean |difference| of radially averaged log10 power spectra
  seam       the wrap-around step over the interior steps (1 = no seam)
  diversity  seed 1 vs seed 2, over two places of the photo (about 1 is right; 0 = same)
  copies     fraction of 32x32 patches that are verbatim copies of the photo (RMSE < 0.04, or
             0.28 of the photo's pixel std where that is less: bench/metrics.py copy_threshold)
  grid       the larger of the period-2 and period-4 grid peaks (bench/checkerboard.py):
             about 1-16 on a photo, hundreds where a fine cross-hatch shows
  mesh       the largest power at periods under 8 px over the photo's (bench/metrics.py
             mesh_excess): 2.6-4.8 for a part of a photo, higher where a fine mesh shows
  time       training time, and seconds per 256x256 texture (Gatys: per image)
Both recipes train on the photo at 1:1 (the new default), so the comparison is of the
recipes; Gatys uses the same VGG19 (Gram on relu1_1..relu4_1, L-BFGS).

    python -m bench.quality [--minutes 5] [--only rock,tiles] [--gatys-steps 300]
    python -m bench.quality --calibrate steps.json       # steps in --minutes on this CPU
    python -m bench.quality --steps-json steps.json --device cuda   # same budgets on a GPU
    python -m bench.quality --candidates new --out DIR  # the new recipe alone
    python -m bench.quality --candidates new --train-seed 1 --steps-json steps.json  # another training seed
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402
from bench.metrics import TAPS, grams  # noqa: E402
from bench.texture_runs import (add_budget_args, budgeted, exemplar_files, floor_swd, grid_peak, mesh_peak,  # noqa: E402
                                measure, resolve_budget, side_by_side, textures_of, train, window_side)
from engine.noise import brown_noise  # noqa: E402
from engine.synth import pick_device, to_uint8  # noqa: E402
from engine.vgg import get_vgg19  # noqa: E402
from training.texture import TrainConfig, gram, previous_recipe  # noqa: E402

CANDIDATES = {"new": TrainConfig(), "previous": previous_recipe(exemplar_size=None)}


def gatys(exemplar: np.ndarray, size: int, steps: int, seed: int, device: torch.device) -> np.ndarray:
    """Gatys' texture synthesis: optimise pixels (L-BFGS) so their Grams match the exemplar's."""
    vgg = get_vgg19("relu4_1", device)
    target = {t: g.to(device) for t, g in grams(exemplar).items()}
    x = torch.from_numpy(brown_noise(seed, (size, size)))[None].to(device).requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=steps, history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        feats = vgg(x, TAPS)
        loss = 0.0
        for t in TAPS:
            g = gram(feats[t])[0]
            loss = loss + ((g - target[t]) ** 2).sum() / (target[t] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return to_uint8(x.detach().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated exemplar names (default: all in bench/exemplars)")
    ap.add_argument("--gatys-steps", type=int, default=300)
    ap.add_argument("--out", default=str(ROOT / "docs" / "quality"), help="side-by-side pictures")
    ap.add_argument("--candidates", default="new,previous,gatys", help="which candidates to run")
    add_budget_args(ap, minutes=5.0)
    args = ap.parse_args()
    print(describe())
    files = exemplar_files(only=args.only)
    wanted = args.candidates.split(",")
    unknown = set(wanted) - set(CANDIDATES) - {"gatys"}
    if unknown:
        ap.error(f"unknown candidates {sorted(unknown)}; known: {[*CANDIDATES, 'gatys']}")
    steps_json = resolve_budget(args, files, {k: v for k, v in CANDIDATES.items() if k in wanted}, describe())
    if steps_json is None:
        return
    print(f"Gatys: {args.gatys_steps} L-BFGS iterations at 256x256\n")
    dev = pick_device(args.device)
    head = "| exemplar | candidate | swd / floor | colour | spectrum | seam | diversity | copies | grid | mesh | training | per texture |"
    print(head)
    print("|" + "---|" * 2 + "---:|" * 10)
    wins = {"previous": 0, "gatys": 0}
    for f in files:
        rows, pictures = {}, {}
        for name, cfg in CANDIDATES.items():
            if name not in wanted:
                continue
            synth, ex, fig = train(f, budgeted(cfg, name, args.minutes, steps_json, args.train_seed), device=args.device)
            tex, per = textures_of(synth)
            side = window_side(ex)
            floor = floor_swd(ex, side)
            rows[name] = (measure(tex, ex, floor, side) | {"grid": grid_peak(tex), "mesh": mesh_peak(tex, ex)}, f"{fig['seconds'] / 60:.1f} min, {fig['steps']} steps", f"{per:.3f} s")
            pictures[name] = np.tile(tex[0], (2, 2, 1))
        ex_new = ex  # both recipes train at 1:1, so their exemplars are the same picture
        if "gatys" in wanted:
            t0 = time.perf_counter()
            gat = [gatys(ex_new, 256, args.gatys_steps, seed, dev) for seed in (1, 2)]
            per_gatys = (time.perf_counter() - t0) / 2
            rows["gatys"] = (measure(gat, ex_new, floor, side) | {"grid": grid_peak(gat), "mesh": mesh_peak(gat, ex_new)}, "-", f"{per_gatys:.1f} s")
            pictures["Gatys, 2x2"] = np.tile(gat[0], (2, 2, 1))
        for name, (m, training, per) in rows.items():
            print(f"| {f.stem} | {name} | {m['swd']:.2f} | {m['color']:.1f} | {m['spectrum']:.2f} | {m['seam']:.2f} | "
                  f"{m['diversity']:.2f} | {m['copies']:.2f} | {m['grid']:.1f} | {m['mesh']:.1f} | {training} | {per} |", flush=True)
        if {"new", "previous", "gatys"} <= set(rows):
            new = rows["new"][0]["swd"]
            wins["previous"] += new < rows["previous"][0]["swd"]
            wins["gatys"] += new <= rows["gatys"][0]["swd"]
        side_by_side(Path(args.out) / f"{f.stem}.jpg", ex_new,
                     {{"new": "new recipe, 2x2", "previous": "previous recipe, 2x2"}.get(k, k): v
                      for k, v in pictures.items()})
    if {"new", "previous", "gatys"} <= set(wanted):  # (the count needs all three candidates)
        print(f"\nnew recipe's swd beats the previous recipe's on {wins['previous']} of {len(files)} exemplars, "
              f"matches or beats Gatys' on {wins['gatys']} of {len(files)}")


if __name__ == "__main__":
    main()
