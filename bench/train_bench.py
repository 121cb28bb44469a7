"""Training speed at default settings, measured in one run, and what the built-in presets took.

    python bench/train_bench.py [--steps 30] [--device cuda]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--image", default=str(ROOT / "training" / "exemplars" / "bricks.png"))
    ap.add_argument("--device")
    args = ap.parse_args()
    from bench.machine import describe

    print(describe())

    import torch

    from engine.presets import BUILTIN_DIR, list_presets
    from training.loop import Trainer
    from training.texture import TextureTask, TrainConfig, previous_recipe

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device or 'auto'}\n")
    print("| recipe | precision | batch x crop | s / step | steps in 5 min |")
    print("|---|---|---|---:|---:|")
    recipes = {"new (default)": TrainConfig(), "previous": previous_recipe(exemplar_size=None)}
    for label, recipe in recipes.items():
        for precision in ("fp32", "auto"):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = replace(recipe, steps=args.steps + 5, precision=precision, checkpoint_every=10_000,
                              preview_every=10_000)
                t = Trainer(TextureTask(args.image, cfg), "bench", Path(tmp) / "run", preset_dir=Path(tmp),
                            device=args.device, show_progress=False, log=lambda *a: None)
                t.prepare()
                for _ in range(5):  # warm-up, includes the first loss re-balancing
                    t.train_step()
                sync = torch.cuda.synchronize if t.device.type == "cuda" else (lambda: None)
                sync()
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    t.train_step()
                sync()
                per = (time.perf_counter() - t0) / args.steps
            print(f"| {label} | {precision} | {cfg.batch} x {t.task.crop}^2 | {per:.3f} | {300 / per:.0f} |")

    print("\nBuilt-in presets (recorded by the training run itself):\n")
    print("| preset | steps | training time | s / step |")
    print("|---|---:|---:|---:|")
    for p in list_presets():
        if p.path.parent != BUILTIN_DIR:
            continue
        tr = p.meta.get("training", {})
        secs = tr.get("train_seconds")
        if secs:
            print(f"| {p.name} | {tr['steps_done']} | {secs / 60:.1f} min | {secs / tr['steps_done']:.3f} |")


if __name__ == "__main__":
    main()
