"""Regular textures: the exemplar's lattice, and the periodic inputs that lay it out.

A feed-forward G sees only ~140 px around each output pixel, so from isotropic noise it
cannot keep a brick wall's courses straight across a canvas: every region picks its own
phase, and the courses wander. Regular textures get two more inputs (after the periodic
spatial GAN of Bergmann, Jetchev and Vollgraf 2017): sin and cos of 2*pi*(k . x + phi) for
each of the exemplar's dominant wave vectors k. One global phase per canvas, so the
courses run straight; the noise still varies every brick.

- ``detect_lattice`` finds the wave vectors in the photo's power spectrum: peaks that stand
  far above the spectrum's level at the same frequency (``MIN_PROMINENCE``), periods
  between ``MIN_PERIOD_PX`` and a third of the photo, at most two, not parallel. Grass and
  soil have none, and train as before.
- ``quantise`` rounds each wave vector to whole cycles over the canvas (or noise period),
  so the inputs wrap around exactly; the stretch is under 1/(2 * cycles). A bond's
  offset stays a simple fraction (a running bond's half brick stays a half).
- ``wave_inputs`` evaluates the fields for any window of a canvas from the window's global
  pixel indices, so a tiled decode equals the untiled one: sin and cos of each wave at
  1..3 times its frequency, and with two waves the bond coordinate in place of the second,
  whose iso-lines are head joints square to the courses.
- Stripes (boards, planks, grain: ``stripe_wave``): one direction, but no single period.
  The spectrum holds several strong peaks along one line that are not harmonics of one
  another (wood's grain at 12, 14, 17, 19 and 25 px; planks of uneven width). One wave
  there made every board the same width, and wood's a sixth of the photo's (its grain's
  14 px). Instead G gets ``stripe_inputs``: the phase of boards of uneven width (0.5 to
  1.5 times the lowest of those periods, new per seed), sin and cos of its harmonics as
  for one wave: straight boards, as wide as the photo's, each its own width.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch

MIN_PERIOD_PX = 12        # finer repetition is local texture: G draws it unaided
MIN_PROMINENCE = 100.0    # peak power / median power at the same frequency: regular photos 300+, others under 40
SUPPORT_PROMINENCE = 8.0  # a second, weaker wave: only where a further peak confirms its lattice
MAX_WAVES = 2
# Stripes: parallel peaks, not harmonics of the first, at least this share of its prominence
STRIPE_SHARE = 0.3
STRIPE_PEAKS = 2
STRIPE_BOARD_PROMINENCE = 30.0  # the boards: the lowest parallel peak standing this far above its ring
STRIPE_SPREAD = 0.5             # board widths: (1 +- this) x the boards' period, uniform
HARMONICS = 3             # what training gives a regular texture's G
WAVE_STRIDES = (8, 4, 2)  # G reads the fields at 1/8 (its stem), 1/4 and 1/2 (its side inputs)


def luma(rgb: np.ndarray) -> np.ndarray:
    """(H,W,3) (or (H,W), passed through) -> (H,W) float64 luma, in the input's own units."""
    a = np.asarray(rgb, dtype=np.float64)
    if a.ndim == 3:
        a = a[..., :3] @ np.array([0.299, 0.587, 0.114])
    return a


