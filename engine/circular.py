"""Wrap-around (circular) padding and the convolution built on it.

``nn.Conv2d(padding_mode="circular")`` pads through a generic path that copies between
memory layouts; on channels_last bf16 tensors it took 60% of a 512x512 synthesis
(profiled: 0.85 s vs 0.08 s for VGG19-to-relu4_1). Two concatenations keep the layout
and give the same numbers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def circular_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Pad the last two dims of (N,C,H,W) by ``p`` on each side with wrapped-around values."""
    if p == 0:
        return x
    x = torch.cat([x[..., -p:, :], x, x[..., :p, :]], dim=-2)
    return torch.cat([x[..., -p:], x, x[..., :p]], dim=-1)


class CircularConv2d(nn.Conv2d):
    """A stride-1 'same' convolution that wraps around; its parameters are a plain Conv2d's
    (``weight``, ``bias``), so saved weights load either way."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, padding=0, bias=bias)
        self.pad = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(circular_pad(x, self.pad), self.weight, self.bias)
