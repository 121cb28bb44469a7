"""Style training: what the relu2_1/relu3_1 feature term adds to the paper's loss.

    python bench/style_ablation.py [--steps 500] [--size 256] [--out docs/style]

The paper trains G on MDAN targets with pixel MSE (~0.99) plus the adversarial hinge term
(~0.01). Our default adds a feature MSE on relu2_1/relu3_1 (``feature_weight`` 1.0). Here
two presets are trained from the same cached MDAN targets, with the same seed and steps,
one with the feature term and one without (the paper's loss). Both stylise a photo none of
them trained on; the figures compare each against MDAN's own result for that photo (the
reference G learns to imitate):

- sharpness: mean gradient magnitude of the output / that of MDAN's result (1.0 = as crisp);
- patch SWD: sliced Wasserstein distance between 8x8 pixel patches of the output and of
  MDAN's result (lower = closer local texture);
- Gram: relu3_1 Gram distance to the style image (lower = closer style statistics).

It writes ``style_ablation.png`` (held-out photo | MDAN | with features | paper's loss).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

CONTENT = ("astronaut.png", "chelsea.png", "rocket.jpg")
STYLE = "coffee.png"


def _sharpness(img: np.ndarray) -> float:
    lum = img.mean(-1)
    return float(np.hypot(np.diff(lum, axis=0)[:, :-1], np.diff(lum, axis=1)[:-1]).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=500, help="training steps (the first 200 invert VGG19)")
    ap.add_argument("--size", type=int, default=256, help="content photos' and the style's longest side")
    ap.add_argument("--out", default=str(ROOT / "docs" / "style"))
    args = ap.parse_args()
    from bench.machine import describe

    print(describe())

    import skimage
    import torch

    from bench.metrics import patch_swd
    from engine.presets import open_preset
    from engine.synth import Synthesizer, stylize_image, to_uint8
    from training.mdan import MDAN, fit_size, to_tensor
    from training.loop import Trainer
    from training.style import StyleConfig, StyleTask

    data = Path(skimage.__file__).parent / "data"
    work = Path(tempfile.mkdtemp(prefix="mgan-ablation-"))
    content_dir = work / "content"
    content_dir.mkdir()
    for name in CONTENT:
        Image.open(data / name).convert("RGB").save(content_dir / (Path(name).stem + ".png"))

    results = {}
    for label, weight in (("pixel + hinge + features (ours)", 1.0), ("pixel + hinge (paper)", 0.0)):
        cfg = StyleConfig(steps=args.steps, content_size=args.size, exemplar_size=args.size,
                          feature_weight=weight, checkpoint_every=10 ** 6, preview_every=10 ** 6)
        run = work / f"run-{weight}"
        if weight == 0.0:  # the same MDAN targets: made once, by the first run
            shutil.copytree(work / "run-1.0" / "targets", run / "targets")
        task = StyleTask(data / STYLE, content_dir, cfg, source="scikit-image", licence="CC0")
        trainer = Trainer(task, f"ablation-{int(weight)}", run, preset_dir=work / "presets")
        info = open_preset(trainer.run())
        results[label] = (info, float(info.meta["training"]["train_seconds"]))

    photo = fit_size(np.asarray(Image.open(data / "camera.png").convert("RGB"), np.float32) / 255, args.size)
    mdan = MDAN(data / STYLE, StyleConfig(content_size=args.size, exemplar_size=args.size).mdan_config())
    reference, _ = mdan.run(photo, progress=True, desc="mdan camera (reference)")
    print(f"\n## Style training with and without the feature term ({args.steps} steps, "
          f"{len(CONTENT)} content photos at {args.size} px; held-out photo camera.png)\n")
    print("| loss | G training | sharpness / MDAN | patch SWD to MDAN | relu3_1 Gram to style |")
    print("|---|---:|---:|---:|---:|")
    print(f"| MDAN itself (the reference) | | 1.00 | 0.00 | {mdan.style_distance(to_tensor(reference)):.3f} |")
    row = [photo, reference]
    for label, (info, seconds) in results.items():
        out = stylize_image(Synthesizer.load(info), photo)
        row.append(out)
        with torch.no_grad():
            gram = mdan.style_distance(to_tensor(out))
        print(f"| {label} | {seconds / 60:.1f} min | {_sharpness(out) / _sharpness(reference):.2f} | "
              f"{patch_swd(out, reference):.2f} | {gram:.3f} |")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([to_uint8(x) for x in row], 1)).save(out_dir / "style_ablation.png")
    print(f"\nwrote {out_dir / 'style_ablation.png'} (camera | MDAN | with features | paper's loss)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
