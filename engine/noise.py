"""Periodic noise fields: pure functions of (seed, period, parameters).

A field of period (ph, pw) tiles exactly: ``noise_canvas`` of a canvas k times the period
is the period tile repeated, which is what makes a synthesized texture wrap around.

- ``brown``: 1/f^beta noise by inverse FFT (periodic by construction), flattened below
  frequency 1/scale so its look does not depend on the canvas size.
- ``perlin``: improved Perlin noise from the ``noise`` package, using its repeat arguments
  so the lattice wraps; evaluated on a coarse grid (it is smooth below its cell size) and
  upsampled periodically, which keeps large canvases fast.

Values are returned as (3,H,W) float32 sRGB in [0,1]: each channel standardised, then
``0.5 + contrast * n``, clipped.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

KINDS = ("brown", "perlin")
MAX_PERIOD = 16384


@dataclass(frozen=True)
class NoiseParams:
    kind: str = "brown"
    beta: float = 2.5          # brown: spectral exponent of the power spectrum 1/f^beta
    scale: float = 32.0        # feature size in px: brown's low-frequency cutoff, perlin's cell
    octaves: int = 4           # perlin
    contrast: float = 0.2      # std of each channel around 0.5

    def validate(self) -> "NoiseParams":
        if self.kind not in KINDS:
            raise ValueError(f"unknown noise kind {self.kind!r}; known: {', '.join(KINDS)}")
        if not (0.0 <= self.beta <= 6.0):
            raise ValueError(f"noise beta must be in [0, 6], got {self.beta}")
        if not (2.0 <= self.scale <= 4096.0):
            raise ValueError(f"noise scale must be in [2, 4096] pixels, got {self.scale}")
        if not (1 <= int(self.octaves) <= 8):
            raise ValueError(f"noise octaves must be in [1, 8], got {self.octaves}")
        if not (0.0 < self.contrast <= 1.0):
            raise ValueError(f"noise contrast must be in (0, 1], got {self.contrast}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NoiseParams":
        """Parameters from JSON (a preset, a request), types checked before ranges: a string
        or a list where a number belongs is named as such, not met later as a TypeError."""
        if not isinstance(d, dict):
            raise ValueError(f"noise parameters must be an object, got {type(d).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown noise parameters: {', '.join(sorted(map(str, unknown)))}")
        for name, value in d.items():
            if name == "kind":
                ok, want = isinstance(value, str), "a string"
            elif name == "octaves":
                ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) or (
                    isinstance(value, float) and math.isfinite(value))  # an int of any size compares fine
                want = "a finite number"
            if not ok:
                text = repr(value)
                raise ValueError(f"noise {name} must be {want}, got {text if len(text) <= 60 else text[:60] + '...'}")
        return cls(**d).validate()


def _check_period(ph: int, pw: int) -> None:
    if not (1 <= ph <= MAX_PERIOD and 1 <= pw <= MAX_PERIOD):
        raise ValueError(f"noise period must be 1..{MAX_PERIOD} per side, got {ph}x{pw}")


def _standardise(field: np.ndarray, contrast: float) -> np.ndarray:
    field = field - field.mean()
    std = field.std()
    field = field / (std if std > 0 else 1.0)
    return np.clip(0.5 + contrast * field, 0.0, 1.0).astype(np.float32)


def brown_noise(seed: int, period: tuple[int, int], beta: float = 2.5, scale: float = 32.0,
                contrast: float = 0.2, dtype=np.float32) -> np.ndarray:
    """(3,ph,pw) periodic 1/f^beta noise; one independent field per channel.

    The spectrum flattens below frequency 1/scale (amplitude ~ (f^2 + f0^2)^(-beta/4)), and
    the field is divided by its *expected* standard deviation, not the sample's. Together
    they make the local statistics independent of the canvas size, so a 4096 px texture
    looks like the 128 px crops the generator was trained on, only larger.
    """
    ph, pw = period
    _check_period(ph, pw)
    # torch throughout (float32/complex64, both cores): at 8192 px numpy's float64 grid and
    # single-threaded sampler took 6.5 s, 15% of the synthesis. The white noise comes from a
    # seeded torch.Generator, so a seed gives the same field every time.
    gen = torch.Generator().manual_seed(int(seed))
    fy = torch.fft.fftfreq(ph)[:, None]
    fx = torch.fft.rfftfreq(pw)[None, :]
    f0 = 1.0 / scale
    amp = (fy * fy + fx * fx).add_(f0 * f0).pow_(-beta / 4.0)  # in place: 134 MB at 8192 px
    amp[0, 0] = 0.0  # zero mean
    # Expected variance of irfft2(rfft2(white) * A) per pixel: sum over the full spectrum of
    # A^2 / N. The rfft half-plane counts twice except its first (and Nyquist) column.
    power = torch.linalg.vector_norm(amp, dim=0).double().square()
    weights = torch.full_like(power, 2.0)
    weights[0] = 1.0
    if pw % 2 == 0:
        weights[-1] = 1.0
    expected_std = float(torch.sqrt((power * weights).sum() / (ph * pw)))
    out = np.empty((3, ph, pw), dtype)
    for c in range(3):
        spectrum = white_spectrum(gen, ph, pw)
        spectrum.mul_(amp)
        field = torch.fft.irfft2(spectrum, s=(ph, pw))
        del spectrum
        field.mul_(contrast / expected_std).add_(0.5).clamp_(0.0, 1.0)
        torch.from_numpy(out[c]).copy_(field)  # torch converts to float16 ~10x faster than numpy
    return out


def white_spectrum(gen: torch.Generator, ph: int, pw: int) -> torch.Tensor:
    """A draw of rfft2(white noise) for a (ph, pw) field of unit variance, made in the
    frequency domain (one FFT fewer per channel: 1.3 s of an 8192 px canvas). Its columns
    1..pw/2-1 are independent complex Gaussians with E|X|^2 = ph*pw. Its first column (and
    the Nyquist one, pw even) hold a real signal's row sums, so they are the 1-D FFT of a
    real Gaussian column of variance pw, as in rfft2 of real noise."""
    n = pw // 2 + 1
    spectrum = torch.randn((ph, n), generator=gen, dtype=torch.complex64).mul_(math.sqrt(ph * pw))
    real = [0] + ([n - 1] if pw % 2 == 0 and n > 1 else [])
    column = torch.randn((ph, len(real)), generator=gen).mul_(math.sqrt(pw))
    spectrum[:, real] = torch.fft.fft(column, dim=0)
    return spectrum


def perlin_noise(seed: int, period: tuple[int, int], scale: float = 32.0, octaves: int = 4,
                 contrast: float = 0.2, dtype=np.float32) -> np.ndarray:
    """(3,ph,pw) periodic Perlin noise (``noise.pnoise2`` with repeatx/repeaty)."""
    import noise as noise_lib

    ph, pw = period
    _check_period(ph, pw)
    # Whole lattice cells per period, so the lattice wraps where the canvas does.
    cells_y = max(1, round(ph / scale))
    cells_x = max(1, round(pw / scale))
    # pnoise2 is smooth below a cell; sample 8 points per cell of the finest octave, at most
    # one per pixel, and upsample periodically.
    finest = scale / (2 ** (octaves - 1))
    step = max(1, int(finest // 8))
    gh, gw = -(-ph // step), -(-pw // step)
    # Seeds map to the 'base' offset of the permutation table plus a per-channel shift.
    rng = np.random.Generator(np.random.PCG64(seed))
    bases = rng.integers(0, 256, size=3)
    ys = np.arange(gh) * (cells_y / gh)
    xs = np.arange(gw) * (cells_x / gw)
    out = np.empty((3, ph, pw), dtype)
    for c in range(3):
        grid = np.empty((gh, gw), np.float32)
        base = int(bases[c])
        for i, y in enumerate(ys):
            grid[i] = [noise_lib.pnoise2(x, y, octaves=octaves, repeatx=cells_x, repeaty=cells_y, base=base)
                       for x in xs]
        if (gh, gw) != (ph, pw):
            grid = periodic_resize(torch.from_numpy(grid)[None, None], (ph, pw))[0, 0].numpy()
        out[c] = _standardise(grid, contrast)
    return out


def periodic_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of a periodic (N,C,H,W) image that stays periodic (wrap-around sampling)."""
    n, c, h, w = x.shape
    oh, ow = size
    if (oh, ow) == (h, w):
        return x
    pad = 3
    xp = F.pad(x, (pad, pad, pad, pad), mode="circular")
    # Pixel-centre mapping, as align_corners=False, expressed in the padded image's [-1,1] frame.
    sy = (torch.arange(oh, dtype=torch.float32) + 0.5) * (h / oh) - 0.5 + pad
    sx = (torch.arange(ow, dtype=torch.float32) + 0.5) * (w / ow) - 0.5 + pad
    gy = (sy + 0.5) / (h + 2 * pad) * 2 - 1
    gx = (sx + 0.5) / (w + 2 * pad) * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None].expand(n, -1, -1, -1)
    return F.grid_sample(xp, grid.to(x.dtype), mode="bicubic", padding_mode="border", align_corners=False)


def noise_period(params: NoiseParams, seed: int, period: tuple[int, int], dtype=np.float32) -> np.ndarray:
    """One period of the field (``dtype`` float32, or float16 to halve a large canvas)."""
    params.validate()
    if params.kind == "brown":
        return brown_noise(seed, period, params.beta, params.scale, params.contrast, dtype)
    return perlin_noise(seed, period, params.scale, params.octaves, params.contrast, dtype)


def noise_canvas(params: NoiseParams, seed: int, size: tuple[int, int],
                 period: tuple[int, int] | None = None, dtype=np.float32) -> np.ndarray:
    """(3,H,W) canvas: the period tile repeated (period defaults to the canvas, i.e. tileable)."""
    h, w = size
    ph, pw = period or size
    tile = noise_period(params, seed, (ph, pw), dtype)
    if (ph, pw) == (h, w):
        return tile
    reps = (1, -(-h // ph), -(-w // pw))
    return np.tile(tile, reps)[:, :h, :w]