def spectrum_peaks(rgb: np.ndarray, pad: int = 4) -> list[tuple[float, float, float]]:
    """Local maxima of the Hann-windowed, ``pad``-times zero-padded power spectrum of the
    luma: [(fy, fx, prominence)] in cycles per pixel, half-plane fy > 0 or (fy == 0, fx > 0),
    strongest first. Prominence: the peak's power over the median power in its ring."""
    y = luma(rgb)
    h, w = y.shape
    y = (y - y.mean()) * np.outer(np.hanning(h), np.hanning(w))
    H, W = h * pad, w * pad
    p = np.abs(np.fft.fft2(y, (H, W))) ** 2
    fy = np.fft.fftfreq(H)[:, None]
    fx = np.fft.fftfreq(W)[None, :]
    r = np.hypot(fy, fx)
    # The median power of rings of width 1/min(h, w): the level a peak must stand above.
    ring = np.minimum((r * min(h, w)).astype(np.int64), int(0.75 * min(h, w)))
    order = np.argsort(ring, axis=None, kind="stable")
    bounds = np.cumsum(np.bincount(ring.ravel()))[:-1]
    level = np.array([np.median(g) if g.size else np.inf for g in np.split(p.ravel()[order], bounds)])
    prom = p / np.maximum(level[ring], 1e-30)
    # 3x3 local maxima of the (wrap-around) spectrum
    is_max = np.ones_like(p, dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                is_max &= p >= np.roll(p, (dy, dx), (0, 1))
    lo = 1.0 / (min(h, w) / 3.0)
    hi = 1.0 / MIN_PERIOD_PX
    half = (fy > 0) | ((fy == 0) & (fx > 0))
    cand = is_max & half & (r >= lo) & (r <= hi)
    iy, ix = np.nonzero(cand)

    def vertex(m1, c0, p1):  # sub-bin refinement: a parabola through log-power along an axis
        d = m1 - 2 * c0 + p1
        return 0.5 * (m1 - p1) / d if d < 0 else 0.0

    lp = np.log(p + 1e-30)
    out = []
    for a, b in zip(iy, ix):
        oy = vertex(lp[a - 1, b], lp[a, b], lp[(a + 1) % H, b])
        ox = vertex(lp[a, b - 1], lp[a, b], lp[a, (b + 1) % W])
        out.append((float(fy[a, 0] + oy / H), float(fx[0, b] + ox / W), float(prom[a, b])))
    out.sort(key=lambda t: -t[2])
    return out


def _parallel(a: np.ndarray, b: np.ndarray, degrees: float = 20.0) -> bool:
    cross = float(a[0] * b[1] - a[1] * b[0])  # np.cross of 2-vectors is gone from numpy 2
    return abs(cross) < math.sin(math.radians(degrees)) * np.linalg.norm(a) * np.linalg.norm(b)


def _fundamental(k: np.ndarray, peaks: list[np.ndarray]) -> np.ndarray:
    """The lowest frequency among ``peaks`` of which ``k`` is a whole multiple (a harmonic's
    fundamental); ``k`` itself when there is none."""
    best = k
    for q in peaks:
        if np.linalg.norm(q) < np.linalg.norm(best) and _parallel(q, k, 3.0):
            ratio = np.linalg.norm(k) / np.linalg.norm(q)
            if abs(ratio - round(ratio)) < 0.1:
                best = q
    return best


def _near(k: np.ndarray, peaks: list[np.ndarray], tol: float) -> bool:
    return any(min(np.linalg.norm(k - q), np.linalg.norm(k + q)) < tol for q in peaks)


# Peaks that must confirm a weak second wave. One was too few: the bricks' bond has two
# (2q - k1 and q + k1), but wood's grain with its knots also had one, and G then set the
# knots on a regular diagonal lattice where the photo scatters them.
CONFIRMATIONS = 2


def detect_lattice(rgb: np.ndarray, min_prominence: float = MIN_PROMINENCE,
                   peaks: list | None = None) -> list[tuple[float, float]]:
    """The exemplar's dominant wave vectors (fy, fx) in cycles per pixel: [] for an irregular
    texture, else the strongest prominent one (a brick wall's courses, a plank's grain) taken
    down to its fundamental, and a second, not parallel, where the photo has one: the
    lowest frequency that is either prominent itself (a tiled floor's other axis) or a
    weaker peak (``SUPPORT_PROMINENCE``) whose place in a lattice with the first is
    confirmed by two further peaks among 2q, 2q +- k1 and q +- k1. That is how a running bond
    shows: bricks of uneven length smear the bond's own peak, but together with the
    courses it predicts the others (and the lowest frequency is the bond itself, where
    the half-brick stack at 2q would lose it)."""
    h, w = np.asarray(rgb).shape[:2]
    found = [(np.array(t[:2]), t[2]) for t in (spectrum_peaks(rgb) if peaks is None else peaks)
             if t[2] >= SUPPORT_PROMINENCE]
    strong = [k for k, prom in found if prom >= min_prominence]
    if not strong:
        return []
    weak = [k for k, _ in found]
    k1 = _fundamental(strong[0], strong)
    waves = [k1]
    for q, prom in sorted(((k, prom) for k, prom in found if not _parallel(k, k1)), key=lambda t: np.linalg.norm(t[0])):
        if prom >= min_prominence:
            waves.append(q)
            break
        tol = max(0.15 * np.linalg.norm(q), 1.5 / min(h, w))
        rest = [p for p in weak if p is not q]
        if sum(_near(c, rest, tol) for c in (2 * q, 2 * q + k1, 2 * q - k1, q + k1, q - k1)) >= CONFIRMATIONS:
            waves.append(q)
            break
    return [(float(k[0]), float(k[1])) for k in waves[:MAX_WAVES]]


def stripe_wave(rgb: np.ndarray, waves, peaks: list | None = None) -> tuple[float, float] | None:
    """The boards' wave vector (fy, fx) where a one-wave photo is stripes rather than a
    lattice, else None. Stripes: ``STRIPE_PEAKS`` or more further peaks parallel to its wave
    (within 5 deg), at ``STRIPE_SHARE`` of its strongest peak's prominence or more, that
    are not whole multiples of its fundamental (wood's grain has three, 19, 12 and 25 px
    beside 14; the bench's planks two; corrugated sheet or siding would have harmonics
    only; bricks and tiles have two waves). The boards: the lowest-frequency parallel peak
    at ``STRIPE_BOARD_PROMINENCE`` or more (wood 58.9 px, planks 57.5 px). ``peaks``: the
    photo's ``spectrum_peaks`` where the caller has them (``detect_lattice`` takes them too)."""
    if len(waves) != 1:
        return None
    k1 = np.asarray(waves[0], dtype=np.float64)
    f1 = np.linalg.norm(k1)
    par = [(np.array(t[:2]), t[2]) for t in (spectrum_peaks(rgb) if peaks is None else peaks)
           if _parallel(np.array(t[:2]), k1, 5.0)]
    if not par:
        return None
    top = max(prom for _, prom in par)
    unrelated = 0
    for q, prom in par:
        ratio = np.linalg.norm(q) / f1
        if prom >= STRIPE_SHARE * top and abs(ratio - round(ratio)) >= 0.1:
            unrelated += 1
    if unrelated < STRIPE_PEAKS:
        return None
    boards = min((q for q, prom in par if prom >= STRIPE_BOARD_PROMINENCE), key=np.linalg.norm, default=k1)
    if float(np.dot(boards, k1)) < 0:
        boards = -boards
    return float(boards[0]), float(boards[1])


def read_lattice(rgb: np.ndarray, stripes: bool = True) -> tuple[list[tuple[float, float]], tuple[float, float] | None]:
    """(the photo's waves, its boards' wave vector or None) from one spectrum: what training
    lays out for it. ``stripes`` False: waves only, as ``lattice="waves"`` asks."""
    peaks = spectrum_peaks(rgb)
    waves = detect_lattice(rgb, peaks=peaks)
    return waves, (stripe_wave(rgb, waves, peaks) if stripes else None)


def stripe_base(wave, period: tuple[int, int]) -> tuple[int, int]:
    """The lowest whole-cycle wave vector (my, mx) over ``period`` in the stripes' direction
    (within 5 deg of ``wave``, or the nearest such): one turn of it crosses the canvas, so
    a phase that climbs by whole turns along it wraps around."""
    h, w = period
    fy, fx = wave
    cands = []
    for my in range(0, 9):
        for mx in range(-8, 9):
            if (my, mx) == (0, 0) or (my == 0 and mx < 0) or math.gcd(my, abs(mx)) != 1:
                continue
            ky, kx = my / h, mx / w
            cos = abs(ky * fy + kx * fx) / (math.hypot(ky, kx) * math.hypot(fy, fx))
            cands.append((math.acos(min(1.0, cos)), math.hypot(ky, kx), (my, mx)))
    close = [c for c in cands if c[0] < math.radians(5.0)]
    if close:
        return min(close, key=lambda c: c[1])[2]
    return min(cands)[2]


def stripe_inputs(base: tuple[int, int], edges: np.ndarray, shift: float, rows: np.ndarray, cols: np.ndarray,
                  period: tuple[int, int], harmonics: int = 1, device=None) -> dict[str, torch.Tensor]:
    """G's inputs for stripes, in ``wave_inputs``' layout: sin and cos of 2 pi m t,
    m = 1..``harmonics``, where the phase t climbs by one turn per board, linearly within
    it. u = base . x (turns of ``base``, shifted by ``shift``) runs once across the canvas;
    board i spans ``edges[i]..edges[i + 1]`` of it. Evaluated from the window's global
    indices through u's whole-number numerator, so a window equals the same part of the
    whole canvas bit for bit; t gains whole turns over the period, so it wraps."""
    ph, pw = period
    my, mx = base
    n = len(edges) - 1
    out = {}
    for s in WAVE_STRIDES:
        r = np.asarray(rows[::s], dtype=np.int64)
        c = np.asarray(cols[::s], dtype=np.int64)
        # u at the cell's centre (r + (s-1)/2), in units of 1 / (2 ph pw): a whole number
        num = (my * (2 * r + s - 1))[:, None] * pw + (mx * (2 * c + s - 1))[None, :] * ph
        den = 2 * ph * pw
        uniq, inv = np.unique(num % den, return_inverse=True)
        u = (uniq.astype(np.float64) / den - shift) % 1.0
        i = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, n - 1)
        t = i + (u - edges[i]) / (edges[i + 1] - edges[i])
        a = np.empty((1, 2 * harmonics, len(r), len(c)), dtype=np.float32)
        for m in range(1, harmonics + 1):
            a[0, 2 * (m - 1)] = np.sin(2 * math.pi * m * t)[inv].reshape(num.shape)
            a[0, 2 * (m - 1) + 1] = np.cos(2 * math.pi * m * t)[inv].reshape(num.shape)
        x = torch.from_numpy(a)
        out[f"wave{s}"] = x.to(device) if device is not None else x
    return out


