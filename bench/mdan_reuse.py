"""MDAN: does a discriminator trained on one image give the next image a head start?

    python bench/mdan_reuse.py [--size 256] [--steps 125]

The paper's initialisation finding: a D already trained on earlier images makes later
images converge in fewer steps, which is why ``mgan train`` (its MDAN targets) and
``mgan mdan`` on a sequence keep one D throughout. Here D is first trained on one photo
(astronaut), then each test photo is stylised twice from the same start: once with a fresh
D, once with the carried-over D. The figures are D-independent, after k steps: the relative
relu3_1 Gram distance of the image to the style (a VGG-side view), the sliced Wasserstein
distance between its 8x8 pixel patches and the style's (a pixel-side, Markovian view; lower
= more like the style for both), and the luminance correlation with the content photo at
the end (how much structure is kept).
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

CHECKPOINTS = (10, 25, 50, 125)


def _lum_corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.mean(-1).ravel(), b.mean(-1).ravel())[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="espresso", help="style preset whose style image is used")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=125)
    args = ap.parse_args()
    from bench.machine import describe

    print(describe())

    import skimage

    from bench.metrics import patch_swd
    from engine.presets import preset_from_arg
    from training.mdan import MDAN, MDANConfig, fit_size, to_tensor

    data = Path(skimage.__file__).parent / "data"
    style = preset_from_arg(args.preset).path / "exemplar.png"
    cfg = MDANConfig(steps=args.steps, size=args.size, style_size=384)
    checkpoints = tuple(k for k in CHECKPOINTS if k <= args.steps)

    def photo(name):
        return fit_size(np.asarray(Image.open(data / name).convert("RGB"), np.float32) / 255, args.size)

    warm = MDAN(style, cfg)
    warm.run(photo("astronaut.png"), progress=True, desc="D warm-up on astronaut")
    carried = copy.deepcopy(warm.state_dict())

    print(f"\n## MDAN with a fresh D vs a D carried over from another image "
          f"({args.size} px, style {args.preset})\n")
    print("Gram = relu3_1 Gram distance, SWD = 8x8 patch sliced Wasserstein distance, to the style "
          "after k steps (lower = more style); corr = luminance correlation with the content\n")
    print("| photo | D | " + " | ".join(f"Gram k={k}" for k in checkpoints) + " | "
          + " | ".join(f"SWD k={k}" for k in checkpoints) + " | corr |")
    print("|---|---|" + "---:|" * (2 * len(checkpoints) + 1))
    ratios = []
    for name in ("chelsea.png", "rocket.jpg", "camera.png"):
        content = photo(name)
        row = {}
        for label in ("fresh", "carried"):
            mdan = MDAN(style, cfg)  # same seed: the same real-patch draws and start
            if label == "carried":
                mdan.load_state_dict(copy.deepcopy(carried))
            out, history = mdan.run(content, progress=True, desc=f"{name} {label} D", snapshots=checkpoints)
            snaps = [history[k - 1]["image"] for k in checkpoints]
            dist = [mdan.style_distance(to_tensor(x)) for x in snaps]
            swd = [patch_swd(x, mdan.style) for x in snaps]
            row[label] = (dist, swd)
            print(f"| {name} | {label} | " + " | ".join(f"{d:.3f}" for d in dist) + " | "
                  + " | ".join(f"{d:.2f}" for d in swd) + f" | {_lum_corr(out, content):.2f} |", flush=True)
        ratios.append([[c / f for c, f in zip(row["carried"][m], row["fresh"][m])] for m in (0, 1)])
    mean = np.mean(ratios, 0)
    for m, label in enumerate(("Gram", "SWD")):
        print(f"\ncarried / fresh {label}, mean over the photos: "
              + ", ".join(f"k={k}: {r:.2f}" for k, r in zip(checkpoints, mean[m])))


if __name__ == "__main__":
    main()
