"""Exemplar images: loading with clear errors, and their augmentation."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

MAX_EXEMPLAR_PIXELS = 64_000_000


def load_exemplar(path: str | Path, longest_side: int) -> torch.Tensor:
    """(1,3,H,W) sRGB [0,1], scaled so the longest side is ``longest_side`` and both sides
    are multiples of 8 (grayscale photos become three equal channels)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exemplar image {path} does not exist")
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_EXEMPLAR_PIXELS:
                raise ValueError(f"exemplar {path} is {im.width}x{im.height}: too large (max 64 Mpx)")
            im.load()
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read exemplar image {path}: {exc}") from None
    scale = longest_side / max(rgb.size)
    w = max(8, round(rgb.width * scale / 8) * 8)
    h = max(8, round(rgb.height * scale / 8) * 8)
    if (w, h) != rgb.size:
        rgb = rgb.resize((w, h), Image.LANCZOS)
    arr = np.asarray(rgb, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous()


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def augment(x: torch.Tensor, mode: str = "flips") -> list[torch.Tensor]:
    """Variants of an (N,C,H,W) exemplar: "none" (itself), "flips" (4: keeps which way
    the structure runs, e.g. brick courses), "dihedral" (8: adds 90 degree rotations)."""
    if mode == "none":
        return [x]
    flips = [x, x.flip(3), x.flip(2), x.flip(2).flip(3)]
    if mode == "flips":
        return flips
    if mode == "dihedral":
        return flips + [f.transpose(2, 3) for f in flips]
    raise ValueError(f"unknown augmentation {mode!r}; known: none, flips, dihedral")
