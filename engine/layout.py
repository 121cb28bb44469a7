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
- ``repeat_map``: for a patterned photo (a carpet, a printed fabric, a wallpaper) whose
  repeat the user gives (``mgan train --repeat WxH``), the map is not quilted but one repeat
  of the photo, read from its cells and laid edge to edge: the pattern's whole motif at 1/8,
  larger than any training canvas, which G then draws in the photo's detail. A canvas holds
  whole repeats: each is stretched to fit (``repeat_counts``), the way a regular photo's
  waves are quantised (engine/lattice.py). ``find_repeat`` reads the repeat from the photo
  where the user asks for it (``--repeat auto``). A repeat's G also reads the same repeat
  at 1/4 (``FINE`` cells, from the photo's own 4 px cells, read at the same place for the
  same seed): a carpet's 5 px lines, which 8 px cells blur away, are placed to 4 px.
- ``layout_inputs``: rows, cols (pixel indices of a window, wrapped) -> G's map inputs.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .lattice import luma

CELL = 8            # px per map cell: relu4_1's stride
FINE = 4            # px per cell of a repeat's finer map (relu3_1's stride), where G reads one
BLOCK = 6           # cells a side of a quilted block (48 px)
OVERLAP = 2         # cells two neighbouring blocks share
CANDIDATES = 1024   # blocks compared for each placement (drawn at random where the photo has more)
CHOOSE = 3          # one of the best this many, at random


def source_cells(exemplar: torch.Tensor, cell: int = CELL) -> torch.Tensor:
    """(1,3,H,W) photo in [0,1] -> (3,H/cell,W/cell) float32 cells (area average) of the
    photo cut to whole 8 px cells, so that its 1/4 cells (``FINE``) cover the same pixels."""
    h, w = exemplar.shape[-2] // CELL * CELL, exemplar.shape[-1] // CELL * CELL
    return F.avg_pool2d(exemplar[..., :h, :w].float(), cell)[0].cpu()


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


def parse_repeat(text: str) -> tuple[float, float] | str:
    """A repeat as a user writes it, WIDTHxHEIGHT px (decimals allowed) or "auto" -> (height,
    width) or "auto" (``mgan train --repeat``, the engine's ``train`` field ``repeat``)."""
    if not isinstance(text, str):
        raise ValueError(f"repeat must be WIDTHxHEIGHT in px, e.g. 226x292, or auto, got {text!r}")
    if text.strip().lower() == "auto":
        return "auto"
    try:
        w, h = (float(p) for p in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"repeat must be WIDTHxHEIGHT in px, e.g. 226x292, or auto, got {text!r}") from None
    return h, w


REPEAT_MIN_CORRELATION = 0.3   # a pattern's repeat: its high-passed luma correlates this much with itself shifted by it
REPEAT_MIN_SHIFT = 32          # px: finer repetition is local texture, G draws it unaided
REPEAT_MIN_OVERLAP = 0.25      # share of the photo that a shift must leave overlapping (and at least 64 px)


def box_sums(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """The sum of ``x`` (2-D) over every h x w window inside it: (H-h+1, W-w+1)."""
    c = np.pad(x, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return c[h:, w:] - c[:-h, w:] - c[h:, :-w] + c[:-h, :-w]


def highpass(y: np.ndarray, r: int = 12) -> np.ndarray:
    """Luma less its (2r+1)^2 box mean: shading and broad colour drifts out, the pattern's
    edges kept."""
    k = 2 * r + 1
    return y - box_sums(np.pad(y, r, mode="reflect"), k, k) / (k * k)


def _shift_profile(y: np.ndarray, jitter: int = 8, step: int = 2) -> dict[int, float]:
    """{shift down in px: the best correlation of ``y`` with itself shifted by it, over
    sideways shifts within +-``jitter`` (a pattern woven or printed a little askew)}."""
    h, w = y.shape
    out = {}
    for d in range(REPEAT_MIN_SHIFT, h - max(64, int(REPEAT_MIN_OVERLAP * h)) + 1, step):
        best = -1.0
        for j in range(-jitter, jitter + 1, 2):
            a = y[d:, max(j, 0):w + min(j, 0)]
            b = y[:h - d, max(-j, 0):w - max(j, 0)]
            a, b = a - a.mean(), b - b.mean()
            best = max(best, float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-12)))
        out[d] = best
    return out


