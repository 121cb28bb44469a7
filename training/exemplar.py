"""Exemplar images: loading with clear errors, and their augmentation."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from engine.images import WIDE_GREY, photo_alpha, photo_rgb_and_profile

MAX_EXEMPLAR_PIXELS = 64_000_000


MIN_EXEMPLAR_SIDE = 32   # VGG19's relu4_1 of anything smaller is a 4x4 lattice or less


def _fit(size: tuple[int, int], longest: int, keep_side: int) -> float:
    """The scale that brings the longest side of ``size`` to ``longest``, but not the
    shorter side under ``keep_side`` or a quarter of ``longest`` (never above 1 for that)."""
    return max(longest / max(size), min(1.0, min(keep_side, longest // 4) / min(size)))


OPAQUE = 0.98   # a pixel at least this opaque counts as the photo's own colour


def largest_opaque_rect(opaque: np.ndarray, grid: int = 512) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the largest axis-aligned rectangle of an (H,W) bool
    mask that is True throughout. The mask is first reduced to at most ``grid`` cells a side
    (a cell is True only where all its pixels are), so the answer is exact on cell borders
    and the search stays quick on a 64 Mpx photo: the classic largest rectangle under a
    histogram, row by row."""
    h, w = opaque.shape
    cy, cx = max(1, -(-h // grid)), max(1, -(-w // grid))
    gh, gw = -(-h // cy), -(-w // cx)
    padded = np.ones((gh * cy, gw * cx), bool)   # past the edges: clipped off below
    padded[:h, :w] = opaque
    cells = padded.reshape(gh, cy, gw, cx).all(axis=(1, 3))
    best, best_area = (0, 0, 0, 0), 0
    heights = np.zeros(gw + 1, int)   # a 0 sentinel at the end flushes the stack
    for row in range(gh):
        heights[:gw] = np.where(cells[row], heights[:gw] + 1, 0)
        stack: list[int] = []
        for col in range(gw + 1):
            while stack and heights[stack[-1]] >= heights[col]:
                top = stack.pop()
                left = stack[-1] + 1 if stack else 0
                area = heights[top] * (col - left) * cy * cx
                if area > best_area:
                    best_area, best = area, (row - heights[top] + 1, left, heights[top], col - left)
            stack.append(col)
    top, left, hh, ww = best
    return top * cy, left * cx, min(hh * cy, h - top * cy), min(ww * cx, w - left * cx)


def load_exemplar(path: str | Path, longest_side: int | None = None, scale: float | None = None,
                  max_side: int | None = None, with_scale: bool = False, keep_side: int = 128,
                  opaque_only: bool = True):
    """(1,3,H,W) sRGB [0,1] with both sides multiples of 8 (grayscale photos become three
    equal channels).

    The scale: ``longest_side`` scales the longest side to that; else ``scale``; else 1 (the
    photo's own pixel size), or down to ``max_side`` where the photo is larger, though its
    shorter side stays at least ``keep_side`` (the training canvas) or a quarter of that
    longest side, whichever is less: a 4000x300 panorama becomes 1707x128, not 512x38, too
    thin to train on (``longest_side`` keeps the same floor). At scale 1
    the photo is cropped (centred) to multiples of 8, not resampled. A photo with transparent
    pixels (a cut-out PNG) is first cropped to its largest fully opaque rectangle: what lies
    under its transparency is not the material (``opaque_only``; off for a content photo,
    which keeps its framing). With ``with_scale``, returns (image, scale
    applied, a note for the user when the photo was cropped or downscaled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exemplar image {path} does not exist")
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_EXEMPLAR_PIXELS:
                raise ValueError(f"exemplar {path} is {im.width}x{im.height}: too large (max 64 Mpx)")
            im.load()
            (arr, profile), wide = photo_rgb_and_profile(im), im.mode in WIDE_GREY
            alpha = photo_alpha(im) if opaque_only else None
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read exemplar image {path}: {exc}") from None
    notes = [] if profile is None else [f"exemplar {path.name} is in the colour space {profile!r}: "
                                         f"its colours converted to sRGB"]
    if alpha is not None and not (alpha >= OPAQUE).all():
        top, left, hh, ww = largest_opaque_rect(alpha >= OPAQUE)
        shown = f"{(alpha < OPAQUE).mean():.0%}" if (alpha < OPAQUE).mean() >= 0.005 else "under 1%"
        if min(hh, ww) < MIN_EXEMPLAR_SIDE:
            if hh * ww == 0:
                raise ValueError(f"exemplar {path} is {arr.shape[1]}x{arr.shape[0]} and has no opaque pixel: "
                                 f"flatten it onto its material, or pick another photo")
            raise ValueError(f"exemplar {path} is {arr.shape[1]}x{arr.shape[0]} with {shown} of its pixels "
                             f"transparent; its largest opaque rectangle, {ww}x{hh}, is under "
                             f"{MIN_EXEMPLAR_SIDE} px a side: crop the photo to the material, or flatten it")
        arr = np.ascontiguousarray(arr[top:top + hh, left:left + ww])
        notes.append(f"exemplar {path.name} has transparent pixels ({shown}): trained on its largest "
                     f"opaque rectangle, {ww}x{hh} at ({left}, {top})")
    size = (arr.shape[1], arr.shape[0])
    if longest_side is not None:
        s = _fit(size, longest_side, keep_side)
    elif scale is not None:
        s = float(scale)
    else:
        s = 1.0
        if max_side is not None and max(size) > max_side:
            s = _fit(size, max_side, keep_side)
        if s < 1.0:
            notes.append(f"exemplar {path.name} is {size[0]}x{size[1]}: trained at scale {s:.3g} "
                    f"({round(size[0] * s)}x{round(size[1] * s)}) to fit the budget; "
                    f"--scale sets another")
    w, h = round(size[0] * s), round(size[1] * s)
    if min(w, h) < MIN_EXEMPLAR_SIDE:
        at = f" at scale {s:.3g} ({w}x{h})" if s != 1.0 else ""
        raise ValueError(f"exemplar {path} is {size[0]}x{size[1]}{at}: too small, at least "
                         f"{MIN_EXEMPLAR_SIDE} px a side is needed" + ("; raise --scale" if s < 1 else ""))
    if (w, h) != size and wide:   # 16-bit or float grey: resampled at its own precision
        arr = np.repeat(np.asarray(Image.fromarray(arr[..., 0], "F").resize((w, h), Image.LANCZOS))
                        .clip(0.0, 1.0)[..., None], 3, axis=2)
    elif (w, h) != size:
        rgb = Image.fromarray(np.round(arr * 255.0).astype(np.uint8)).resize((w, h), Image.LANCZOS)
        arr = np.asarray(rgb, dtype=np.float32) / 255.0
    # Sides down to multiples of 8 (relu4_1's stride), keeping the centre.
    h8, w8 = h // 8 * 8, w // 8 * 8
    y0, x0 = (h - h8) // 2, (w - w8) // 2
    arr = np.ascontiguousarray(arr[y0:y0 + h8, x0:x0 + w8])
    img = torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous()
    return (img, s, "; ".join(notes)) if with_scale else img


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def augment(x: torch.Tensor, mode: str = "flips") -> list[torch.Tensor]:
    """Variants of an (N,C,H,W) exemplar: "none" (itself), "mirror" (2: and its mirror
    image left to right, so light from above stays from above), "flips" (4: keeps which
    way the structure runs, e.g. brick courses), "dihedral" (8: adds 90 degree rotations)."""
    if mode == "none":
        return [x]
    if mode == "mirror":
        return [x, x.flip(3)]
    flips = [x, x.flip(3), x.flip(2), x.flip(2).flip(3)]
    if mode == "flips":
        return flips
    if mode == "dihedral":
        return flips + [f.transpose(2, 3) for f in flips]
    raise ValueError(f"unknown augmentation {mode!r}; known: none, mirror, flips, dihedral")


def _inner_rect(w: int, h: int, angle: float) -> tuple[int, int]:
    """Largest axis-aligned rectangle inside a w x h image rotated by ``angle`` radians."""
    import math

    if w <= 0 or h <= 0:
        return 0, 0
    long_side, short_side = max(w, h), min(w, h)
    s, c = abs(math.sin(angle)), abs(math.cos(angle))
    if short_side <= 2.0 * s * c * long_side or abs(s - c) < 1e-10:
        x = 0.5 * short_side
        wr, hr = (x / s, x / c) if w >= h else (x / c, x / s)
    else:
        cos_2a = c * c - s * s
        wr, hr = (w * c - h * s) / cos_2a, (h * c - w * s) / cos_2a
    return int(wr), int(hr)


def affine_variants(images: list[np.ndarray], angles=(-10.0, 0.0, 10.0), scales=(1 / 1.1, 1.0, 1.1),
                    flip: bool = True, multiple: int = 8) -> list[list[np.ndarray]]:
    """The paper's data expansion: every (rotation, scale, horizontal flip) of a group of
    aligned (H,W,3) float images (a content photo and its stylised target move together).
    Rotated images are cropped to their largest inner rectangle, so no blank corners enter
    training; sides are cut down to a multiple of ``multiple``. Returns one list per variant."""
    out = []
    for fl in ((False, True) if flip else (False,)):
        for a in angles:
            for s in scales:
                group = []
                for img in images:
                    h, w = img.shape[:2]
                    chans = []
                    for ch in range(img.shape[2]):
                        p = Image.fromarray(np.ascontiguousarray(img[..., ch], dtype=np.float32), mode="F")
                        if fl:
                            p = p.transpose(Image.FLIP_LEFT_RIGHT)
                        if a:
                            p = p.rotate(a, resample=Image.BICUBIC)
                            iw, ih = _inner_rect(w, h, np.deg2rad(a))
                            left, top = (w - iw) // 2 + 1, (h - ih) // 2 + 1
                            p = p.crop((left, top, left + iw - 2, top + ih - 2))
                        if s != 1.0:
                            p = p.resize((max(1, round(p.width * s)), max(1, round(p.height * s))), Image.BICUBIC)
                        chans.append(np.asarray(p, dtype=np.float32))
                    arr = np.clip(np.stack(chans, -1), 0.0, 1.0)
                    hh, ww = arr.shape[0] // multiple * multiple, arr.shape[1] // multiple * multiple
                    group.append(np.ascontiguousarray(arr[:hh, :ww]))
                out.append(group)
    return out