def canvas_stripes(wave, period: tuple[int, int], seed: int) -> tuple[tuple[int, int], np.ndarray, float]:
    """(base, edges, shift) of a canvas: the stripes' base on this period, as many boards as
    the boards' wave puts across it (at least one), their widths drawn uniformly within
    1 +- ``STRIPE_SPREAD`` of the mean and their offset from ``seed``."""
    base = stripe_base(wave, period)
    k = math.hypot(base[0] / period[0], base[1] / period[1])
    n = max(1, int(round(math.hypot(*wave) / k)))
    rng = np.random.default_rng([int(seed) % (2 ** 63), 0x57121])
    widths = rng.uniform(1 - STRIPE_SPREAD, 1 + STRIPE_SPREAD, n)
    edges = np.concatenate([[0.0], np.cumsum(widths) / widths.sum()])
    edges[-1] = 1.0
    return base, edges, float(rng.random())


BOND_OFFSETS = tuple(sorted({Fraction(p, q) for q in (1, 2, 3, 4) for p in range(q + 1)}))  # 0, 1/4, 1/3, 1/2, ...


def bond_offset(waves) -> float:
    """a = k2.k1 / k1.k1 of two waves: the bond's offset per course, in turns of the second."""
    (a1, b1), (a2, b2) = waves[:2]
    return (a1 * a2 + b1 * b2) / max(a1 * a1 + b1 * b1, 1e-30)


