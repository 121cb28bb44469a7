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

    def __init__(self, channels: int = 128, global_head: bool = False):
        super().__init__()
        # ``global_head``: two more stride-2 convs on the same trunk and their own scorer,
        # 46 relu3_1 cells (~180 px) of reach, a 128 px canvas whole: they judge how its
        # regions are laid out, where the patch scores judge its ~80 px patches.
        self.wide = nn.Sequential(
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(channels, channels, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(channels, channels, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(channels, 1, 1)),
        ) if global_head else None
        self.net = nn.Sequential(
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(256, channels, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(channels, channels, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(channels, 1, 1)),
        )

    def forward(self, relu3_1: torch.Tensor):
        """The patch scores; with the global head, (patch scores, global scores), but for a
        canvas too small for it (under 64 px: relu3_1 under 16 cells a side)."""
        # VGG features are large (Caffe scale); a fixed scale keeps the first conv's inputs O(1).
        trunk = self.net[:4](relu3_1 / 32.0)
        scores = self.net[4:](trunk)
        # The outer ring of scores sees padding; the paper masks it out.
        if scores.shape[-1] > 2 and scores.shape[-2] > 2:
            scores = scores[..., 1:-1, 1:-1]
        if self.wide is None or min(trunk.shape[-2:]) < 4:   # (a canvas under 64 px: patches alone)
            return scores
        return scores, self.wide(trunk)


def hinge_d_loss(real_scores, fake_scores) -> torch.Tensor:
    """Margin-1 hinge (labels +1 real / -1 fake): does not saturate like sigmoid + BCE.
    Scores of several heads (tuples) count alike: the mean of their losses."""
    if isinstance(real_scores, tuple):
        return sum(hinge_d_loss(r, f) for r, f in zip(real_scores, fake_scores)) / len(real_scores)
    return torch.relu(1 - real_scores).mean() + torch.relu(1 + fake_scores).mean()


def hinge_g_loss(fake_scores) -> torch.Tensor:
    if isinstance(fake_scores, tuple):
        return sum(hinge_g_loss(f) for f in fake_scores) / len(fake_scores)
    return -fake_scores.mean()
