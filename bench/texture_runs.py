"""Shared by bench/quality.py and bench/texture_ablation.py: train a texture candidate to a
budget, calibrate a time budget into steps, and measure a candidate against its exemplar.

Budgets. On the CPU a candidate trains for ``--minutes`` of training time. Elsewhere (a GPU,
or a CPU shared with other work) ``--steps-json`` gives each candidate the number of steps
that ``--calibrate`` measured it to take in that many minutes on a 2-core CPU: equal time
on the CPU the product is judged on, whatever runs the benchmark.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.checkerboard import grid_peaks  # noqa: E402
from bench.metrics import (color_distance, copy_fraction, copy_threshold, mesh_excess, pyramid_swd, seam_ratio,  # noqa: E402
                           seed_diversity, spectrum_distance, structure_swd)
from engine.synth import Synthesizer, to_uint8  # noqa: E402
from training.loop import Trainer  # noqa: E402
from training.texture import TextureTask, TrainConfig  # noqa: E402

EXEMPLARS = ROOT / "bench" / "exemplars"


def exemplar_files(folder: Path = EXEMPLARS, only: str | None = None) -> list[Path]:
    files = sorted(p for p in folder.glob("*.png"))
    if only:
        names = only.split(",")
        files = [f for f in files if f.stem in names]
    return files


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def train(exemplar: Path, cfg: TrainConfig, device: str | None = None,
          keep: Path | None = None) -> tuple[Synthesizer, np.ndarray, dict]:
    """Train one candidate in a temporary folder; (its synthesizer, the exemplar at its
    training scale as uint8, figures: steps, seconds). ``keep``: copy the preset there."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(TextureTask(exemplar, cfg), "candidate", Path(tmp) / "run", preset_dir=Path(tmp),
                          device=device, show_progress=False,
                          log=lambda msg: print(f"  ({exemplar.stem}) {msg}", flush=True) if "collapsed" in msg else None)
        folder = trainer.run()
        from engine.presets import open_preset

        synth = Synthesizer.load(open_preset(folder), device=device)  # G is in memory before the folder goes
        ex = load_rgb(folder / "exemplar.png")
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(folder, keep)
    return synth, ex, {"steps": trainer.step, "seconds": trainer.elapsed, "collapses": trainer.recoveries}


def calibrate(exemplar: Path, configs: dict[str, TrainConfig], minutes: float, steps: int = 15) -> dict[str, int]:
    """Steps each config takes in ``minutes`` of training on this machine (after 5 warm-up steps)."""
    out = {}
    for name, cfg in configs.items():
        with tempfile.TemporaryDirectory() as tmp:
            t = Trainer(TextureTask(exemplar, replace(cfg, steps=steps + 5)), "calibrate", Path(tmp) / "run",
                        preset_dir=Path(tmp), show_progress=False, log=lambda *a: None)
            t.prepare()
            for _ in range(5):
                t.train_step()
            t0 = time.perf_counter()
            for _ in range(steps):
                t.train_step()
            per = (time.perf_counter() - t0) / steps
        out[name] = max(1, int(minutes * 60 / per))
        print(f"  calibrate {name}: {per:.3f} s/step -> {out[name]} steps in {minutes:g} min", flush=True)
    return out


def add_budget_args(ap, minutes: float) -> None:
    ap.add_argument("--minutes", type=float, default=minutes, help="training budget of each candidate")
    ap.add_argument("--device")
    ap.add_argument("--calibrate", metavar="JSON", help="write the steps each candidate takes in --minutes here, and stop")
    ap.add_argument("--steps-json", help="train each candidate for these steps instead of --minutes")
    ap.add_argument("--train-seed", type=int, default=0,
                    help="training seed of every candidate (another seed: the run-to-run spread)")


def resolve_budget(args, files: list[Path], configs: dict[str, TrainConfig], machine: str) -> dict | None:
    """With --calibrate: measure, write the JSON and return None (nothing more to run).
    Otherwise print the budget and return the steps (or {} for --minutes)."""
    if args.calibrate:
        steps = calibrate(files[0], configs, args.minutes)
        Path(args.calibrate).write_text(json.dumps({**steps, "minutes": args.minutes, "machine": machine}))
        return None
    steps_json = load_steps(args.steps_json) or {}
    print("budget: " + (f"steps calibrated for {steps_json['minutes']:g} min on: {steps_json['machine']}"
                        if steps_json else f"{args.minutes:g} min of training each"))
    return steps_json


