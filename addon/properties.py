"""The panel's settings, stored on the scene, and the add-on's runtime state."""
from __future__ import annotations

import bpy

from .connection import LINK, protocol
from .jobs import PANEL_MAP_SETTINGS
from .live_preview_timer import live_preview_toggled
from .preset_list import NO_PRESET, enum_items
from .previews import THUMBNAILS
from .train_progress import TRAIN_MINUTES
from .variant_settings import MGAN_VariantSettings

# Blender keeps pointers into the strings of dynamic enum items: keep them alive here.
_preset_items: list[tuple] = []


_style_items: list[tuple] = []


def _items(first_kind: str) -> list[tuple]:
    """The engine's presets, those of ``first_kind`` first, with their thumbnails' icons."""
    return enum_items(LINK.presets, first_kind, THUMBNAILS.icon_id)


def preset_items(self, context):
    global _preset_items
    _preset_items = _items("texture")
    return _preset_items


def style_preset_items(self, context):
    global _style_items
    _style_items = _items("style")
    return _style_items


class RunState:
    """What the running operator is doing, for the panel (not saved in .blend files)."""

    def __init__(self):
        self.running = False
        self.fraction = 0.0
        self.message = ""
        self.note = ""  # the engine's note on the last texture (a pattern's repeat stretched to fit)
        self.fit = None  # ... and the size (width, height) that holds that repeat as it is
        self.cancel_requested = False
        self.train_job = ""
        self.train_message = ""
        self.train_conflict = ""  # the name of a run the engine refused to start anew (it has a checkpoint)


STATE = RunState()


def _map_setting(name: str, key: str, default: float, description: str, **kw) -> bpy.props.FloatProperty:
    """A map setting's property; its range is the protocol's, so the engine never refuses it."""
    spec = protocol.MAP_SETTING_FIELDS[key]
    return bpy.props.FloatProperty(name=name, default=default, min=spec.lo, max=spec.hi,
                                   description=description, **kw)


def map_settings_values(settings) -> dict:
    """The panel's map settings, keyed as on the wire."""
    return {key: getattr(settings, f"map_{key}") for key in PANEL_MAP_SETTINGS}


def show_map_settings(settings, values: dict) -> None:
    """Put the values the engine used into the (inactive) fields, so ticking "Custom map
    settings" starts from the preset's own."""
    for key, value in values.items():
        setattr(settings, f"map_{key}", value)


class MGAN_Settings(bpy.types.PropertyGroup):
    preset: bpy.props.EnumProperty(name="Preset", items=preset_items)
    width: bpy.props.IntProperty(name="Width", default=1024, min=8, max=16384, subtype="PIXEL")
    height: bpy.props.IntProperty(name="Height", default=1024, min=8, max=16384, subtype="PIXEL")
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0)
    noise_scale: bpy.props.FloatProperty(name="Noise scale", default=0.0, min=0.0, max=4096.0,
                                         description="Feature size in pixels; 0 keeps the preset's own")
    tileable: bpy.props.BoolProperty(name="Tileable", default=True,
                                     description="The texture wraps around seamlessly")
    live_preview: bpy.props.BoolProperty(
        name="Live preview", default=False, update=live_preview_toggled,
        description="Keep a small preview ('MGAN Preview', shown repeated in the Image Editor) up to date "
                    "while the preset, seed, noise scale or size change; Apply generates the full size")
    image_name: bpy.props.StringProperty(name="Image", default="",
                                         description="Image to create or update; empty: one image per preset "
                                                     "and seed, named '<preset>_s<seed>'")
    variants: bpy.props.PointerProperty(type=MGAN_VariantSettings)
    float_buffer: bpy.props.BoolProperty(name="Float buffer", default=False,
                                         description="Store as a 32-bit float (scene-linear) image")
    add_to_material: bpy.props.BoolProperty(
        name="Add to material", default=True,
        description="Wire an Image Texture node into the active material's Principled BSDF Base Color")
    stylise_render: bpy.props.BoolProperty(
        name="Stylise rendered frames", default=False,
        description="Send every rendered frame through a preset and write <frame>_mgan.png beside it")
    stylise_preset: bpy.props.EnumProperty(name="Style preset", items=style_preset_items)
    stylise_temporal: bpy.props.FloatProperty(
        name="Temporal smoothing", default=0.0, min=0.0, max=1.0, subtype="FACTOR",
        description="Where a rendered pixel barely changed since the previous frame, keep up to this share "
                    "of the previous stylised frame (less flicker; 0 = every frame on its own)")
    train_image: bpy.props.PointerProperty(name="Exemplar", type=bpy.types.Image,
                                           description="Image to train a new preset from")
    train_name: bpy.props.StringProperty(name="Preset name", default="my-texture")
    train_minutes: bpy.props.FloatProperty(name="Minutes", default=TRAIN_MINUTES, min=0.1, max=10080.0,
                                           description="Training time budget (where Steps is 0)")
    train_steps: bpy.props.IntProperty(name="Steps", default=0, min=0, max=1000000,
                                       description="0: train for the minutes above; else this many steps")
    train_exemplar_size: bpy.props.IntProperty(
        name="Exemplar size", default=0, min=0, max=4096, subtype="PIXEL",
        description="0: the image at its own pixel size (above 512 px it is scaled down); "
                    "else its longest side scaled to this")
    train_crop: bpy.props.IntProperty(name="Crop", default=128, min=32, max=1024, step=8, subtype="PIXEL")
    train_batch: bpy.props.IntProperty(name="Batch", default=4, min=1, max=64)
    train_repeat: bpy.props.StringProperty(
        name="Repeat", default="",
        description="A patterned image (carpet, print, wallpaper): one whole repeat of its pattern, "
                    "WIDTHxHEIGHT in the image's pixels, or auto to read it from the image; empty: none")
    map_override: bpy.props.BoolProperty(
        name="Custom map settings", default=False,
        description="Send the map settings below; off, the preset's own are used and shown below "
                    "after each Generate material")
    map_height_scale: _map_setting("Height scale", "height_scale", 1.0,
                                   "Relief of the height map; negative inverts it (light mortar sits low)")
    map_normal_strength: _map_setting("Normal strength", "normal_strength", 1.0,
                                      "Steepness of the normal map's slopes")
    map_roughness_min: _map_setting("Roughness min", "roughness_min", 0.35, "Roughness of the smoothest parts",
                                    subtype="FACTOR")
    map_roughness_max: _map_setting("Roughness max", "roughness_max", 0.9, "Roughness of the roughest parts",
                                    subtype="FACTOR")
    map_ao_radius: _map_setting("AO radius", "ao_radius", 16.0, "How far, in texture pixels, a crevice is "
                                "shadowed by its surroundings", subtype="PIXEL")
    map_ao_strength: _map_setting("AO strength", "ao_strength", 1.0, "How dark the ambient occlusion gets")
    timeout: bpy.props.FloatProperty(name="Deadline", default=600.0, min=1.0, subtype="TIME_ABSOLUTE",
                                     description="Seconds to wait for the engine's result")