def find_repeat(rgb: np.ndarray) -> tuple[tuple[int, int], tuple[float, float]]:
    """A patterned photo's repeat ((h, w) px, (correlation down, across)) read from the photo
    ((H, W, 3) in [0, 1] or 0..255): down and across, the shortest shift at which its
    high-passed luma correlates with itself at a peak of at least 0.8 of the best peak, and
    of ``REPEAT_MIN_CORRELATION`` or more (the fabric built-in's carpet: 292 and 226 px, 0.41
    and 0.33; every irregular photo of the bench and the built-ins 0.12 or less). A clear
    error where either direction has none."""
    y = luma(rgb)
    # a photo trained larger than 512 px is searched at 1/f by area (the search's cost grows
    # with the cube of the side), its repeat to within f px
    f = max(1, -(-max(y.shape) // 512))
    if f > 1:
        h, w = y.shape[0] // f * f, y.shape[1] // f * f
        y = y[:h, :w].reshape(h // f, f, w // f, f).mean((1, 3))
    y = highpass(y)
    found, scores = [], []
    for name, img in (("down", y), ("across", y.T)):
        prof = _shift_profile(img)
        ds = sorted(prof)
        peaks = [(prof[d], d) for i, d in enumerate(ds)
                 if 0 < i < len(ds) - 1 and prof[d] >= prof[ds[i - 1]] and prof[d] >= prof[ds[i + 1]]]
        top = max(peaks)[0] if peaks else 0.0
        if top < REPEAT_MIN_CORRELATION:
            why = (f"its best match with itself shifted {REPEAT_MIN_SHIFT} px or more correlates {top:.2f}, "
                   f"a pattern's repeat {REPEAT_MIN_CORRELATION} or more" if peaks
                   else "its match with itself only falls as the shift grows, with no peak")
            raise ValueError(f"no repeat found {name} the photo ({why}): give --repeat WIDTHxHEIGHT by hand, "
                             f"or leave it out")
        d = min(d for c, d in peaks if c >= 0.8 * top)
        found.append(d * f)
        scores.append(round(prof[d], 2))
    return (found[0], found[1]), (scores[0], scores[1])


def repeat_counts(repeat: tuple[int, int], period: tuple[int, int]) -> tuple[int, int]:
    """Whole repeats (down, across) that a canvas of ``period`` px holds: the nearest count,
    at least one."""
    return tuple(max(1, int(round(p / r))) for p, r in zip(period, repeat))


def repeat_stretch(repeat: tuple[int, int], period: tuple[int, int]) -> float:
    """Largest relative change of the repeat's size when ``period`` holds whole repeats."""
    return max(abs(p / (n * r) - 1.0) for p, r, n in zip(period, repeat, repeat_counts(repeat, period)))


def repeat_fit(repeat: tuple[int, int], period: tuple[int, int]) -> tuple[float, tuple[int, int], tuple[int, int]]:
    """How a canvas of ``period`` px lays a repeat of ``repeat`` (h, w) px: the stretch
    (``repeat_stretch``), the whole repeats (down, across), and the nearest period in
    multiples of 8 that holds that many nearly unstretched."""
    counts = repeat_counts(repeat, period)
    exact = tuple(int(-(-n * r // 8) * 8) for n, r in zip(counts, repeat))
    return repeat_stretch(repeat, period), counts, exact


def repeat_map(source: torch.Tensor | np.ndarray, repeat: tuple[int, int], size: tuple[int, int], seed: int,
               fit: bool = True, cell: int = CELL) -> np.ndarray:
    """A (H, W, 3) float32 map of ``size`` cells: one repeat of the photo, ``repeat`` (h, w)
    px, laid edge to edge. The repeat is read at a place in the photo drawn from ``seed``
    (different seeds, different phases of the pattern), by bilinear interpolation of the
    photo's cells: where the pattern truly repeats, the cells past a repeat's end are those
    at its start, so the joins are as smooth as the photo. ``fit``: the map wraps around,
    holding whole repeats, each stretched to fit (``repeat_counts``); else it keeps the
    photo's scale and does not wrap (a training canvas smaller than the repeat). ``cell``:
    px per cell of ``source`` and of the map (``FINE``: the finer map, ``source_cells`` at
    that cell); the same seed reads the repeat at the same place at every cell size."""
    src = np.asarray(source.float().numpy() if isinstance(source, torch.Tensor) else source, np.float32)
    h, w = src.shape[1:]
    H, W = size
    rh, rw = (float(r) for r in repeat)
    if rh + CELL > h * cell or rw + CELL > w * cell:
        raise ValueError(f"a repeat of {rw:.0f}x{rh:.0f} px does not fit in the photo's {w * cell}x{h * cell} px "
                         f"with a cell to spare")
    rng = np.random.default_rng([int(seed) % (2 ** 63), 0x2E9EA7])
    oy, ox = rng.uniform(0, h * cell - CELL - rh), rng.uniform(0, w * cell - CELL - rw)
    if fit:
        ny, nx = repeat_counts((rh, rw), (H * cell, W * cell))
        ky, kx = ny * rh / (H * cell), nx * rw / (W * cell)
    else:
        ky = kx = 1.0

    def axis(n: int, k: float, r: float, o: float, limit: int):
        # a cell's centre -> its place in the repeat -> the photo's cell coordinates
        t = np.mod((np.arange(n) + 0.5) * cell * k, r)
        c = np.clip((o + t) / cell - 0.5, 0, limit - 1)
        lo = np.minimum(np.floor(c).astype(np.int64), limit - 2)
        return lo, (c - lo).astype(np.float32)

    y0, fy = axis(H, ky, rh, oy, h)
    x0, fx = axis(W, kx, rw, ox, w)
    s = src.transpose(1, 2, 0)
    fx = fx[None, :, None]

    def across(rows: np.ndarray) -> np.ndarray:  # the rows, interpolated between their cells x0 and x0 + 1
        return rows[:, x0] * (1 - fx) + rows[:, x0 + 1] * fx

    top, bottom = across(s[y0]), across(s[y0 + 1])
    return np.ascontiguousarray(top * (1 - fy)[:, None, None] + bottom * fy[:, None, None], dtype=np.float32)


def layout_inputs(source: torch.Tensor, period: tuple[int, int], seed: int, repeat: tuple[int, int] = (),
                  fine: torch.Tensor | None = None):
    """rows, cols (pixel indices of a window of a canvas with this period, multiples of 8
    apart, wrapped) -> {"layout8": (1,3,len(rows)/8,len(cols)/8)}: the canvas's map, quilted,
    or with ``repeat`` (h, w px) the photo's repeat laid edge to edge (``repeat_map``); with
    ``fine`` (the photo's ``FINE`` cells, a repeat's only) also {"layout4": ...}, the same
    repeats at 1/4."""
    ph, pw = period
    grid = (repeat_map(source, repeat, (ph // CELL, pw // CELL), seed) if repeat
            else quilt(source, (ph // CELL, pw // CELL), seed))
    grids = {"layout8": (grid, CELL)}
    if fine is not None:
        grids["layout4"] = (repeat_map(fine, repeat, (ph // FINE, pw // FINE), seed, cell=FINE), FINE)

    def inputs(rows: np.ndarray, cols: np.ndarray, device=None) -> dict[str, torch.Tensor]:
        out = {}
        for key, (g, cell) in grids.items():
            r = (np.asarray(rows)[::cell] // cell) % g.shape[0]
            c = (np.asarray(cols)[::cell] // cell) % g.shape[1]
            t = torch.from_numpy(np.ascontiguousarray(g[np.ix_(r, c)].transpose(2, 0, 1)))[None]
            out[key] = t.to(device) if device is not None else t
        return out

    return inputs
