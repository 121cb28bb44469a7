"""Synthesis: periodic noise -> VGG19 relu4_1 -> G -> a seamless texture of any size.

Conventions: tensors are (N,3,H,W) float sRGB in [0,1]; images leave as (H,W,3) uint8.

- Seamless: the noise period equals the canvas (by default) and every conv and pooling
  wraps around, so the texture's right edge continues into its left edge exactly.
- Any size: the network works on sides that are multiples of 8 (relu4_1 is 1/8 scale);
  other sizes are synthesized at the next multiple of 8 and resampled with wrap-around
  bicubic sampling, which keeps the result periodic at exactly the requested size.
- Bounded memory: canvases above ``tile`` pixels a side (2048 by default) are decoded in
  even tiles whose input window carries a halo (``TILE_HALO``, or more where the generator
  reaches further: ``Generator.tile_halo``) wider than the receptive field of
  VGG19-to-relu4_1 plus G. Windows are read with wrap-around indexing, so a tiled result
  equals the untiled one (tests/test_synth.py checks it in fp32). A 96 px halo on 1024 px
  tiles was 1.41x the work; on 2048 px tiles it is 1.20x, which the full-resolution layers'
  strips (engine/circular.py) keep within 4 GB at 8192x8192.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from .circular import halo_padding, step_by_step
from .generator import Generator
from .layout import layout_inputs, repeat_fit
from .lattice import canvas_inputs
from .noise import NoiseParams, noise_canvas, periodic_resize
from .presets import PresetError, PresetInfo, load_generator, preset_from_arg
from .vgg import get_vgg19

MAX_SIDE = 16384
MAX_PIXELS = 16384 * 16384
# Receptive-field radius of VGG19 up to relu4_1 is 34 px; G adds up to ~24 px at output
# scale. 64 px (a multiple of 8, so windows stay on the relu4_1 grid) covers both; the
# tiled == untiled test would fail with a halo that is too small.
TILE_HALO = 64
DEFAULT_TILE = 2048


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA when present (or asked for), else CPU."""
    if requested:
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA was requested but no CUDA device is available")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_for(device: torch.device, precision: str):
    """bf16 autocast where it pays (CUDA, or CPUs with native bf16: AMX/AVX512-BF16)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in ("bf16", "auto"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}")
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if precision == "bf16" or _cpu_has_fast_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _cpu_has_fast_bf16() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def parse_size(text: str) -> tuple[int, int]:
    """'4096x2048' -> (height 2048, width 4096); 'WxH' like image editors print it."""
    try:
        w, h = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must look like WIDTHxHEIGHT (e.g. 1024x512), got {text!r}") from None
    check_size(h, w)
    return h, w


def check_size(h: int, w: int) -> None:
    if not (8 <= h <= MAX_SIDE and 8 <= w <= MAX_SIDE):
        raise ValueError(f"size {w}x{h} out of range: each side must be 8..{MAX_SIDE} pixels")
    if h * w > MAX_PIXELS:
        raise ValueError(f"size {w}x{h} has more than {MAX_PIXELS} pixels")


def _round8(n: int) -> int:
    return -(-n // 8) * 8


@dataclass
class Synthesizer:
    """A loaded preset ready to decode: G + the shared VGG19 encoder on one device."""
    preset: PresetInfo
    generator: Generator
    device: torch.device
    precision: str = "auto"

    @classmethod
    def load(cls, preset: str | PresetInfo, device: str | None = None, precision: str = "auto") -> "Synthesizer":
        info = preset if isinstance(preset, PresetInfo) else preset_from_arg(preset)
        dev = pick_device(device)
        g = load_generator(info, dev).to(memory_format=torch.channels_last)
        synth = cls(info, g, dev, precision)
        check_finite_output(synth)
        return synth

    @torch.inference_mode()
    def decode(self, image01: torch.Tensor, window: bool = False, waves: dict | None = None,
               crop: int = 0) -> torch.Tensor:
        """(N,3,H,W) image with sides multiple of 8, periodic -> (N,3,H,W) decoded, periodic.
        ``window``: the image is a window whose halo covers the network's reach, so the
        convolutions need not wrap around (engine/circular.py); only its centre is valid.
        ``waves``: a regular preset's periodic inputs for this image (``wave_inputs``);
        by default those of a whole canvas of this size, seed 0. ``crop`` (a window, up to
        ``Generator.crop_for`` its halo): the result loses that many pixels a side."""
        if crop and not window:
            raise ValueError("only a window's halo can be cropped")
        vgg = get_vgg19("relu4_1", self.device)
        x = image01.to(self.device).contiguous(memory_format=torch.channels_last)
        if waves is None and (self.generator.config.waves or self.generator.config.layout):
            h, w = x.shape[-2:]
            waves = self.waves_for((h, w), 0)(np.arange(h), np.arange(w))
        with autocast_for(self.device, self.precision), (halo_padding() if window else contextlib.nullcontext()):
            feats = vgg(x, self.generator.taps)
            if waves:
                feats.update({k: v.to(self.device) for k, v in waves.items()})
                waves = None  # G releases each input once used
            out = self.generator(feats, release=True, crop=crop)
        return out.float().clamp_(0, 1)

    def waves_for(self, period: tuple[int, int], seed: int):
        """rows, cols -> the periodic inputs and the layout map (engine/layout.py) of that
        window of a canvas with this noise period and seed; None for a preset with neither."""
        g = self.generator.config
        parts = []
        if g.waves:
            parts.append(canvas_inputs(self.generator.wave_vectors.tolist(), period, seed, g.harmonics, g.bond,
                                       g.stripes))
        if g.layout:
            fine = self.generator.layout_fine.float().cpu() if g.fine else None
            parts.append(layout_inputs(self.generator.layout_source.float().cpu(), period, seed, g.repeat, fine))
        if len(parts) < 2:
            return parts[0] if parts else None
        return lambda rows, cols: {k: v for part in parts for k, v in part(rows, cols).items()}

    def decode_tiled(self, canvas: np.ndarray, tile: int = DEFAULT_TILE, halo: int | None = None,
                     progress=None, dtype=np.float32, waves=None) -> np.ndarray:
        """(3,H,W) periodic float canvas (sides multiple of 8) -> (H,W,3) float32 (or uint8,
        quantised tile by tile as ``to_uint8`` does, which keeps a quarter of the memory),
        tile by tile. The halo defaults to what this generator needs (``Generator.tile_halo``).
        ``waves``: rows, cols -> the periodic inputs of a window (``waves_for``)."""
        _, h, w = canvas.shape
        if halo is None:
            halo = self.generator.tile_halo
        if h % 8 or w % 8:
            raise ValueError(f"decode_tiled needs sides that are multiples of 8, got {w}x{h}")
        tile = max(8, tile // 8 * 8)
        store = to_uint8 if dtype == np.uint8 else (lambda a: a)
        if h <= tile and w <= tile:
            whole = waves(np.arange(h), np.arange(w)) if waves else None
            image = torch.from_numpy(canvas)[None].float()
            return store(self.decode(image, waves=whole)[0].permute(1, 2, 0).cpu().numpy())
        out = np.empty((h, w, 3), dtype)
        ys, xs = _split(h, tile), _split(w, tile)
        crop = self.generator.crop_for(halo)
        keep = halo - crop  # the decoded window's margin left after G's crop
        done = 0
        for y0, th in ys:
            for x0, tw in xs:
                rows = np.arange(y0 - halo, y0 + th + halo) % h
                cols = np.arange(x0 - halo, x0 + tw + halo) % w
                window = take_window(canvas, rows, cols)
                dec = self.decode(torch.from_numpy(window)[None], window=True,
                                  waves=waves(rows, cols) if waves else None, crop=crop)[0]
                out[y0:y0 + th, x0:x0 + tw] = store(dec[:, keep:keep + th, keep:keep + tw].permute(1, 2, 0).cpu().numpy())
                done += 1
                if progress:
                    progress(done, len(ys) * len(xs))
        return out

    def repeat_note(self, size: tuple[int, int], period: tuple[int, int] | None = None,
                    margin: int = 0) -> tuple[str, tuple[int, int] | None]:
        """For a preset that lays a pattern's repeat (``GeneratorConfig.repeat``): what fitting
        whole repeats into the canvas of ``size`` (or its ``period``) did to them, where it
        stretched them by more than 3%, and the nearest size (or period) (h, w) that holds
        them nearly as they are; else ('', None). ``margin``: px added per side of the
        synthesized canvas and cropped off after (an untileable request, ``TILE_HALO``)."""
        repeat = self.generator.config.repeat
        if not repeat:
            return "", None
        noise_period = period or tuple(_round8(s + 2 * margin) for s in size)
        stretch, (ny, nx), exact = repeat_fit(repeat, noise_period)
        if stretch <= 0.03:
            return "", None
        what = "period" if period else "size"
        eh, ew = exact if period else (max(8, e - 2 * margin) for e in exact)
        return (f"the pattern's {repeat[1]}x{repeat[0]} px repeat is stretched by up to {100 * stretch:.0f}% "
                f"to fit {nx}x{ny} whole repeats; a {what} of {ew}x{eh} holds them within "
                f"{100 * repeat_fit(repeat, exact)[0]:.0f}%"), (eh, ew)

    def synthesize(self, size: tuple[int, int], seed: int = 0, noise: NoiseParams | None = None,
                   period: tuple[int, int] | None = None, tile: int = DEFAULT_TILE,
                   progress=None, dtype=np.float32) -> np.ndarray:
        """A (H,W,3) float32 texture in [0,1] of exactly ``size`` = (H, W); with
        ``dtype=np.uint8``, the bytes of ``to_uint8`` of it, without a float copy of the canvas.

        With no ``period`` the noise period is the canvas itself and the texture wraps
        around seamlessly. A period (multiple of 8) makes a canvas that repeats that period.
        """
        h, w = size
        check_size(h, w)
        params = (noise or self.preset.noise).validate()
        h8, w8 = _round8(h), _round8(w)
        if period is not None:
            ph, pw = period
            if ph % 8 or pw % 8:
                raise ValueError(f"noise period must be a multiple of 8, got {pw}x{ph}")
        else:
            period = (h8, w8)
        # float16 holds noise in [0, 1] to 2^-11, far below what the encoder's bf16 keeps,
        # in half the memory (805 MB of float32 at 8192x8192)
        canvas = noise_canvas(params, seed, (h8, w8), period, dtype=np.float16)
        resized = (h8, w8) != (h, w)
        decoded = self.decode_tiled(canvas, tile=tile, progress=progress, dtype=np.float32 if resized else dtype,
                                    waves=self.waves_for(period, seed))
        del canvas
        if resized:
            chw = torch.from_numpy(decoded).permute(2, 0, 1)[None]
            decoded = periodic_resize(chw, (h, w))[0].clamp_(0, 1).permute(1, 2, 0).contiguous().numpy()
            if dtype == np.uint8:
                decoded = to_uint8(decoded)
        return decoded


def _split(side: int, tile: int) -> list[tuple[int, int]]:
    """(start, length) of the fewest tiles of at most ``tile`` px that cover ``side``, of
    equal sides in multiples of 8 but the last (a 2100 px canvas: 1056 + 1044, not 2048 + 52,
    whose window would be mostly halo)."""
    n = -(-side // tile)
    step = _round8(-(-side // n))
    return [(y, min(step, side - y)) for y in range(0, side, step)]


def _runs(idx: np.ndarray):
    """(start, end, first value) of each run of consecutive values in ``idx``."""
    cuts = np.flatnonzero(np.diff(idx) != 1) + 1
    return [(int(a), int(b), int(idx[a])) for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(idx)])]


def take_window(canvas: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``canvas[:, rows][:, :, cols]`` in float32 for indices that run on modulo the canvas:
    a few block copies (fancy indexing copied a whole band of an 8192 px canvas per tile)."""
    out = np.empty((canvas.shape[0], len(rows), len(cols)), np.float32)
    for r0, r1, src_r in _runs(rows):
        for c0, c1, src_c in _runs(cols):
            out[:, r0:r1, c0:c1] = canvas[:, src_r:src_r + r1 - r0, src_c:src_c + c1 - c0]
    return out