def quantise(waves, period: tuple[int, int], bond: bool = False) -> list[tuple[int, int]]:
    """Wave vectors (cycles per px) -> whole cycles (my, mx) over a period (h, w) px.

    Each rounded alone, by default. With ``bond`` (two waves, the second read as the bond
    coordinate), the bond's offset is kept a simple fraction (a half brick stays a half,
    where rounding alone gave 4/9 on a 512 px canvas and the joints drifted course by
    course): the offset p/q nearest the photo's (within 0.05), the first wave rounded to
    multiples of q cycles, the second = p/q of the first plus its rounded rest."""
    h, w = period
    alone = [(int(round(fy * h)), int(round(fx * w))) for fy, fx in waves]
    if not bond or len(waves) != 2:
        return alone
    a = bond_offset(waves)
    frac = min(BOND_OFFSETS, key=lambda f: abs(f - (a - math.floor(a))))
    if abs(frac - (a - math.floor(a))) > 0.05:
        return alone
    off = frac + math.floor(a)
    (f1y, f1x), (f2y, f2x) = waves
    step = off.denominator
    m1 = (int(round(f1y * h / step)) * step, int(round(f1x * w / step)) * step)
    if m1 == (0, 0):
        return alone
    rest = (f2y - a * f1y, f2x - a * f1x)  # the second wave's part square to the first
    m2 = (int(off * m1[0]) + int(round(rest[0] * h)), int(off * m1[1]) + int(round(rest[1] * w)))
    return [m1, m2]


def stretch(waves, period: tuple[int, int], bond: bool = False) -> float:
    """Largest relative error |k_quantised - k| / |k| of ``quantise`` for this period."""
    h, w = period
    worst = 0.0
    for (fy, fx), (my, mx) in zip(waves, quantise(waves, period, bond)):
        worst = max(worst, math.hypot(my / h - fy, mx / w - fx) / max(math.hypot(fy, fx), 1e-12))
    return worst


