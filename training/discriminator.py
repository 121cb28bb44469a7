"""The Markovian discriminator on VGG19 relu3_1 "neural patches", and its hinge losses."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """relu3_1 (N,256,h,w) -> (N,1,h/4-1,w/4-1) scores, one per neural patch.

    The paper's layout (4x4 stride-2 convs, LeakyReLU 0.2, a 1x1 scorer) with 128 channels
    (the paper found 64 vs 128 barely differ). Spectral norm instead of BatchNorm: per-batch
    statistics let D tell real from fake batches apart by their statistics alone, and D
    winning too fast is exactly what turns G's output into a checkerboard on small data.
    """

    def __init__(self, channels: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(256, channels, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(channels, channels, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(channels, 1, 1)),
        )

    def forward(self, relu3_1: torch.Tensor) -> torch.Tensor:
        # VGG features are large (Caffe scale); a fixed scale keeps the first conv's inputs O(1).
        scores = self.net(relu3_1 / 32.0)
        # The outer ring of scores sees padding; the paper masks it out.
        if scores.shape[-1] > 2 and scores.shape[-2] > 2:
            scores = scores[..., 1:-1, 1:-1]
        return scores


def hinge_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Margin-1 hinge (labels +1 real / -1 fake): does not saturate like sigmoid + BCE."""
    return torch.relu(1 - real_scores).mean() + torch.relu(1 + fake_scores).mean()


def hinge_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.mean()