# Training floors every input std at 0.1 x the mean std + 0.001 (Generator.set_feature_stats).
MIN_FEATURE_STD = 1e-4


def check_finite_output(synth: Synthesizer, side: int = 32) -> None:
    """Decode one small canvas of the preset's noise; a generator whose output is not finite
    is a broken preset. Finite weights can still overflow: a flipped exponent bit turns a
    feature std of 250 into 7e-37, and the features divided by it into infinities or, where
    inference folds 1/std into a weight, into a saturated but finite picture. So a std below
    anything training writes is refused first, then both arithmetic paths are checked."""
    g = synth.generator
    for name in ("feat_std", "side3_std", "side2_std"):
        std = getattr(g, name, None)
        if std is not None and not float(std.min()) >= MIN_FEATURE_STD:
            raise PresetError(f"preset {synth.preset.name!r}: its generator's input statistics are impossible "
                              f"({name} holds {float(std.min()):.3g}; training writes at least 0.001): "
                              "generator.safetensors is damaged; reinstall or retrain it")
    canvas = torch.from_numpy(noise_canvas(synth.preset.noise, 0, (side, side)))[None]
    with step_by_step():
        stepwise = synth.decode(canvas)
    if not (torch.isfinite(stepwise).all() and torch.isfinite(synth.decode(canvas)).all()):
        raise PresetError(f"preset {synth.preset.name!r}: its generator produces non-finite values (NaN or "
                          "infinity) from finite weights: generator.safetensors is damaged; reinstall or retrain it")


