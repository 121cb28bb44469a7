"""Stylising photos and frame sequences with a style preset, and measuring flicker.

Per frame, stylisation is one deterministic forward pass (``engine.synth.stylize_image``):
the same pixels give the same output, so a still region of a sequence stays still. What
moves is re-stylised every frame. ``temporal`` > 0 adds a motion-gated recursive filter:
where a pixel's source barely changed since the previous frame, the output keeps part of
the previous stylised frame, which removes the residual shimmer that moving neighbours
cause through VGG's receptive field; where the source changed, the new frame wins.
``flicker`` is the figure that bench/stylize_bench.py reports.
"""
from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
MOTION_SCALE = 0.03      # mean |source change| (0..1) at which the previous frame's share halves (~)
MOTION_THRESHOLD = 0.08  # a source change this large is motion, not render noise
MOTION_RADIUS = 16       # px around motion that always follow the new frame (G's halo there moves too)


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def collect_frames(inputs: list[str]) -> list[Path]:
    """Files, folders (their images) and globs -> an ordered list of frames (frame_2 before
    frame_10). Raises a clear error for anything that matches nothing."""
    frames: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted((f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()),
                           key=_natural_key)
            if not found:
                raise FileNotFoundError(f"folder {p} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        elif p.is_file():
            found = [p]
        elif glob.has_magic(item):
            found = sorted((Path(f) for f in glob.glob(item) if Path(f).is_file()), key=_natural_key)
            if not found:
                raise FileNotFoundError(f"no files match {item!r}")
        else:
            raise FileNotFoundError(f"input {p} does not exist")
        frames += found
    seen, ordered = set(), []
    for f in frames:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            ordered.append(f)
    return ordered


def read_frame(path: Path) -> np.ndarray:
    """A frame's colours, (H,W,3) float32 sRGB [0,1]."""
    return read_frame_alpha(path)[0]


def read_frame_alpha(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """A frame's colours and, where the file has an alpha channel (a render with a
    transparent film), its opacity as (H,W) uint8; else None."""
    from PIL import Image, UnidentifiedImageError

    from .images import photo_alpha, photo_rgb   # (here: the add-on bundles this module alone, for temporal_blend)

    try:
        with Image.open(path) as im:
            if im.width * im.height > 268_000_000:
                raise ValueError(f"{path} is {im.width}x{im.height}: too large")
            alpha = photo_alpha(im)
            return photo_rgb(im), (None if alpha is None else np.rint(alpha * 255).astype(np.uint8))
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read frame {path}: {exc}") from None


def box_sum(a: np.ndarray, r: int) -> np.ndarray:
    """Sum of ``a`` over the (2r+1)^2 window around each pixel (edges clamped), in O(1) a pixel."""
    for axis in (0, 1):
        p = np.pad(a, [(r + 1, r) if ax == axis else (0, 0) for ax in (0, 1)], mode="edge")
        c = np.cumsum(p, axis=axis, dtype=np.float64)
        n = a.shape[axis]
        a = np.take(c, np.arange(2 * r + 1, 2 * r + 1 + n), axis=axis) - np.take(c, np.arange(n), axis=axis)
    return a


def temporal_blend(out: np.ndarray, src: np.ndarray, prev_out: np.ndarray | None,
                   prev_src: np.ndarray | None, strength: float, radius: int = MOTION_RADIUS) -> np.ndarray:
    """Keep ``strength`` x exp(-(change / MOTION_SCALE)^2) of the previous stylised frame per
    pixel, where ``change`` is the source's mean absolute change there (3x3 box-blurred);
    nothing within ``radius`` px of motion (change > MOTION_THRESHOLD), where G's output moves
    with the object even if the source pixel itself is still: keeping it would leave a trail."""
    if strength <= 0 or prev_out is None or prev_src is None or prev_out.shape != out.shape:
        return out
    change = np.abs(src - prev_src).mean(-1)
    change = box_sum(change, 1) / 9
    keep = min(strength, 1.0) * np.exp(-(change / MOTION_SCALE) ** 2)
    if radius > 0:
        keep[box_sum((change > MOTION_THRESHOLD).astype(np.float32), radius) > 0.5] = 0.0
    keep = keep[..., None].astype(np.float32)
    return keep * prev_out + (1 - keep) * out


def filter_sequence(outputs: list[np.ndarray], sources: list[np.ndarray], strength: float,
                    radius: int = MOTION_RADIUS) -> list[np.ndarray]:
    """``temporal_blend`` over a whole sequence held in memory (what ``stylize_frames`` does
    frame by frame): each output blended with the previous filtered one."""
    filtered, prev_out, prev_src = [], None, None
    for out, src in zip(outputs, sources):
        prev_out, prev_src = temporal_blend(out, src, prev_out, prev_src, strength, radius), src
        filtered.append(prev_out)
    return filtered


def flicker(outputs: list[np.ndarray], sources: list[np.ndarray]) -> float:
    """Mean absolute change between consecutive outputs / the same for the source frames
    (1.0: the output changes exactly as much as the scene does)."""
    if len(outputs) < 2 or len(outputs) != len(sources):
        raise ValueError("flicker needs two or more frames and one output per source frame")
    d_out = np.mean([np.abs(a.astype(np.float32) - b.astype(np.float32)).mean() for a, b in zip(outputs, outputs[1:])])
    d_src = np.mean([np.abs(a.astype(np.float32) - b.astype(np.float32)).mean() for a, b in zip(sources, sources[1:])])
    return float(d_out / max(d_src, 1e-12))


def check_destinations(frames: list[Path], out_dir: Path, overwrite: bool) -> None:
    """Before anything is written: no output may replace an input, two inputs may not share
    a name, and an existing output is replaced only with ``overwrite``."""
    inputs = {f.resolve() for f in frames}
    names: dict[str, Path] = {}
    for f in frames:
        dst = Path(out_dir) / f.name
        if dst.name in names:
            raise ValueError(f"two inputs are named {f.name} ({names[dst.name]} and {f}); "
                             "stylise them into separate folders")
        names[dst.name] = f
        if dst.resolve() in inputs:
            raise ValueError(f"output {dst} would overwrite an input frame; choose another -o folder")
        if dst.exists() and not overwrite:
            raise FileExistsError(f"{dst} exists; pass --overwrite to replace it")


def save_frame(dst: Path, image: np.ndarray, alpha: np.ndarray | None = None) -> None:
    """Write (H,W,3) uint8 ``image`` to ``dst`` atomically: a killed run never leaves a
    half-written frame under the final name. With ``alpha`` ((H,W) uint8, straight, as the
    source frame had it) the file is RGBA, in a format that holds alpha (PNG, TIFF, WebP)."""
    from PIL import Image

    tmp = dst.with_name(f".{dst.stem}.tmp{dst.suffix}")
    Image.fromarray(image if alpha is None else np.dstack([image, alpha])).save(tmp)
    os.replace(tmp, dst)


def stylize_frames(synth, frames: list[Path], out_dir: Path, tile: int = 1024, temporal: float = 0.0,
                   overwrite: bool = False, progress: bool = True, keep: bool = False):
    """Stylise ``frames`` into ``out_dir`` (same file names; a frame with an alpha channel
    keeps it, so a render over a transparent film still composites). Checks every
    destination before writing anything: an input is never overwritten, nor an existing
    output unless ``overwrite``. Returns the written paths (and the float outputs with ``keep``)."""
    from engine.progress import Progress
    from engine.synth import stylize_image, to_uint8

    if not 0.0 <= temporal <= 1.0:
        raise ValueError(f"temporal must be in 0..1, got {temporal}")
    out_dir = Path(out_dir)
    check_destinations(frames, out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = Progress(len(frames), f"stylize {synth.preset.name if synth.preset else ''}", enabled=progress)
    written, kept = [], []
    prev_out = prev_src = None
    for i, f in enumerate(frames):
        src, alpha = read_frame_alpha(f)
        out = stylize_image(synth, src, tile=tile)
        out = temporal_blend(out, src, prev_out, prev_src, temporal)
        prev_out, prev_src = out, src
        dst = out_dir / f.name
        save_frame(dst, to_uint8(out), alpha)   # a transparent render stays as transparent
        written.append(dst)
        if keep:
            kept.append(out)
        bar.update(i + 1)
    bar.close()
    return (written, kept) if keep else written
