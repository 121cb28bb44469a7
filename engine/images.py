"""Image files: the one place that writes PNGs (8-bit colour, 8- and 16-bit grey), and
the one that turns any photo PIL opens into sRGB floats (``photo_rgb``): upright, at its
own bit depth, and in sRGB where the file embeds another colour profile (a phone's
Display P3, a camera's Adobe RGB: read as sRGB numbers they look duller than the photo).

Pixel conventions: arrays are top row first. (H,W,3) uint8 is sRGB colour; (H,W) or
(H,W,1) uint8 / uint16 is grey, and for maps (height, roughness, AO, and the normal map's
RGB) it is non-colour data, written as it is: no gamma or colour profile is attached, so
an application reads back the same numbers. Writes are atomic (a temp file beside the
target, then ``os.replace``): a killed run never leaves a half-written image under the
final name.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write ``image`` as a PNG of its own bit depth: uint8 (H,W,3) RGB, uint8 (H,W[,1])
    grey, uint16 (H,W[,1]) 16-bit grey. Returns the path."""
    from PIL import Image

    path = Path(path)
    a = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
    if a.dtype == np.uint16 and a.ndim == 2:
        # PIL's "I;16" is little-endian 16-bit grey; its PNG writer stores it big-endian.
        pil = Image.frombuffer("I;16", (a.shape[1], a.shape[0]), np.ascontiguousarray(a, "<u2").tobytes(),
                               "raw", "I;16", 0, 1)
    elif a.dtype == np.uint8 and (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        pil = Image.fromarray(np.ascontiguousarray(a))
    else:
        raise ValueError(f"write_png takes (H,W,3) uint8, (H,W) uint8 or (H,W) uint16; got {image.dtype} {image.shape}")
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        pil.save(tmp, format="PNG")
        os.replace(tmp, path)
    except OSError as exc:   # named by the target, not by the temp file beside it
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker else (exc.strerror or str(exc))
        raise type(exc)(f"cannot write {path}: {why}") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass   # the folder itself could not be made or read: nothing was left in it
    return path


def read_png16(path: str | os.PathLike) -> np.ndarray:
    """A grey PNG (8- or 16-bit) as (H,W) uint16 values as stored (8-bit scaled by 257)."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I"):
            return np.asarray(im, dtype=np.uint32).astype(np.uint16)
        if im.mode == "L":
            return np.asarray(im, dtype=np.uint16) * 257
        raise ValueError(f"{path} is not a grey PNG (mode {im.mode})")


WIDE_GREY = ("I;16", "I;16B", "I;16L", "I", "F")   # PIL modes of more than 8 bits a pixel (grey)


def photo_rgb(im) -> np.ndarray:
    """An opened PIL image as (H,W,3) float32 sRGB in [0,1], upright: its EXIF orientation
    applied (a phone's portrait photo is stored sideways), and 16-bit and float grey read
    at their own range (PIL's ``convert("RGB")`` clips 16-bit grey to 255: a white image)."""
    return photo_rgb_and_profile(im)[0]


def photo_rgb_and_profile(im) -> tuple[np.ndarray, str | None]:
    """``photo_rgb``, and the name of the colour profile its colours were converted from to
    sRGB; None where there was none to convert (no profile, an sRGB one, a grey image, or
    a profile littleCMS cannot read: then the numbers are taken as sRGB, as before)."""
    from PIL import ImageOps

    im = ImageOps.exif_transpose(im)
    embedded = _embedded_profile(im)
    if embedded is not None:
        return _to_srgb(im, embedded[0]), embedded[1]
    if im.mode == "F":
        grey = np.asarray(im, dtype=np.float32)
        grey = grey / 255.0 if grey.max(initial=0.0) > 1.0 else grey
    elif im.mode in WIDE_GREY:   # 16-bit (and 32-bit integer) grey
        grey = np.asarray(im, dtype=np.float32) / 65535.0
    else:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0, None
    return np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=2), None


PROFILED_MODES = ("RGB", "RGBA", "RGBX", "P", "CMYK")   # colour that an embedded profile converts to sRGB


def _embedded_profile(im):
    """(the parsed profile, its name) where an image's colours are in another colour space
    than sRGB and can be converted (``photo_rgb_and_profile``); else None."""
    from PIL import ImageCms

    icc = im.info.get("icc_profile")
    if not icc or im.mode not in PROFILED_MODES:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        name = (ImageCms.getProfileDescription(profile) or "").strip()
        space = profile.profile.xcolor_space.strip()
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None
    if space != ("CMYK" if im.mode == "CMYK" else "RGB") or "srgb" in name.lower().replace(" ", ""):
        return None
    return profile, name or "unnamed"


def _to_srgb(im, profile) -> np.ndarray:
    """(H,W,3) float32 sRGB of an image in the colour space of ``profile``: littleCMS,
    perceptual intent (relative colorimetric where the profile has no perceptual table);
    colours outside sRGB are clipped to it."""
    from PIL import ImageCms

    src = im if im.mode in ("RGB", "CMYK") else im.convert("RGB")
    try:
        out = ImageCms.profileToProfile(src, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except ImageCms.PyCMSError:
        out = im.convert("RGB")   # (a profile that parses but cannot transform: its numbers as they are)
    return np.asarray(out, dtype=np.float32) / 255.0


def photo_alpha(im) -> np.ndarray | None:
    """An opened PIL image's opacity as (H,W) float32 in [0,1], upright as ``photo_rgb``
    returns its colours; None where the image has no alpha (nor a transparent palette entry)."""
    from PIL import ImageOps

    if im.mode not in ("RGBA", "LA", "PA", "RGBa", "La") and "transparency" not in im.info:
        return None
    im = ImageOps.exif_transpose(im)
    return np.asarray(im.convert("RGBA"), dtype=np.float32)[..., 3] / 255.0
