"""Checkerboard and grid artefacts of the generator designs, measured on their output spectra.

A stride-2 transposed conv with a 4x4 kernel lets neighbouring output pixels receive
different numbers of kernel taps, printing a period-2 pattern; nearest-neighbour
upsampling followed by a 3x3 conv cannot do that everywhere, but its 2x2 blocks leak a
period-2 (and, from the stage before, period-4) pattern wherever the image varies.
Two views of each:
- shares: the share of the output's (non-DC) power on the Nyquist row and column
  (period-2 patterns), and on the other harmonics of periods 4 and 8 (grids at relu3_1 and
  relu4_1 resolution). A whole line of the spectrum dilutes a faint grid;
- peaks: the power at the grid's own frequencies (k/2, k/4, k/8 cycles per px, along
  either axis or a diagonal; the largest) over the mean of the ring of frequencies two bins
  around it, on Hann-windowed images. About 1 where nothing repeats with that period; a
  grid the eye sees as fine lines stands 10 to 1000 times above its neighbours.
Each built-in preset's exemplar photo is its reference.

    python bench/checkerboard.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.generator import DEFAULT_WIDTHS, Generator, GeneratorConfig  # noqa: E402
from engine.noise import brown_noise  # noqa: E402
from engine.presets import list_presets  # noqa: E402
from engine.synth import Synthesizer  # noqa: E402
from engine.vgg import get_vgg19  # noqa: E402
from training.losses import grid_peaks as losses_grid_peaks  # noqa: E402


def grid_shares(img: np.ndarray) -> tuple[float, float, float]:
    """img (3,H,W) with sides multiple of 8 -> shares of the non-DC power on: the Nyquist
    row/column (period-2 checkerboards); the other harmonics of period 4 (the relu3_1
    grid); the remaining harmonics of period 8 (the relu4_1 grid that G upsamples from)."""
    x = img - img.mean(axis=(1, 2), keepdims=True)
    p = np.abs(np.fft.fft2(x)) ** 2
    h, w = p.shape[1:]

    def lines(ks, period):
        m = np.zeros((h, w), bool)
        for k in ks:
            m[k * h // period, :] = m[:, k * w // period] = True
        return m
    nyq = lines((1,), 2)
    grid4 = lines((1, 3), 4) & ~nyq
    grid8 = lines((1, 3, 5, 7), 8) & ~nyq & ~grid4
    return tuple(float(p[:, m].sum() / p.sum()) for m in (nyq, grid4, grid8))


def grid_peaks(img: np.ndarray) -> tuple[float, float, float]:
    """img (3,H,W) -> for periods 2, 4 and 8: the power of the luminance at the largest of
    that period's grid frequencies over the mean power of the ring two bins around it
    (training.losses.grid_peaks, Hann-windowed)."""
    logs = losses_grid_peaks(torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None], window=True)
    return tuple(float(v) for v in logs[0].exp().reshape(3, 4).amax(1))


def untrained(arch: str, taps: dict[str, torch.Tensor], seed: int) -> Generator:
    torch.manual_seed(seed)
    g = Generator(GeneratorConfig(arch=arch, widths=DEFAULT_WIDTHS[arch])).eval()
    for m in g.modules():  # the paper's init: N(0, 0.02)
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.normal_(m.weight, 0, 0.02)
    for tap in g.config.taps:
        g.set_feature_stats(taps[tap].mean((0, 2, 3)), taps[tap].std((0, 2, 3)), tap)
    return g


def crops(img: np.ndarray, side: int = 256, n: int = 4) -> list[np.ndarray]:
    """Corner-to-corner crops of the photo at the textures' size (a share depends on the
    size: the grid's lines are a fixed count of frequencies among side**2), or the whole
    photo cut to a multiple of 8 where it is smaller."""
    h, w = img.shape[1:]
    if min(h, w) < side:
        return [img[:, :h // 8 * 8, :w // 8 * 8]]
    return [img[:, y:y + side, x:x + side] for y, x in zip(np.linspace(0, h - side, n).astype(int),
                                                            np.linspace(0, w - side, n).astype(int))]


def row(label: str, state: str, shares) -> None:
    print(f"| {label} | {state} | " + " | ".join(f"{v:.4f}" for v in shares[:3])
          + "".join(f" | {v:.1f}" for v in shares[3:]) + " |")


def main() -> None:
    from bench.machine import describe

    print(describe() + "\n")
    vgg = get_vgg19("relu4_1")
    x = torch.from_numpy(brown_noise(0, (256, 256)))[None]
    with torch.no_grad():
        taps = vgg(x, ("relu2_1", "relu3_1", "relu4_1"))
    print("| generator | state | period-2 share | period-4 grid share | period-8 grid share "
          "| period-2 peak | period-4 peak | period-8 peak |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")

    def both(images):
        return (*np.mean([grid_shares(i) for i in images], axis=0), *np.mean([grid_peaks(i) for i in images], axis=0))
    for arch in ("paper", "upsample", "residual"):
        images = []
        for seed in range(3):
            g = untrained(arch, taps, seed)
            inputs = dict(taps) if arch == "residual" else taps["relu4_1"]
            with torch.no_grad():
                images.append(g(inputs)[0].numpy())
        label = f"{arch} ({GeneratorConfig().upsample}, the default)" if arch == "residual" else arch
        row(label, "untrained, N(0,0.02), 3 seeds", both(images))
    for p in list_presets():
        if p.kind != "texture":
            continue
        s = Synthesizer.load(p, device="cpu", precision="fp32")
        g = p.generator_config
        label = f"{g.arch}{f' ({g.upsample})' if g.arch == 'residual' else ''} '{p.name}'"
        row(label, "trained, 256x256, seeds 0-2",
            both([s.synthesize((256, 256), seed=k).transpose(2, 0, 1) for k in range(3)]))
        if (p.path / "exemplar.png").is_file():
            from PIL import Image

            ex = np.asarray(Image.open(p.path / "exemplar.png").convert("RGB"), np.float32).transpose(2, 0, 1) / 255
            row("-", "its exemplar photo, 256x256 crops (reference)", both(crops(ex)))

if __name__ == "__main__":
    main()