def wave_inputs(cycles, phase, rows: np.ndarray, cols: np.ndarray, period: tuple[int, int],
                device=None, harmonics: int = 1, bond: bool = False) -> dict[str, torch.Tensor]:
    """G's periodic inputs for a window: {"wave8"|"wave4"|"wave2": (1, C, h/s, w/s)}:
    sin and cos of each wave at 1..``harmonics`` times its frequency (thin mortar lines are
    many harmonics; G need not build them from the first alone), C = 2 * harmonics * waves.

    ``bond`` (two waves): the second wave's phase t2 is replaced by the bond coordinate
    u = t2 - a * frac(t1), t in turns, a = k2.k1 / k1.k1. Within a cell of the first wave (a
    course) u changes only along it, so its iso-lines are the head joints, square to the
    courses; at each course boundary u jumps by a, the bond's offset (a half brick for a
    running bond). The second wave's own iso-lines are diagonal, and G fed with them drew
    the joints as diagonal streaks. u still wraps: over the period, t1 and t2 change by
    whole cycles.

    ``cycles`` [(my, mx)] per ``period`` (h, w); ``phase`` [phi] in turns; ``rows``/``cols``
    the window's global pixel indices (multiples of 8 long, starting on a multiple of 8).
    A cell of stride s is evaluated at its centre. Computed in float64 from indices modulo
    the period, so every window of a canvas agrees exactly with the whole."""
    ph, pw = period
    out = {}
    for s in WAVE_STRIDES:
        r = (torch.as_tensor(np.asarray(rows[::s]), dtype=torch.float64) + (s - 1) / 2) / ph
        c = (torch.as_tensor(np.asarray(cols[::s]), dtype=torch.float64) + (s - 1) / 2) / pw
        turns = [my * r[:, None] + mx * c[None, :] + phi for (my, mx), phi in zip(cycles, phase)]
        if bond and len(cycles) == 2:
            alpha = bond_offset([(my / ph, mx / pw) for my, mx in cycles])
            turns[1] = turns[1] - alpha * (turns[0] - torch.floor(turns[0]))
        a = torch.empty((1, 2 * harmonics * len(turns), len(r), len(c)), dtype=torch.float32)
        for i, t in enumerate(turns):
            # harmonics by the angle-addition recurrence: two trigonometric calls per wave
            angle = t.frac_().mul_(2 * math.pi)
            sin1, cos1 = torch.sin(angle), torch.cos(angle)
            sin_m, cos_m = sin1, cos1
            for m in range(harmonics):
                if m:
                    sin_m, cos_m = sin_m * cos1 + cos_m * sin1, cos_m * cos1 - sin_m * sin1
                a[0, 2 * (i * harmonics + m)] = sin_m
                a[0, 2 * (i * harmonics + m) + 1] = cos_m
        out[f"wave{s}"] = a.to(device) if device is not None else a
    return out


def canvas_waves(wave_vectors, period: tuple[int, int], seed: int,
                 bond: bool = False) -> tuple[list[tuple[int, int]], list[float]]:
    """(cycles, phase) of a canvas: the wave vectors quantised to ``period``, and the phases
    of one random translation of the lattice drawn from ``seed`` (different seeds, different
    walls; one translation, so the waves stay in step as the exemplar's are)."""
    cycles = quantise(wave_vectors, period, bond)
    rng = np.random.default_rng([int(seed) % (2 ** 63), 0x1A77])
    ty, tx = rng.random(2)
    return cycles, [float((my * ty + mx * tx) % 1.0) for my, mx in cycles]


def canvas_inputs(wave_vectors, period: tuple[int, int], seed: int, harmonics: int = 1, bond: bool = False,
                  stripes: bool = False):
    """rows, cols -> ``wave_inputs`` (or ``stripe_inputs``) of that window of a canvas with
    this period and seed: the one recipe the synthesizer (tile by tile) and training (whole
    canvases) share."""
    if stripes:
        base, edges, shift = canvas_stripes(wave_vectors[0], period, seed)
        return lambda rows, cols, device=None: stripe_inputs(base, edges, shift, rows, cols, period, harmonics, device)
    cycles, phase = canvas_waves(wave_vectors, period, seed, bond)
    return lambda rows, cols, device=None: wave_inputs(cycles, phase, rows, cols, period, device, harmonics, bond)
