"""Engine results into Blender data: images and material nodes (main thread only)."""
from __future__ import annotations

import bpy
import numpy as np

from .pixels import NON_COLOR, SRGB, blender_to_engine, engine_to_blender, map_to_blender
from .wiring import TEXTURE_NODE_LABEL, existing_texture_node, principled_for_output


def _image(name: str, width: int, height: int, float_buffer: bool) -> bpy.types.Image:
    """Image ``name`` at this size and pixel type: the existing one, or a new one that takes
    over the old one's users (nodes) if it had to be rebuilt."""
    image = bpy.data.images.get(name)
    if image is None or tuple(image.size) != (width, height) or bool(image.is_float) != float_buffer:
        new = bpy.data.images.new(name, width, height, alpha=False, float_buffer=float_buffer)
        if image is not None:
            image.user_remap(new)
            bpy.data.images.remove(image)
            new.name = name
        image = new
    return image


def _fill(image: bpy.types.Image, flat_rgba: np.ndarray) -> bpy.types.Image:
    image.pixels.foreach_set(flat_rgba)
    image.update()
    image.pack()  # a generated image's pixels would be lost on save otherwise
    return image


def write_image(name: str, rgb: np.ndarray, float_buffer: bool = False) -> bpy.types.Image:
    """Create or update image ``name`` with an (H, W, 3) sRGB top-down engine result.

    A byte image is tagged sRGB and gets the sRGB values; a float image is scene-linear and
    gets them decoded."""
    image = _image(name, rgb.shape[1], rgb.shape[0], float_buffer)
    if not float_buffer:
        image.colorspace_settings.name = SRGB
    return _fill(image, engine_to_blender(rgb, linear=float_buffer))


def write_map_image(name: str, data: np.ndarray) -> bpy.types.Image:
    """Create or update image ``name`` with an (H, W, 1|3) top-down material map: Non-Color
    data. A uint16 map (height) goes into a float image, which keeps all its 65536 levels
    (a byte image would round them to 256) and is packed as 32-bit OpenEXR."""
    image = _image(name, data.shape[1], data.shape[0], float_buffer=data.dtype.itemsize > 1)
    image.colorspace_settings.name = NON_COLOR  # before the pixels: no transform of the values
    return _fill(image, map_to_blender(data))


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


class LaterRemoval:
    """Temporary images made in a render handler, removed from bpy.data when the render job
    ends. Blender 5.3 crashes (a segfault in the next frame) if an image is removed while
    an animation renders; so each image only frees its pixels at once, and ``remove_all``
    runs from render_complete / render_cancel."""

    def __init__(self):
        self.images: list[bpy.types.Image] = []

    def __call__(self, image: bpy.types.Image) -> None:
        image.buffers_free()
        self.images.append(image)

    def remove_all(self) -> None:
        while self.images:
            image = self.images.pop()
            try:
                bpy.data.images.remove(image)
            except ReferenceError:  # already gone with the file it belonged to
                pass


def _remove(image: bpy.types.Image) -> None:
    bpy.data.images.remove(image)


def read_rgb(path: str, dispose=_remove) -> np.ndarray:
    """An image file (a rendered frame) as (H, W, 3) sRGB uint8, top row first. The
    temporary Blender image goes to ``dispose`` (a LaterRemoval in render handlers)."""
    image = bpy.data.images.load(path, check_existing=False)
    try:
        return image_rgb(image)
    finally:
        dispose(image)


def save_png(path, rgb: np.ndarray, dispose=_remove) -> None:
    """Write an (H, W, 3) sRGB uint8 top-down image as a PNG file, pixels unchanged (no view
    transform). The temporary Blender image goes to ``dispose``, as in ``read_rgb``."""
    h, w = rgb.shape[:2]
    image = bpy.data.images.new("MGAN stylised frame", w, h, alpha=False)
    try:
        image.colorspace_settings.name = "sRGB"
        image.pixels.foreach_set(engine_to_blender(rgb, linear=False))
        image.filepath_raw, image.file_format = str(path), "PNG"
        image.save()
    finally:
        dispose(image)
