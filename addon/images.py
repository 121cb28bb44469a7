"""Engine results into Blender data: images and material nodes (main thread only)."""
from __future__ import annotations

import bpy
import numpy as np

from .pixels import blender_to_engine, engine_to_blender
from .wiring import TEXTURE_NODE_LABEL, existing_texture_node, principled_for_output


def write_image(name: str, rgb: np.ndarray, float_buffer: bool = False) -> bpy.types.Image:
    """Create or update image ``name`` with an (H, W, 3) sRGB top-down engine result.

    A byte image is tagged sRGB and gets the sRGB values; a float image is scene-linear and
    gets them decoded. Users of an existing image (nodes) follow it if it must be rebuilt."""
    h, w = rgb.shape[:2]
    image = bpy.data.images.get(name)
    if image is None or tuple(image.size) != (w, h) or bool(image.is_float) != float_buffer:
        new = bpy.data.images.new(name, w, h, alpha=False, float_buffer=float_buffer)
        if image is not None:
            image.user_remap(new)
            bpy.data.images.remove(image)
            new.name = name
        image = new
    if not float_buffer:
        image.colorspace_settings.name = "sRGB"
    image.pixels.foreach_set(engine_to_blender(rgb, linear=float_buffer))
    image.update()
    image.pack()  # a generated image's pixels would be lost on save otherwise
    return image


def wire_texture(material: bpy.types.Material, image: bpy.types.Image) -> bpy.types.Node:
    """An Image Texture node (repeat) with ``image`` into the material's Principled BSDF
    Base Color; reuses the node this add-on made before. Raises ValueError if the
    material has no Principled BSDF."""
    if not material.use_nodes:
        material.use_nodes = True
    tree = material.node_tree
    bsdf = principled_for_output(tree.nodes)
    if bsdf is None:
        raise ValueError(f"material '{material.name}' has no Principled BSDF to take the texture")
    tex = existing_texture_node(tree.nodes)
    if tex is None:
        tex = tree.nodes.new("ShaderNodeTexImage")
        tex.label = TEXTURE_NODE_LABEL
        tex.location = (bsdf.location.x - 320, bsdf.location.y)
    tex.image = image
    tex.extension = "REPEAT"
    tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    return tex


def image_rgb(image: bpy.types.Image) -> np.ndarray:
    """An image's pixels as the engine wants them: (H, W, 3) sRGB uint8, top row first."""
    w, h = image.size
    flat = np.empty(w * h * 4, dtype=np.float32)
    image.pixels.foreach_get(flat)
    return blender_to_engine(flat, w, h, linear=image.is_float)


def read_rgb(path: str) -> np.ndarray:
    """An image file (a rendered frame) as (H, W, 3) sRGB uint8, top row first."""
    image = bpy.data.images.load(path, check_existing=False)
    try:
        return image_rgb(image)
    finally:
        bpy.data.images.remove(image)


def save_png(path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) sRGB uint8 top-down image as a PNG file, pixels unchanged (no view transform)."""
    h, w = rgb.shape[:2]
    image = bpy.data.images.new("MGAN stylised frame", w, h, alpha=False)
    try:
        image.colorspace_settings.name = "sRGB"
        image.pixels.foreach_set(engine_to_blender(rgb, linear=False))
        image.filepath_raw, image.file_format = str(path), "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)
