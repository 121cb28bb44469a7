"""PBR maps from a seamless base colour: height, normal, roughness and ambient occlusion.

Input: the (H,W,3) uint8 sRGB base colour as it is written and sent, so the maps describe
exactly the pixels a user gets. Output: height (H,W) uint16, normal (H,W,3) uint8,
roughness (H,W) uint8, ao (H,W) uint8; all non-colour data.

- Height: luminance split into bands by blurs of growing radius and the bands weighted,
  the way Materialize and CrazyBump-style tools build it; the finest grain and the
  coarsest blur are removed (pixel noise and lighting gradients are not relief). A
  preset's ``height_scale`` sets the relief and its sign (light mortar sits low: -1).
- Normal: from the height's central differences, so it agrees with the height map; the
  height range spans ``NORMAL_DEPTH_PX * normal_strength`` pixels of relief.
- AO: how far a point sits below the mean height within ``ao_radius`` around it.
  Roughness: darker and lower is rougher, between ``roughness_min`` and ``roughness_max``.

Seamless and tileable by construction: every filter wraps around, so each map tiles
exactly where the base colour does. The work runs in strips of rows with a halo, so
memory is bounded by the strip, not the canvas; and the blurs are integer box sums
(exact whatever a strip's first row is), so a map computed in strips equals the one
computed whole, bit for bit (tests/test_maps.py).

numpy only: the CLI, the engine and the tests share it without torch.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from typing import Iterable

import numpy as np

from .protocol import MAP_NAMES, MAP_SETTING_FIELDS, NORMAL_CONVENTIONS

# Luma of sRGB values (Rec. 709 weights, scaled to sum to 256 so it stays an integer).
LUMA = (54, 183, 19)
# Bands of the height: (tent radius in px, weight of the band between the previous blur and
# this one); a tent of radius r blurs with sigma ~ 0.8 r. Measured against artist-made
# height and normal maps (bench/maps_truth.py), the band between tents of radius 2 and 30
# alone beat graded multi-band weightings: pixel grain (below radius 2) is colour, not
# relief, and everything broader than radius 30 is lighting.
HEIGHT_BANDS = ((2, 0.0), (30, 1.0))
# Height units: 0.5 is the mean level; the 1st..99th percentile of the band sum spans
# ``height_scale`` of the 0..1 range.
HEIGHT_PERCENTILES = (1.0, 99.0)
NORMAL_DEPTH_PX = 8.0       # relief depth in px of the full height range at strength 1: the median
                            # of artist-made normal maps (bench/maps_truth.py)
AO_GAIN = 3.0               # occlusion per unit of height below the surroundings
STRIP_PIXELS = 1 << 22      # rows per strip: about this many pixels
PARALLEL_PIXELS = 1 << 18   # canvases from 512x512 up are shared out over threads


@dataclass(frozen=True)
class MapSettings:
    """How strong each map is. Defaults are the engine's; a preset's preset.json may carry
    its own (``"maps": {...}``), and a request overrides either."""
    height_scale: float = 1.0
    normal_strength: float = 1.0
    normal_convention: str = "opengl"
    roughness_min: float = 0.35
    roughness_max: float = 0.9
    ao_radius: float = 16.0
    ao_strength: float = 1.0

    def validate(self) -> "MapSettings":
        for name, spec in MAP_SETTING_FIELDS.items():  # the ranges live in the protocol's schema
            if spec.type != "number":
                continue
            v, lo, hi = getattr(self, name), spec.lo, spec.hi
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ValueError(f"map setting {name} must be a number in {lo}..{hi}, got {repr(v)[:40]}")
        if self.normal_convention not in NORMAL_CONVENTIONS:
            raise ValueError(f"map setting normal_convention must be one of {', '.join(NORMAL_CONVENTIONS)}, "
                             f"got {self.normal_convention!r}")
        if self.roughness_min > self.roughness_max:
            raise ValueError(f"map setting roughness_min ({self.roughness_min}) is above roughness_max "
                             f"({self.roughness_max})")
        return self

    def merged(self, overrides: dict | None) -> "MapSettings":
        """These settings with ``overrides`` (a dict of some fields) applied, validated."""
        if overrides is None:
            return self.validate()
        if not isinstance(overrides, dict):
            raise ValueError(f"map settings must be an object, got {type(overrides).__name__}")
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown map setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        return replace(self, **overrides).validate()

    def to_dict(self) -> dict:
        return asdict(self)


def parse_map_names(text: str | Iterable[str]) -> list[str]:
    """'all' or 'normal,height' (or a list) -> map names in the canonical order; ValueError
    naming the known ones for anything else. 'basecolor' is accepted and dropped: it is
    always made."""
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text)]
    items = [t for t in items if t]
    known = f"choose 'all' or any of basecolor, {', '.join(MAP_NAMES)} (comma-separated)"
    if not items:
        raise ValueError(f"no map named; {known}")
    bad = [t for t in items if t not in MAP_NAMES and t not in ("basecolor", "all")]
    if bad:
        raise ValueError(f"unknown map {bad[0]!r}; {known}")
    return list(MAP_NAMES) if "all" in items else [m for m in MAP_NAMES if m in items]


# ---- wrap-around integer box filters -------------------------------------------------------
# Blurs are tents (a box blur applied twice), computed from running sums of running sums:
# a tent of any radius costs the same few passes, and one pair of running sums down the
# columns serves every radius. The sums run in uint32 and may wrap around 2**32: the
# combination of running sums that gives a tent is still exact modulo 2**32, so it is
# exact wherever the tent's true sum is below 2**32 (8-bit values, radius up to 31, the
# protocol's MAX_AO_RADIUS:
# 255 * 63**4 < 2**32). No rounding anywhere, so strips cannot change a result.
def _running2(a: np.ndarray, axis: int) -> np.ndarray:
    if axis == 1:
        return np.cumsum(np.cumsum(a, axis=1, dtype=np.uint32), axis=1, dtype=np.uint32)
    # Down the rows, one row at a time: numpy's cumsum along axis 0 of a C-ordered array
    # strides through memory and ran 15x slower than these whole-row additions.
    out = a.astype(np.uint32, copy=True)
    for _ in range(2):
        for i in range(1, out.shape[0]):
            np.add(out[i - 1], out[i], out=out[i])
    return out


def _tent_rows(q: np.ndarray, top: int, n: int, r: int) -> np.ndarray:
    """Tent sums (radius r boxes, twice) down the columns for rows ``top .. top+n`` of the
    window whose double running sum is ``q``; needs top >= 2r+2 and 2r rows below."""
    return q[top + 2 * r:top + 2 * r + n] - 2 * q[top - 1:top - 1 + n] + q[top - 2 * r - 2:top - 2 * r - 2 + n]


def _tent_cols(a: np.ndarray, r: int) -> np.ndarray:
    """Tent sums along each row, wrapping around: (n,W) uint32 -> (n,W) uint32."""
    w = a.shape[1]
    # the wrapped columns by concatenation: fancy indexing along axis 1 returns a column-major
    # array, on which the running sums along the rows ran 15x slower
    pad = [a[:, np.arange(-2 * r - 2, 0) % w], a, a[:, np.arange(w, w + 2 * r) % w]]
    q = _running2(np.concatenate(pad, axis=1), axis=1)
    t = 2 * r + 2
    return q[:, t + 2 * r:t + 2 * r + w] - 2 * q[:, t - 1:t - 1 + w] + q[:, :w]


def _tents(win: np.ndarray, top: int, n: int, radii) -> dict[int, np.ndarray]:
    """Normalised tent blurs (float32) of rows ``top .. top+n`` of a uint32 window, per radius."""
    q = _running2(win, axis=0)
    return {r: _tent_cols(_tent_rows(q, top, n, r), r).astype(np.float32) * np.float32(1.0 / (2 * r + 1) ** 4)
            for r in radii}


def _rows(n: int, y0: int, y1: int, reach: int) -> np.ndarray:
    """Row indices of a strip with ``reach`` wrapped-around rows below and 2 more above."""
    return np.arange(y0 - reach - 2, y1 + reach) % n


def _strips(h: int, w: int, strip_rows: int | None) -> list[tuple[int, int]]:
    """Row ranges: ``strip_rows`` each, or about STRIP_PIXELS, and at least one per thread
    on canvases big enough to share out."""
    rows = strip_rows or max(8, min(STRIP_PIXELS // max(w, 1), -(-h // _threads(h * w))))
    return [(y, min(h, y + rows)) for y in range(0, h, rows)]


def _threads(pixels: int) -> int:
    return 1 if pixels < PARALLEL_PIXELS else max(1, min(4, os.cpu_count() or 1))


def _each_strip(work, strips, pixels: int) -> None:
    """``work(y0, y1)`` for every strip; strips write disjoint rows, and numpy lets go of
    the GIL in its loops, so threads share the cores."""
    threads = _threads(pixels)
    if threads == 1 or len(strips) == 1:
        for y0, y1 in strips:
            work(y0, y1)
        return
    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(work, y0, y1) for y0, y1 in strips]:
            f.result()


def _luma(rgb: np.ndarray) -> np.ndarray:
    """(n,W,3) uint8 -> (n,W) uint16 luma, 0..255 (the weighted sum, at most 65408, fits 16 bits)."""
    r, g, b = (rgb[..., i].astype(np.uint16) for i in range(3))
    y = r * np.uint16(LUMA[0])
    y += g * np.uint16(LUMA[1])
    y += b * np.uint16(LUMA[2])
    y += np.uint16(128)
    y >>= 8
    return y


def _band_sum(luma: np.ndarray, top: int, n: int, bands) -> np.ndarray:
    """Weighted luminance bands of rows ``top .. top+n`` of the window ``luma``: (n,W) float32.
    sum_k w_k (T_{k-1} - T_k) with T_0 the luma itself, written as one weighted sum of tents."""
    radii, weights = [r for r, _ in bands], [w for _, w in bands]
    coeffs = {0: weights[0]}
    for k, r in enumerate(radii):
        coeffs[r] = (weights[k + 1] if k + 1 < len(weights) else 0.0) - weights[k]
    tents = _tents(luma, top, n, [r for r, c in coeffs.items() if r and c])
    out = luma[top:top + n].astype(np.float32) * np.float32(coeffs[0])
    for r, t in tents.items():
        out += np.float32(coeffs[r]) * t
    return out


def _to_byte(a: np.ndarray) -> np.ndarray:
    """rint(clip(a, 0, 1) * 255) in place, ready to store as uint8."""
    np.clip(a, 0.0, 1.0, out=a)
    a *= 255.0
    return np.rint(a, out=a)


def _sample(a: np.ndarray, step: int = 4) -> np.ndarray:
    return a[::step, ::step] if a.shape[0] >= 4 * step and a.shape[1] >= 4 * step else a


def derive_maps(basecolor: np.ndarray, names: Iterable[str] = MAP_NAMES, settings: MapSettings = MapSettings(),
                strip_rows: int | None = None, bands=HEIGHT_BANDS) -> dict[str, np.ndarray]:
    """(H,W,3) uint8 sRGB base colour -> {name: map} for ``names`` (see the module doc).
    ``strip_rows`` bounds the working memory; any value gives the same bytes. ``bands``
    ((tent radius <= 31, weight), ...) shapes the height (bench/maps_truth.py compares some)."""
    names = parse_map_names(list(names))
    settings = settings.validate()
    if basecolor.dtype != np.uint8 or basecolor.ndim != 3 or basecolor.shape[2] != 3:
        raise ValueError(f"maps are derived from an (H,W,3) uint8 base colour, got {basecolor.dtype} {basecolor.shape}")
    h, w = basecolor.shape[:2]
    strips = _strips(h, w, strip_rows)
    out: dict[str, np.ndarray] = {}
    if not names:
        return out

    # 1. the band sum (raw height), strip by strip
    if not bands or any(not 1 <= r <= 31 for r, _ in bands):
        raise ValueError(f"height bands need tent radii in 1..31, got {bands!r}")
    reach = 2 * max(r for r, _ in bands)
    raw = np.empty((h, w), np.float32)
    luma = np.empty((h, w), np.uint8)  # kept for the roughness

    def bands_of(y0: int, y1: int) -> None:
        window = _luma(basecolor[_rows(h, y0, y1, reach)])
        luma[y0:y1] = window[reach + 2:reach + 2 + y1 - y0]
        raw[y0:y1] = _band_sum(window, reach + 2, y1 - y0, bands)
    _each_strip(bands_of, strips, h * w)
    lo, hi = np.percentile(_sample(raw), HEIGHT_PERCENTILES)
    mid = float(np.median(_sample(raw)))
    spread = max(float(hi - lo), 1e-6)

    # 2. height in 16 bits: the canonical relief that normal, AO and roughness read
    height = np.empty((h, w), np.uint16)
    gain = settings.height_scale / spread

    def height_of(y0: int, y1: int) -> None:
        level = 0.5 + (raw[y0:y1] - mid) * gain
        height[y0:y1] = np.rint(np.clip(level, 0.0, 1.0) * 65535.0).astype(np.uint16)
    _each_strip(height_of, strips, h * w)
    raw = None  # 4 bytes a pixel: freed before the other maps
    if "height" in names:
        out["height"] = height

    # 3. normal, roughness, AO, strip by strip from the height (and luma for roughness)
    want = [m for m in ("normal", "roughness", "ao") if m in names]
    if not want:
        return out
    if "normal" in want:
        out["normal"] = np.empty((h, w, 3), np.uint8)
    if "roughness" in want:
        out["roughness"] = np.empty((h, w), np.uint8)
        luma_lo, luma_hi = np.percentile(_sample(luma), HEIGHT_PERCENTILES)
        luma_span = max(float(luma_hi - luma_lo), 1.0)
    ao_box = max(1, int(round(settings.ao_radius / 2)))  # a tent of box radius r reaches 2r px
    if "ao" in want:
        out["ao"] = np.empty((h, w), np.uint8)
    reach = max(1, 2 * ao_box if "ao" in want else 1)
    depth = np.float32(NORMAL_DEPTH_PX * settings.normal_strength / 65535.0)
    flip_green = settings.normal_convention == "directx"

    def maps_of(y0: int, y1: int) -> None:
        n, top = y1 - y0, reach + 2
        win = height[_rows(h, y0, y1, reach)]
        core = win[top:top + n].astype(np.float32)
        if "normal" in want:
            # Image rows run down; OpenGL's +Y (green) is up the texture, so a slope rising
            # down the rows tilts the normal up: +drow. DirectX's +Y is down: green flipped.
            # In place, channel by channel: the same operations on each value as
            # rint(([-dx, drow, 1] / |.| * 0.5 + 0.5) * 255), without the temporaries.
            dx = np.empty_like(core)
            np.subtract(core[:, 2:], core[:, :-2], out=dx[:, 1:-1])
            dx[:, 0], dx[:, -1] = core[:, 1 % w] - core[:, -1], core[:, 0] - core[:, -2 % w]
            dx *= 0.5 * depth
            drow = win[top + 1:top + 1 + n].astype(np.float32)
            drow -= win[top - 1:top - 1 + n]
            drow *= 0.5 * depth
            inv = dx * dx
            inv += drow * drow
            inv += 1.0
            np.sqrt(inv, out=inv)
            np.divide(1.0, inv, out=inv)
            encoded = out["normal"][y0:y1]
            for k, c in enumerate((np.negative(dx, out=dx), drow, inv)):
                if k < 2:
                    c *= inv
                c *= 0.5
                c += 0.5
                c *= 255.0
                encoded[..., k] = np.rint(c, out=c)
            if flip_green:
                np.subtract(255, encoded[..., 1], out=encoded[..., 1])
        if "ao" in want:
            # 8-bit heights keep the tent sums exact in 32 bits (see _running2)
            coarse = (win >> 8).astype(np.uint32)
            around = _tents(coarse, top, n, [ao_box])[ao_box]
            # in place: rint(clip(1 - max(around - h, 0) * gain, 0, 1) * 255)
            around -= coarse[top:top + n].astype(np.float32)
            np.maximum(around, 0.0, out=around)
            around *= np.float32(AO_GAIN * settings.ao_strength / 255.0)
            np.subtract(1.0, around, out=around)
            out["ao"][y0:y1] = _to_byte(around)
        if "roughness" in want:
            # in place: rint((min + (max - min) * clip(0.5 (1 - bright) + 0.5 (1 - h), 0, 1)) * 255)
            rough = luma[y0:y1].astype(np.float32)
            rough -= np.float32(luma_lo)
            rough /= np.float32(luma_span)
            np.clip(rough, 0.0, 1.0, out=rough)
            np.subtract(1.0, rough, out=rough)
            rough *= 0.5
            low = core / 65535.0
            np.subtract(1.0, low, out=low)
            low *= 0.5
            rough += low
            np.clip(rough, 0.0, 1.0, out=rough)
            rough *= settings.roughness_max - settings.roughness_min
            rough += settings.roughness_min
            rough *= 255.0
            out["roughness"][y0:y1] = np.rint(rough, out=rough)
    _each_strip(maps_of, strips, h * w)
    return {m: out[m] for m in names}


def decode_normal(normal: np.ndarray, convention: str = "opengl") -> np.ndarray:
    """(H,W,3) uint8 normal map -> (H,W,3) float unit-ish vectors in image axes (x right,
    y down the rows, z out), whatever the convention it was written in."""
    n = normal.astype(np.float64) / 255.0 * 2.0 - 1.0
    if convention == "opengl":
        n[..., 1] = -n[..., 1]
    return n
