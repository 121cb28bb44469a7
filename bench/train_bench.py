"""Training speed at default settings, measured in one run, and what the built-in presets took.

    python bench/train_bench.py [--steps 30]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--image", default=str(ROOT / "presets" / "gravel" / "exemplar.png"))
    args = ap.parse_args()
    from bench.machine import describe

    print(describe())

    import torch

    from engine.presets import BUILTIN_DIR, list_presets
    from training.loop import Trainer
    from training.texture import TextureTask, TrainConfig

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| precision | batch x crop | s / step | steps / min |")
    print("|---|---|---:|---:|")
    for precision in ("fp32", "auto"):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(steps=args.steps + 5, precision=precision, checkpoint_every=10_000,
                              preview_every=10_000)
            t = Trainer(TextureTask(args.image, cfg), "bench", Path(tmp) / "run", preset_dir=Path(tmp),
                        show_progress=False, log=lambda *a: None)
            t.prepare()
            for _ in range(5):  # warm-up, includes the first loss re-balancing
                t.train_step()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                t.train_step()
            per = (time.perf_counter() - t0) / args.steps
        print(f"| {precision} | {cfg.batch} x {cfg.crop}^2 | {per:.3f} | {60 / per:.0f} |")

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
