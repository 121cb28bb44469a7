"""Pixel conventions between the engine and Blender, in one place (numpy only, no bpy).

The wire carries sRGB, top row first, (H, W, 3). Blender's ``Image.pixels`` is a flat
RGBA float array, bottom row first; for a byte image whose colour space is sRGB the
floats are the sRGB values themselves (v / 255), for a float image they are scene-linear.
The material maps (height, normal, roughness, AO) are data, not colour: their values go in
unchanged, into images whose colour space is Non-Color.
"""
from __future__ import annotations

import numpy as np

# Blender's names of the two colour spaces the add-on's images use.
SRGB, NON_COLOR = "sRGB", "Non-Color"

def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 decoding, float32 in [0, 1] to scene-linear."""
    c = np.asarray(srgb, dtype=np.float32)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055).astype(np.float32)


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """uint8 0..255 or float32 [0, 1] sRGB as float32 [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def engine_to_blender(image: np.ndarray, linear: bool, alpha: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) sRGB top-down from the engine -> flat RGBA float32 for ``Image.pixels``.

    ``linear``: the target is a float buffer (scene-linear); otherwise a byte image whose
    colour space is sRGB. ``alpha``: (H, W) uint8 top-down, straight (opaque without)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    rgb = to_unit_float(image)
    if linear:
        rgb = srgb_to_linear(rgb)
    h, w, _ = rgb.shape
    rgba = np.ones((h, w, 4), dtype=np.float32)
    rgba[:, :, :3] = rgb[::-1]  # Blender rows go bottom-up
    if alpha is not None:
        if alpha.shape != (h, w):
            raise ValueError(f"alpha of shape {alpha.shape} for an image of {h}x{w}")
        rgba[:, :, 3] = alpha[::-1].astype(np.float32) / 255.0
    return rgba.reshape(-1)


def blender_to_engine(pixels: np.ndarray, width: int, height: int, linear: bool) -> np.ndarray:
    """Flat RGBA floats of ``Image.pixels`` (or a render result) -> (H, W, 3) sRGB uint8 top-down."""
    rgba = np.asarray(pixels, dtype=np.float32).reshape(height, width, 4)
    rgb = rgba[::-1, :, :3]
    if linear:
        rgb = linear_to_srgb(rgb)
    return np.clip(np.rint(np.clip(rgb, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)


def blender_alpha(pixels: np.ndarray, width: int, height: int) -> np.ndarray | None:
    """The alpha of flat RGBA floats of ``Image.pixels`` as (H, W) uint8 top-down (Blender
    keeps it straight), or None where every pixel is opaque."""
    alpha = np.asarray(pixels, dtype=np.float32).reshape(height, width, 4)[::-1, :, 3]
    if alpha.min(initial=1.0) >= 1.0:
        return None
    return np.rint(np.clip(alpha, 0.0, 1.0) * 255.0).astype(np.uint8)


# The full scale of each integer map type: the wire's uint16 height uses all 65536 levels.
MAP_FULL_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def map_to_blender(data: np.ndarray) -> np.ndarray:
    """(H, W, 1 or 3) uint8 / uint16 map from the engine, top-down -> flat RGBA float32 for
    ``Image.pixels`` of a Non-Color image: v / full scale, no transfer curve; one channel
    becomes grey (R = G = B), which is what a Color socket of an Image Texture then gives.
    float32 holds every v / 65535 exactly enough to round back to v."""
    if data.ndim != 3 or data.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W, 1) or (H, W, 3) map, got shape {data.shape}")
    if data.dtype not in MAP_FULL_SCALE:
        raise ValueError(f"maps are uint8 or uint16, got {data.dtype}")
    values = data.astype(np.float32) / np.float32(MAP_FULL_SCALE[data.dtype])
    h, w, _ = data.shape
    rgba = np.ones((h, w, 4), dtype=np.float32)
    rgba[:, :, :3] = values[::-1]  # Blender rows go bottom-up; (H, W, 1) broadcasts to grey
    return rgba.reshape(-1)
