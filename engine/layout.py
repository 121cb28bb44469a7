"""A coarse layout for G: the photo's large structure, quilted at 1/8 resolution.

A feed-forward G reads VGG19 relu4_1 of noise, which holds nothing larger than relu4_1's
receptive field (68 px); so the ledges of a cliff, a carpet's motifs and rust's patches
come out as blobs of one size. A layout preset's G also reads a colour map at 1/8 of the
output's resolution (one cell per relu4_1 cell): the photo, shrunk 8x by area, cut into
blocks and quilted (Efros and Freeman 2001) onto the canvas's torus, each block chosen
among the photo's blocks that agree best with what its overlaps already hold, and
feathered in. Training asks G's output, shrunk the same way, to follow the map, while the
texture losses ask its every patch to look like the photo; so the map lays out where
things go, and G draws them, at the photo's own detail.

- ``source_cells``: the photo at 1/8 by area, the cells that blocks are cut from (a buffer
  of the preset).
- ``quilt``: a periodic map of any size in cells, a pure function of (source, size, seed):
  the same canvas and seed give the same map, so a tiled decode equals the untiled one.
- ``layout_inputs``: rows, cols (pixel indices of a window, wrapped) -> G's map input.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CELL = 8            # px per map cell: relu4_1's stride
BLOCK = 6           # cells a side of a quilted block (48 px)
OVERLAP = 2         # cells two neighbouring blocks share
CANDIDATES = 1024   # blocks compared for each placement (drawn at random where the photo has more)
CHOOSE = 3          # one of the best this many, at random


def source_cells(exemplar: torch.Tensor) -> torch.Tensor:
    """(1,3,H,W) photo in [0,1] -> (3,H/8,W/8) float32 cells (area average, the last
    partial cells dropped)."""
    h, w = exemplar.shape[-2] // CELL * CELL, exemplar.shape[-1] // CELL * CELL
    return F.avg_pool2d(exemplar[..., :h, :w].float(), CELL)[0].cpu()


def _blocks(source: np.ndarray, block: int) -> np.ndarray:
    """(3,h,w) -> (N, block, block, 3): every block x block window."""
    s = np.ascontiguousarray(source.transpose(1, 2, 0))
    win = np.lib.stride_tricks.sliding_window_view(s, (block, block), axis=(0, 1))  # (h-b+1, w-b+1, 3, b, b)
    return np.ascontiguousarray(win.transpose(0, 1, 3, 4, 2).reshape(-1, block, block, 3))


def _ramp(block: int, overlap: int) -> np.ndarray:
    """Feathering weights of a block: rising over its overlaps from each side."""
    r = np.ones(block, np.float32)
    for i in range(overlap):
        r[i] = r[block - 1 - i] = (i + 1) / (overlap + 1)
    return np.outer(r, r)[..., None]


def quilt(source: torch.Tensor | np.ndarray, size: tuple[int, int], seed: int,
          block: int = BLOCK, overlap: int = OVERLAP) -> np.ndarray:
    """A (H, W, 3) float32 map, periodic in both directions, quilted from ``source``
    (3,h,w) cells."""
    # (presets store the cells as float16, whose arithmetic numpy runs ~10x slower)
    src = np.asarray(source.float().numpy() if isinstance(source, torch.Tensor) else source, np.float32)
    H, W = size
    block = max(2, min(block, src.shape[1], src.shape[2], H, W))
    overlap = min(overlap, block - 1)
    step = block - overlap
    cands = _blocks(src, block)
    flat = cands.reshape(len(cands), -1)
    sq = flat * flat
    ramp = _ramp(block, overlap)
    rng = np.random.default_rng(seed)
    acc = np.zeros((H, W, 3), np.float32)
    wsum = np.zeros((H, W, 1), np.float32)
    for y in range(0, H, step):
        for x in range(0, W, step):
            rows = np.arange(y, y + block) % H
            cols = np.arange(x, x + block) % W
            ws = wsum[np.ix_(rows, cols)]
            pick = rng.integers(0, len(cands), CANDIDATES) if len(cands) > CANDIDATES else np.arange(len(cands))
            if ws.any():
                target = acc[np.ix_(rows, cols)] / np.maximum(ws, 1e-6)
                mask = np.broadcast_to(ws > 0, target.shape).astype(np.float32).reshape(-1)
                # masked squared distance of each candidate to what the canvas holds there
                err = sq[pick] @ mask - 2 * flat[pick] @ (mask * target.reshape(-1))
                k = min(CHOOSE, len(err))
                best = pick[np.argpartition(err, k - 1)[:k]]
                choice = best[rng.integers(len(best))]
            else:
                choice = pick[rng.integers(len(pick))]
            acc[np.ix_(rows, cols)] += ramp * cands[choice]
            wsum[np.ix_(rows, cols)] += ramp
    return acc / np.maximum(wsum, 1e-6)


def layout_inputs(source: torch.Tensor, period: tuple[int, int], seed: int):
    """rows, cols (pixel indices of a window of a canvas with this period, multiples of 8
    apart, wrapped) -> {"layout8": (1,3,len(rows)/8,len(cols)/8)}: the canvas's map."""
    ph, pw = period
    grid = quilt(source, (ph // CELL, pw // CELL), seed)

    def inputs(rows: np.ndarray, cols: np.ndarray, device=None) -> dict[str, torch.Tensor]:
        r = (np.asarray(rows)[::CELL] // CELL) % grid.shape[0]
        c = (np.asarray(cols)[::CELL] // CELL) % grid.shape[1]
        t = torch.from_numpy(np.ascontiguousarray(grid[np.ix_(r, c)].transpose(2, 0, 1)))[None]
        return {"layout8": t.to(device) if device is not None else t}

    return inputs
