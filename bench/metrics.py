"""Texture-statistics distances used by the benchmarks (and nowhere in the product).

- ``gram_distance``: VGG19 Gram matrices on relu1_1..relu4_1, relative squared error
  averaged over layers (what Gatys' method optimises: a VGG-side view).
- ``patch_swd``: sliced Wasserstein distance between the distributions of 8x8 RGB pixel
  patches (no VGG: a pixel-side view of local structure and colour).
"""
from __future__ import annotations

import numpy as np
import torch

from engine.vgg import get_vgg19
from training.texture import gram

TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H,W,3) float [0,1] or uint8 -> (1,3,H,W) float."""
    a = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


@torch.no_grad()
def grams(img: np.ndarray) -> dict[str, torch.Tensor]:
    vgg = get_vgg19("relu4_1")
    feats = vgg(to_tensor(img), TAPS)
    # The training loss's own Gram (training.texture.gram), on features without the
    # wrapped border ring.
    return {t: gram(f[..., 1:-1, 1:-1])[0] for t, f in feats.items()}


def gram_distance(img: np.ndarray, target: dict[str, torch.Tensor]) -> float:
    g = grams(img)
    return float(np.mean([((g[t] - target[t]) ** 2).sum() / (target[t] ** 2).sum() for t in TAPS]))


def _patches(img: np.ndarray, size: int = 8, stride: int = 2) -> np.ndarray:
    a = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    win = np.lib.stride_tricks.sliding_window_view(a, (size, size, 3))[::stride, ::stride, 0]
    return win.reshape(-1, size * size * 3)


def patch_swd(img: np.ndarray, reference: np.ndarray, n_proj: int = 256, seed: int = 0,
              max_patches: int = 8192) -> float:
    """Sliced Wasserstein-1 distance between 8x8 patch distributions (x100 for legibility)."""
    rng = np.random.default_rng(seed)
    a, b = _patches(img), _patches(reference)
    a = a[rng.permutation(len(a))[:max_patches]]
    b = b[rng.permutation(len(b))[:max_patches]]
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    dirs = rng.standard_normal((a.shape[1], n_proj)).astype(np.float32)
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    pa, pb = np.sort(a @ dirs, axis=0), np.sort(b @ dirs, axis=0)
    return float(np.abs(pa - pb).mean() * 100)