def budgeted(cfg: TrainConfig, name: str, minutes: float, steps_json: dict | None, seed: int = 0) -> TrainConfig:
    if steps_json:
        return replace(cfg, steps=int(steps_json[name]), seed=seed)
    return replace(cfg, steps=None, minutes=minutes, seed=seed)


def load_steps(path: str | None) -> dict | None:
    return json.loads(Path(path).read_text()) if path else None


def windows(img: np.ndarray, side: int, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    return [img[y:y + side, x:x + side] for y, x in
            zip(rng.integers(0, h - side + 1, n), rng.integers(0, w - side + 1, n))]


def floor_swd(ex: np.ndarray, side: int) -> float:
    """The exemplar's own crop-to-whole distance: what a perfect texture would score."""
    return float(np.mean([pyramid_swd(w, ex) for w in windows(ex, side, 8, seed=1)]))


def measure(textures: list[np.ndarray], ex: np.ndarray, floor: float, side: int) -> dict[str, float]:
    """Distances of two textures (two seeds, uint8, 256x256) to the exemplar (uint8)."""
    wins = [w for i, t in enumerate(textures) for w in windows(t, side, 4, seed=10 + i)]
    copy_rmse = copy_threshold(ex)
    return {
        "swd": float(np.mean([pyramid_swd(w, ex) for w in wins])) / floor,
        "color": float(np.mean([color_distance(t, ex) for t in textures])),
        "spectrum": float(np.mean([spectrum_distance(t, ex) for t in textures])),
        "seam": float(np.mean([seam_ratio(t) for t in textures])),
        "diversity": seed_diversity(textures[0], textures[1], ex) if len(textures) > 1 else float("nan"),
        "copies": float(np.mean([copy_fraction(t, ex, threshold=copy_rmse) for t in textures])),
    }


def grid_peak(textures: list[np.ndarray]) -> float:
    """The larger of the period-2 and period-4 grid peaks of bench/checkerboard.py, averaged
    over the textures (uint8): about 1-16 on a photo, hundreds where a fine grid shows."""
    return float(np.mean([max(grid_peaks(t.transpose(2, 0, 1).astype(np.float32) / 255)[:2]) for t in textures]))


def mesh_peak(textures: list[np.ndarray], ex: np.ndarray) -> float:
    """bench.metrics.mesh_excess of the textures against the photo, averaged: 2.6-4.8 for a
    256 px part of a bench photo against the whole; higher where a fine mesh shows."""
    return float(np.mean([mesh_excess(t, ex) for t in textures]))


def structure_of(synth: Synthesizer, ex: np.ndarray, seeds=(1, 2), size: tuple[int, int] = (512, 512)) -> float:
    """bench.metrics.structure_swd of textures of ``size`` (h, w; uint8) against the photo, averaged."""
    return float(np.mean([structure_swd(to_uint8(synth.synthesize(size, seed=s)), ex) for s in seeds]))


def textures_of(synth: Synthesizer, size: int | tuple[int, int] = 256, seeds=(1, 2)) -> tuple[list[np.ndarray], float]:
    size = (size, size) if isinstance(size, int) else tuple(size)
    synth.synthesize(size, seed=0)  # warm-up
    out, t0 = [], time.perf_counter()
    for s in seeds:
        out.append(to_uint8(synth.synthesize(size, seed=s)))
    if synth.device.type == "cuda":
        torch.cuda.synchronize()
    return out, (time.perf_counter() - t0) / len(seeds)


def window_side(ex: np.ndarray) -> int:
    return int(min(128, min(ex.shape[:2]) // 8 * 8))


def side_by_side(path: Path, ex: np.ndarray, images: dict[str, np.ndarray]) -> None:
    from PIL import Image, ImageDraw

    gap, top = 8, 16
    width = ex.shape[1] + sum(im.shape[1] + gap for im in images.values())
    height = max(ex.shape[0], *(im.shape[0] for im in images.values())) + top
    canvas = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(canvas)
    x = 0
    for label, im in {"exemplar 1:1": ex, **images}.items():
        canvas.paste(Image.fromarray(im), (x, top))
        d.text((x + 2, 2), label, fill="black")
        x += im.shape[1] + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, quality=90)
