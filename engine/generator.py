"""The generator G: VGG19 relu4_1 features (512 ch, 1/8 resolution) -> sRGB pixels.

Two variants, both with circular padding in every convolution so G(roll(f)) = roll(G(f)):

- ``upsample`` (default, shipped): nearest-neighbour x2 upsampling followed by a 3x3 conv,
  three times. Every output pixel of a 2x2 block sees the same kernel, so there is no
  checkerboard (bench/checkerboard.py measures it).
- ``paper``: the paper's three 4x4 stride-2 transposed convs. Its kernel overlap is uneven,
  which prints a period-2 checkerboard; kept for that measurement.

Normalisation: no BatchNorm. Per-image statistics depend on the whole canvas and would
break "tiled == untiled"; instead the input features are standardised with fixed
per-channel statistics of the exemplar's relu4_1 (buffers saved in the preset).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .circular import CircularConv2d, circular_pad

ARCHS = ("upsample", "paper")


@dataclass(frozen=True)
class GeneratorConfig:
    arch: str = "upsample"
    widths: tuple[int, int, int] = (256, 128, 64)

    def to_dict(self) -> dict:
        return {"arch": self.arch, "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        arch = d.get("arch", "upsample")
        if arch not in ARCHS:
            raise ValueError(f"unknown generator arch {arch!r}; known: {', '.join(ARCHS)}")
        widths = tuple(int(w) for w in d.get("widths", (256, 128, 64)))
        if len(widths) != 3 or not all(1 <= w <= 1024 for w in widths):
            raise ValueError(f"generator widths must be three ints in 1..1024, got {d.get('widths')}")
        return cls(arch=arch, widths=widths)


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return CircularConv2d(cin, cout, k)


class CircularConvTranspose2d(nn.Module):
    """4x4 stride-2 transposed conv that wraps around: pad the input circularly by one
    cell, run the transposed conv unpadded, and crop to exactly 2x the input."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.deconv(circular_pad(x, 1))
        # Input (h+2) -> output 2(h+2)+2; the first 3 rows come from the padding wrap.
        return y[..., 3:3 + 2 * h, 3:3 + 2 * w]


class Generator(nn.Module):
    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config
        w1, w2, w3 = config.widths
        self.register_buffer("feat_mean", torch.zeros(1, 512, 1, 1))
        self.register_buffer("feat_std", torch.ones(1, 512, 1, 1))
        self.head = _conv(512, w1)
        if config.arch == "upsample":
            self.up = nn.ModuleList([_conv(w1, w2), _conv(w2, w3), _conv(w3, w3)])
        else:
            self.up = nn.ModuleList([CircularConvTranspose2d(w1, w2), CircularConvTranspose2d(w2, w3),
                                     CircularConvTranspose2d(w3, w3)])
        self.to_rgb = _conv(w3, 3)
        self.act = nn.LeakyReLU(0.2)

    # Receptive-field radius of G in output pixels: head 3x3 at 1/8 (8 px), one 3x3 per
    # upsampling at 1/4, 1/2, 1 (4+2+1), to_rgb (1); transposed convs reach a little more.
    HALO_PX = 24

    def forward(self, relu4_1: torch.Tensor) -> torch.Tensor:
        """(N,512,h,w) -> (N,3,8h,8w) sRGB in [0,1]."""
        x = (relu4_1 - self.feat_mean) / self.feat_std
        x = self.act(self.head(x))
        for layer in self.up:
            if self.config.arch == "upsample":
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = self.act(layer(x))
        return torch.sigmoid(self.to_rgb(x))

    @torch.no_grad()
    def init_output(self, mean_rgb: torch.Tensor, gain: float = 0.1) -> None:
        """Start near a flat image of the exemplar's mean colour: a scaled-down last layer
        and its bias at logit(mean). Keeps the sigmoid out of saturation early on, where
        the paper's default init collapses into a checkerboard."""
        self.to_rgb.weight.mul_(gain)
        m = mean_rgb.clamp(0.02, 0.98)
        self.to_rgb.bias.copy_(torch.log(m / (1 - m)))

    @torch.no_grad()
    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feat_mean.copy_(mean.view(1, 512, 1, 1))
        # Channels that barely fire on noise have a tiny std; a rare activation there would
        # blow up to thousands and saturate the output (seen as blobs). Floor the std.
        self.feat_std.copy_(std.clamp_min(0.1 * float(std.mean()) + 1e-3).view(1, 512, 1, 1))
