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

    def __init__(self, channels: int = 128, global_head: bool = False, fine_head: bool = False):
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
        # ``fine_head``: a small net of its own on relu2_1 (two stride-2 convs, ~30 px of
        # reach): it judges the fine grain (crisp grains and edges) that relu3_1's patches
        # average over.
        self.fine = nn.Sequential(
            spectral_norm(nn.Conv2d(128, channels // 2, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(channels // 2, channels // 2, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(channels // 2, 1, 1)),
        ) if fine_head else None

    def forward(self, relu3_1: torch.Tensor, relu2_1: torch.Tensor | None = None):
        """The patch scores; with more heads a tuple (patch scores, global scores, fine
        scores), the global head's only for a canvas large enough for it (64 px: relu3_1 of
        16 cells a side), the fine head's only when relu2_1 is given."""
        # VGG features are large (Caffe scale); a fixed scale keeps the first conv's inputs O(1).
        trunk = self.net[:4](relu3_1 / 32.0)
        scores = self.net[4:](trunk)
        heads = [_inner(scores)]
        if self.wide is not None and min(trunk.shape[-2:]) >= 4:   # (a canvas under 64 px: no global head)
            heads.append(self.wide(trunk))
        if self.fine is not None and relu2_1 is not None:
            heads.append(_inner(self.fine(relu2_1 / 32.0)))
        return heads[0] if len(heads) == 1 else tuple(heads)


def _inner(scores: torch.Tensor) -> torch.Tensor:
    """Without the outer ring of scores, which sees padding (the paper masks it out)."""
    return scores[..., 1:-1, 1:-1] if scores.shape[-1] > 2 and scores.shape[-2] > 2 else scores


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
