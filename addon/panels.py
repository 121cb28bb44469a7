"""The "MGAN" sidebar tab, in the Image Editor and the Shader Editor."""
import bpy

from .connection import LINK
from .jobs import PANEL_MAP_SETTINGS
from .live_preview_timer import draw_live_preview
from .op_train import draw_train_status
from .panels_presets import draw_broken_presets, draw_preset_picker, draw_release
from .preset_list import panel_lines
from .properties import STATE


def draw_panel(layout, context) -> None:
    settings = context.scene.mgan
    box = layout.box()
    row = box.row()
    if LINK.hello:
        engine = LINK.hello.get("engine", {})
        row.label(text=f"Connected: {LINK.hello.get('device', '?')}", icon="CHECKMARK")
        box.label(text=f"{engine.get('name', 'engine')} {engine.get('version', '')}")
    else:
        row.label(text="Not connected", icon="ERROR")
        if LINK.last_error:
            box.label(text=LINK.last_error[:80])
    row.operator("mgan.refresh", text="", icon="FILE_REFRESH")
    draw_release(box)

    draw_preset_picker(layout, settings)
    draw_broken_presets(layout)
    col = layout.column(align=True)
    col.prop(settings, "width")
    col.prop(settings, "height")
    layout.prop(settings, "seed")
    layout.prop(settings, "noise_scale")
    layout.prop(settings, "tileable")
    draw_live_preview(layout, settings)
    layout.prop(settings, "image_name")
    layout.prop(settings, "float_buffer")
    layout.prop(settings, "add_to_material")
    draw_map_settings(layout, settings)
    if STATE.running:
        layout.progress(factor=STATE.fraction, text=STATE.message)
        layout.operator("mgan.cancel", icon="CANCEL")
    else:
        row = layout.row(align=True)
        row.operator("mgan.generate", icon="TEXTURE")
        row.operator("mgan.generate_material", icon="MATERIAL")
        if STATE.message:
            layout.label(text=STATE.message)
        for i, line in enumerate(panel_lines(STATE.note) if STATE.note else ()):
            layout.label(text=line, icon="INFO" if i == 0 else "BLANK1")
        if STATE.fit is not None:
            layout.operator("mgan.fit_repeat", text=f"Use {STATE.fit[0]}x{STATE.fit[1]}", icon="FULLSCREEN_ENTER")


def draw_map_settings(layout, settings) -> None:
    """Generate material's map settings, folded away until wanted."""
    header, body = layout.panel("MGAN_material_maps", default_closed=True)
    header.label(text="Material maps")
    if body is None:
        return
    body.prop(settings, "map_override")
    col = body.column(align=True)
    col.active = settings.map_override  # shown either way: off, they are the preset's values
    for key in PANEL_MAP_SETTINGS:
        col.prop(settings, f"map_{key}")


def draw_training(layout, context) -> None:
    settings = context.scene.mgan
    layout.prop(settings, "train_image")
    layout.prop(settings, "train_name")
    col = layout.column(align=True)
    for prop in ("train_minutes", "train_steps", "train_exemplar_size", "train_crop", "train_batch", "train_repeat"):
        col.prop(settings, prop)
    layout.operator("mgan.train", icon="EXPORT")
    draw_train_status(layout)


class SidebarTab:
    """The "MGAN" tab of a sidebar (mixed into each space's panel)."""
    bl_label = "MGAN"
    bl_region_type = "UI"
    bl_category = "MGAN"

    def draw(self, context):
        draw_panel(self.layout, context)


class MGAN_PT_image_editor(SidebarTab, bpy.types.Panel):
    bl_space_type = "IMAGE_EDITOR"


class MGAN_PT_shader_editor(SidebarTab, bpy.types.Panel):
    bl_space_type = "NODE_EDITOR"

    @classmethod
    def poll(cls, context):
        return getattr(context.space_data, "tree_type", "") == "ShaderNodeTree"


class MGAN_PT_train(SidebarTab, bpy.types.Panel):
    bl_label = "Train Preset"
    bl_space_type = "IMAGE_EDITOR"
    bl_parent_id = "MGAN_PT_image_editor"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        draw_training(self.layout, context)
