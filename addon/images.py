"""Engine results into Blender data: images and material nodes (main thread only)."""
from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path

import bpy
import numpy as np

from .pixels import NON_COLOR, SRGB, blender_alpha, blender_to_engine, engine_to_blender, map_to_blender
from .wiring import TEXTURE_NODE_LABEL, existing_texture_node, principled_for_output


ALPHA_DEPTHS = (32, 64, 128)   # Image.depth, bits a pixel, of RGBA byte, half and float images


def _image(name: str, width: int, height: int, float_buffer: bool, alpha: bool = False) -> bpy.types.Image:
    """Image ``name`` at this size and pixel type (with an alpha channel or not): the
    existing one, or a new one that takes over the old one's users (nodes) if it had to be
    rebuilt."""
    image = bpy.data.images.get(name)
    if (image is None or tuple(image.size) != (width, height) or bool(image.is_float) != float_buffer
            or (image.depth in ALPHA_DEPTHS) != alpha):
        new = bpy.data.images.new(name, width, height, alpha=alpha, float_buffer=float_buffer)
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


def write_image(name: str, rgb: np.ndarray, float_buffer: bool = False,
                alpha: np.ndarray | None = None) -> bpy.types.Image:
    """Create or update image ``name`` with an (H, W, 3) sRGB top-down engine result (and an
    (H, W) uint8 straight ``alpha``: an RGBA image).

    A byte image is tagged sRGB and gets the sRGB values; a float image is scene-linear and
    gets them decoded."""
    image = _image(name, rgb.shape[1], rgb.shape[0], float_buffer, alpha=alpha is not None)
    if not float_buffer:
        image.colorspace_settings.name = SRGB
    return _fill(image, engine_to_blender(rgb, linear=float_buffer, alpha=alpha))


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


def image_rgba(image: bpy.types.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """An image's pixels as the engine wants them, (H, W, 3) sRGB uint8, top row first; and
    its alpha as (H, W) uint8 top-down, or None where it is opaque throughout."""
    w, h = image.size
    flat = np.empty(w * h * 4, dtype=np.float32)
    image.pixels.foreach_get(flat)
    return blender_to_engine(flat, w, h, linear=image.is_float), blender_alpha(flat, w, h)


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


def read_rgba(path: str, dispose=_remove) -> tuple[np.ndarray, np.ndarray | None]:
    """An image file (a rendered frame) as (H, W, 3) sRGB uint8, top row first, and its
    alpha as (H, W) uint8 top-down (a render over a transparent film), or None where it is
    opaque throughout. The temporary Blender image goes to ``dispose`` (a LaterRemoval in
    render handlers)."""
    image = bpy.data.images.load(path, check_existing=False)
    try:
        return image_rgba(image)
    finally:
        dispose(image)


def save_png(path, rgb: np.ndarray, dispose=_remove, alpha: np.ndarray | None = None) -> None:
    """Write an (H, W, 3) sRGB uint8 top-down image as a PNG file, pixels unchanged (no view
    transform); with ``alpha`` ((H, W) uint8, straight) an RGBA PNG. The temporary Blender
    image goes to ``dispose``, as in ``read_rgba``."""
    h, w = rgb.shape[:2]
    image = bpy.data.images.new("MGAN stylised frame", w, h, alpha=alpha is not None)
    try:
        image.colorspace_settings.name = "sRGB"
        image.pixels.foreach_set(engine_to_blender(rgb, linear=False, alpha=alpha))
        image.filepath_raw, image.file_format = str(path), "PNG"
        image.save()
    finally:
        dispose(image)


RENDER_RESULT = "Render Result"  # Blender's image of the last render (its pixels are not in .pixels)


@contextmanager
def _png_output(scene: bpy.types.Scene, color_mode: str = "RGB"):
    """The scene's output format set to 8-bit PNG (``color_mode`` RGB or RGBA) for a moment,
    then put back.
    ``save_render`` writes in the scene's format (an OpenEXR scene gets linear floats, whatever
    the file's name); a PNG gets the view transform, what the artist sees in the Render Result
    and what a PNG frame file holds."""
    settings = scene.render.image_settings
    # media_type (Blender 5.0+) first: it decides which file formats are allowed
    names = [n for n in ("media_type", "file_format", "color_mode", "color_depth") if hasattr(settings, n)]
    saved = [(n, getattr(settings, n)) for n in names]
    try:
        if "media_type" in names:
            settings.media_type = "IMAGE"
        settings.file_format, settings.color_mode, settings.color_depth = "PNG", color_mode, "8"
        yield
    finally:
        for name, value in saved:
            setattr(settings, name, value)


def render_result_rgba(scene: bpy.types.Scene) -> tuple[np.ndarray, np.ndarray | None]:
    """The Render Result (a still just rendered) as (H, W, 3) sRGB uint8, top row first,
    and its alpha where the film is transparent (else None): saved through the scene's
    colour management to a temporary PNG, the supported way to read its pixels, and read
    back. Main thread only, no render running. RuntimeError if there is no result."""
    result = bpy.data.images.get(RENDER_RESULT)
    if result is None:
        raise RuntimeError("there is no Render Result to stylise")
    with tempfile.TemporaryDirectory(prefix="mgan_still_") as folder:
        path = str(Path(folder) / "render_result.png")
        with _png_output(scene, "RGBA" if scene.render.film_transparent else "RGB"):
            result.save_render(path, scene=scene)  # RuntimeError if the result has no pixels
        return read_rgba(path)


def show_instead_of_render(image: bpy.types.Image) -> bool:
    """Show ``image`` in the first Image Editor that shows the Render Result (the render
    window of F12), if there is one; whether one was found. Main thread only."""
    for wm in bpy.data.window_managers:
        for window in wm.windows:
            for area in window.screen.areas:
                space = area.spaces.active if area.type == "IMAGE_EDITOR" else None
                if space is not None and space.image is not None and space.image.type == "RENDER_RESULT":
                    space.image = image
                    area.tag_redraw()
                    return True
    return False
