"""Checkerboard artefacts of the two generator designs, measured on their output spectra.

A stride-2 transposed conv with a 4x4 kernel lets neighbouring output pixels receive
different numbers of kernel taps, printing a period-2 pattern; nearest-neighbour
upsampling followed by a 3x3 conv cannot. The figure is the share of the output's
(non-DC) power on the Nyquist row and column (period-2 patterns); a smooth image puts
almost none there.

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


def nyquist_share(img: np.ndarray) -> float:
    """img (3,H,W): power at the period-2 frequencies (the Nyquist row/column, and the
    period-8 harmonics of a 1/8-scale grid) over all non-DC power."""
    x = img - img.mean(axis=(1, 2), keepdims=True)
    p = np.abs(np.fft.fft2(x)) ** 2
    h, w = p.shape[1:]
    mask = np.zeros((h, w), bool)
    mask[h // 2, :] = mask[:, w // 2] = True
    return float(p[:, mask].sum() / p.sum())


def main() -> None:
    vgg = get_vgg19("relu4_1")
    x = torch.from_numpy(brown_noise(0, (256, 256)))[None]
    with torch.no_grad():
        feats = vgg(x)["relu4_1"]
    print("| generator | state | Nyquist power share |")
    print("|---|---|---:|")
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
                shares.append(nyquist_share(g(feats)[0].numpy()))
        print(f"| {arch} | untrained, N(0,0.02), 3 seeds | {np.mean(shares):.4f} |")
    for p in list_presets():
        if p.kind == "texture":
            s = Synthesizer.load(p, device="cpu", precision="fp32")
            img = s.synthesize((256, 256), seed=0).transpose(2, 0, 1)
            print(f"| {p.generator_config.arch} | trained preset '{p.name}' | {nyquist_share(img):.4f} |")
    ex = [p for p in list_presets() if (p.path / "exemplar.png").is_file()]
    if ex:
        from PIL import Image
        a = np.asarray(Image.open(ex[0].path / "exemplar.png").convert("RGB"), np.float32).transpose(2, 0, 1) / 255
        print(f"| - | exemplar photo '{ex[0].name}' (reference) | {nyquist_share(a):.4f} |")


if __name__ == "__main__":
    main()
