"""Checkerboard artefacts of the two generator designs, measured on their output spectra.

A stride-2 transposed conv with a 4x4 kernel lets neighbouring output pixels receive
different numbers of kernel taps, printing a period-2 pattern; nearest-neighbour
upsampling followed by a 3x3 conv cannot. Figures: the share of the output's (non-DC)
power on the Nyquist row and column (period-2 patterns), and on the other harmonics of
period 8 (a grid at relu4_1 resolution); the exemplar photo is the reference.

    python bench/checkerboard.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.generator import Generator, GeneratorConfig  # noqa: E402
from engine.noise import brown_noise  # noqa: E402
from engine.presets import list_presets  # noqa: E402
from engine.synth import Synthesizer  # noqa: E402
from engine.vgg import get_vgg19  # noqa: E402


def grid_shares(img: np.ndarray) -> tuple[float, float]:
    """img (3,H,W) with sides multiple of 8 -> (share of non-DC power on the Nyquist
    row/column: period-2 checkerboards; share on the other harmonics of period 8, i.e. the
    relu4_1 grid that G upsamples from)."""
    x = img - img.mean(axis=(1, 2), keepdims=True)
    p = np.abs(np.fft.fft2(x)) ** 2
    h, w = p.shape[1:]
    nyq = np.zeros((h, w), bool)
    nyq[h // 2, :] = nyq[:, w // 2] = True
    grid = np.zeros((h, w), bool)
    for k in (1, 2, 3, 5, 6, 7):
        grid[k * h // 8, :] = grid[:, k * w // 8] = True
    grid &= ~nyq
    return float(p[:, nyq].sum() / p.sum()), float(p[:, grid].sum() / p.sum())


def main() -> None:
    vgg = get_vgg19("relu4_1")
    x = torch.from_numpy(brown_noise(0, (256, 256)))[None]
    with torch.no_grad():
        feats = vgg(x)["relu4_1"]
    print("| generator | state | period-2 power share | period-8 grid share |")
    print("|---|---|---:|---:|")
    for arch in ("paper", "upsample"):
        shares = []
        for seed in range(3):
            torch.manual_seed(seed)
            g = Generator(GeneratorConfig(arch=arch)).eval()
            for m in g.modules():  # the paper's init: N(0, 0.02)
                if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                    torch.nn.init.normal_(m.weight, 0, 0.02)
            g.set_feature_stats(feats.mean((0, 2, 3)), feats.std((0, 2, 3)))
            with torch.no_grad():
                shares.append(grid_shares(g(feats)[0].numpy()))
        a, b = np.mean(shares, axis=0)
        print(f"| {arch} | untrained, N(0,0.02), 3 seeds | {a:.4f} | {b:.4f} |")
    for p in list_presets():
        if p.kind == "texture":
            s = Synthesizer.load(p, device="cpu", precision="fp32")
            img = s.synthesize((256, 256), seed=0).transpose(2, 0, 1)
            a, b = grid_shares(img)
            print(f"| {p.generator_config.arch} | trained preset '{p.name}' | {a:.4f} | {b:.4f} |")
            if (p.path / "exemplar.png").is_file():
                from PIL import Image
                ex = np.asarray(Image.open(p.path / "exemplar.png").convert("RGB"), np.float32) / 255
                ex = ex[:ex.shape[0] // 8 * 8, :ex.shape[1] // 8 * 8].transpose(2, 0, 1)
                a, b = grid_shares(ex)
                print(f"| - | its exemplar photo (reference) | {a:.4f} | {b:.4f} |")


if __name__ == "__main__":
    main()