def pad_photo(x: torch.Tensor, m: int = TILE_HALO) -> torch.Tensor:
    """Mirror-pad an (N,3,H,W) photo by ``m`` px (then up to multiples of 8 at the bottom
    right): how a non-periodic image is given context before the wrap-around encoder."""
    h, w = x.shape[-2:]
    ph, pw = _round8(h + 2 * m), _round8(w + 2 * m)
    return torch.nn.functional.pad(x, (m, pw - w - m, m, ph - h - m),
                                   mode="reflect" if min(h, w) > m else "replicate")


def stylize_image(synth: "Synthesizer", image: np.ndarray, tile: int = DEFAULT_TILE, progress=None) -> np.ndarray:
    """(H,W,3) float [0,1] photo or frame -> (H,W,3) float [0,1]: G decodes the image's own
    relu4_1 features. A photo does not wrap around, so it is mirror-padded by the tile halo
    (and up to a multiple of 8) before decoding and cropped after."""
    h, w = image.shape[:2]
    check_size(max(h, 8), max(w, 8))
    m = TILE_HALO
    x = pad_photo(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))[None])
    # a texture preset's periodic inputs or layout (``--any-kind``): one for the whole
    # padded photo, so its tiles agree
    out = synth.decode_tiled(x[0].numpy(), tile=tile, progress=progress, waves=synth.waves_for(tuple(x.shape[-2:]), 0))
    return np.ascontiguousarray(out[m:m + h, m:m + w])


def to_uint8(image: np.ndarray, rows_per_chunk: int = 512) -> np.ndarray:
    """(H,W,3) float [0,1] -> (H,W,3) uint8, rounding to nearest; in row chunks so a huge
    texture never needs a second float copy. uint8 passes through unchanged."""
    if image.dtype == np.uint8:
        return image
    out = np.empty(image.shape, np.uint8)
    for y in range(0, image.shape[0], rows_per_chunk):
        chunk = np.clip(image[y:y + rows_per_chunk], 0.0, 1.0) * 255.0 + 0.5
        out[y:y + rows_per_chunk] = chunk.astype(np.uint8)
    return out


def tile_2x2(image: np.ndarray) -> np.ndarray:
    """The texture repeated 2x2: the seams show here if there are any."""
    return np.tile(image, (2, 2, 1))
