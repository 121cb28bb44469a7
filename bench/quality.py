"""Quality of every built-in texture preset against references measured in the same run.

For each preset: the exemplar at its training scale is the reference. Candidates are
compared by 128x128 windows (4 each) with two distances (bench/metrics.py):
  floor     other crops of the exemplar itself
  naive     the exemplar tiled 2x2, windows across its seams
  gatys     Gatys et al.'s optimisation (same VGG19, Gram on relu1_1..relu4_1, L-BFGS)
  mgan      the preset, one feed-forward pass, seamless
Lower is better. Times are for one 256x256 image.

    python bench/quality.py [--gatys-steps 300] [--presets a,b]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.metrics import TAPS, gram_distance, grams, patch_swd  # noqa: E402
from engine.noise import brown_noise  # noqa: E402
from engine.presets import BUILTIN_DIR, list_presets  # noqa: E402
from engine.synth import Synthesizer, to_uint8  # noqa: E402
from engine.vgg import get_vgg19  # noqa: E402
from training.texture import gram  # noqa: E402

WIN = 128


def windows(img: np.ndarray, n: int = 4, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    return [img[y:y + WIN, x:x + WIN] for y, x in
            zip(rng.integers(0, h - WIN + 1, n), rng.integers(0, w - WIN + 1, n))]


def seam_windows(img: np.ndarray) -> list[np.ndarray]:
    """Windows of the 2x2 tiling that straddle its seams."""
    t = np.tile(img, (2, 2, 1))
    h, w = img.shape[:2]
    c = WIN // 2
    return [t[h - c:h + c, w - c:w + c], t[h - c:h + c, c:c + WIN], t[c:c + WIN, w - c:w + c],
            t[h - c:h + c, w // 3:w // 3 + WIN]]


def gatys(exemplar: np.ndarray, size: int, steps: int, seed: int = 0) -> np.ndarray:
    """Gatys' texture synthesis: optimise pixels so their Grams match the exemplar's."""
    vgg = get_vgg19("relu4_1")
    target = grams(exemplar)
    x = torch.from_numpy(brown_noise(seed, (size, size)))[None].requires_grad_(True)
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
    return to_uint8(x.detach().clamp(0, 1)[0].permute(1, 2, 0).numpy())


def exemplar_of(preset) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(preset.path / "exemplar.png").convert("RGB"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gatys-steps", type=int, default=300)
    ap.add_argument("--presets", help="comma-separated names (default: every built-in texture preset)")
    args = ap.parse_args()
    presets = [p for p in list_presets() if p.kind == "texture" and p.path.parent == BUILTIN_DIR]
    if args.presets:
        presets = [p for p in presets if p.name in args.presets.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; windows {WIN}x{WIN}, "
          f"4 per candidate; Gatys {args.gatys_steps} L-BFGS iterations at 256x256\n")
    print("| preset | candidate | Gram distance (VGG) | patch SWD x100 (pixels) | time / 256x256 |")
    print("|---|---|---:|---:|---:|")
    for p in presets:
        ex = exemplar_of(p)
        target = grams(ex)
        synth = Synthesizer.load(p, device="cpu")
        synth.synthesize((256, 256), seed=0)  # warm-up
        t0 = time.perf_counter()
        gen = to_uint8(synth.synthesize((256, 256), seed=1))
        t_mgan = time.perf_counter() - t0
        t0 = time.perf_counter()
        gat = gatys(ex, 256, args.gatys_steps)
        t_gatys = time.perf_counter() - t0
        rows = [("floor: exemplar crops", windows(ex, seed=1), "-"),
                ("naive 2x2 tiling", seam_windows(ex), "-"),
                ("Gatys (L-BFGS)", windows(gat, seed=2), f"{t_gatys:.1f} s"),
                ("MGAN preset", windows(gen, seed=2), f"{t_mgan:.3f} s")]
        for label, wins, t in rows:
            gd = np.mean([gram_distance(w, target) for w in wins])
            swd = np.mean([patch_swd(w, ex) for w in wins])
            print(f"| {p.name} | {label} | {gd:.3f} | {swd:.2f} | {t} |")
        sys.stdout.flush()
        out = Path(__file__).resolve().parent.parent / "docs" / "gallery"
        out.mkdir(parents=True, exist_ok=True)
        from PIL import Image
        Image.fromarray(gat).save(out / f"{p.name}-gatys.png")


if __name__ == "__main__":
    main()
