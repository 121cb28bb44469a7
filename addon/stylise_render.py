"""Stylise rendered frames: after Blender writes each frame, send it through a style
preset and write ``<frame file>_mgan.png`` beside it (the frame number is in the name).

It runs in the ``render_write`` handler, when the frame's file exists. The request is
blocking: in background renders (`blender -b ... -a`) that is the main thread and the
right thing; in the UI the render job is busy anyway. It has its own engine link, so it
never shares a socket with the panel's operators."""
from __future__ import annotations

from pathlib import Path

import bpy

from .connection import EngineError, Link
from .images import read_rgb, save_png
from .jobs import EngineJob
from .preferences import addon_prefs

RENDER_LINK = Link()
SUFFIX = "_mgan"


def stylised_path(frame_file: str) -> Path:
    p = Path(frame_file)
    return p.with_name(f"{p.stem}{SUFFIX}.png")


def stylise_file(frame_file: str, preset: str, endpoint: str, timeout: float) -> Path:
    rgb = read_rgb(frame_file)
    job = EngineJob(RENDER_LINK, endpoint, "stylize", {"preset": preset, "dtype": "uint8"}, [rgb],
                    timeout=timeout).start().run()
    out = stylised_path(frame_file)
    save_png(out, job.reply.payloads[0])
    return out


@bpy.app.handlers.persistent
def on_render_write(scene, *_):
    settings = scene.mgan
    if not settings.stylise_render:
        return
    frame_file = bpy.path.abspath(scene.render.frame_path(frame=scene.frame_current))
    try:
        out = stylise_file(frame_file, settings.stylise_preset, addon_prefs().endpoint, settings.timeout)
        print(f"MGAN: stylised frame {scene.frame_current} -> {out}")
    except (EngineError, OSError, RuntimeError) as exc:
        message = exc.message if isinstance(exc, EngineError) else str(exc)
        print(f"MGAN: could not stylise frame {scene.frame_current}: {message}")


class MGAN_PT_render_stylise(bpy.types.Panel):
    bl_label = "MGAN: Stylise Rendered Frames"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"
    bl_options = {"DEFAULT_CLOSED"}

    def draw_header(self, context):
        self.layout.prop(context.scene.mgan, "stylise_render", text="")

    def draw(self, context):
        layout = self.layout
        layout.active = context.scene.mgan.stylise_render
        layout.prop(context.scene.mgan, "stylise_preset")
        layout.label(text=f"Writes <frame>{SUFFIX}.png next to each rendered frame")
        layout.operator("mgan.refresh", icon="FILE_REFRESH")


def register_handler() -> None:
    if on_render_write not in bpy.app.handlers.render_write:
        bpy.app.handlers.render_write.append(on_render_write)


def unregister_handler() -> None:
    while on_render_write in bpy.app.handlers.render_write:
        bpy.app.handlers.render_write.remove(on_render_write)
    RENDER_LINK.close()
