"""Stylise rendered frames: after Blender writes each frame, send it through a style
preset and write ``<frame file>_mgan.png`` beside it (the frame number is in the name).

It runs in the ``render_write`` handler, when the frame's file exists. The request is
blocking: in background renders (`blender -b ... -a`) that is the main thread and the
right thing; in the UI the render job is busy anyway. It has its own engine link, so it
never shares a socket with the panel's operators.

With "Temporal smoothing" above 0, consecutive frames of one render job go through the
engine's motion-gated filter (engine/sequence.py, the CLI's ``--temporal``): where the
rendered pixel barely changed since the previous frame, part of the previous stylised frame
is kept. The memory of the previous frame is dropped when a new render job starts.

The frame's file is read, and the stylised one written, through temporary Blender images;
they are removed only when the render job ends (see images.LaterRemoval)."""
from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from .connection import EngineError, Link, sequence
from .images import LaterRemoval, read_rgb, save_png
from .jobs import EngineJob
from .preferences import addon_prefs

RENDER_LINK = Link()
SUFFIX = "_mgan"


class PreviousFrame:
    """The last stylised frame of the current render job: (frame number, preset, source
    and output as float [0,1]), what the temporal filter blends with."""

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self.frame, self.preset, self.src, self.out = None, None, None, None

    def blend(self, frame: int, preset: str, src_u8, out_u8, strength: float):
        """The output for ``frame`` (uint8): filtered against the previous frame when it is
        the one just before, of the same preset and size; remembered for the next."""
        src = src_u8.astype(np.float32) / 255
        out = out_u8.astype(np.float32) / 255
        if self.frame == frame - 1 and self.preset == preset:
            out = sequence.temporal_blend(out, src, self.out, self.src, strength)
        self.frame, self.preset, self.src, self.out = frame, preset, src, out
        return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


PREVIOUS = PreviousFrame()
SPENT_IMAGES = LaterRemoval()


def stylised_path(frame_file: str) -> Path:
    p = Path(frame_file)
    return p.with_name(f"{p.stem}{SUFFIX}.png")


def stylise_file(frame_file: str, preset: str, endpoint: str, timeout: float,
                 frame: int | None = None, temporal: float = 0.0) -> Path:
    rgb = read_rgb(frame_file, dispose=SPENT_IMAGES)
    job = EngineJob(RENDER_LINK, endpoint, "stylize", {"preset": preset, "dtype": "uint8"}, [rgb],
                    timeout=timeout).start().run()
    result = job.reply.payloads[0]
    if frame is not None and temporal > 0:
        result = PREVIOUS.blend(frame, preset, rgb, result, temporal)
    out = stylised_path(frame_file)
    save_png(out, result, dispose=SPENT_IMAGES)
    return out


@bpy.app.handlers.persistent
def on_render_init(*_):
    PREVIOUS.clear()


@bpy.app.handlers.persistent
def on_render_end(*_):
    SPENT_IMAGES.remove_all()


@bpy.app.handlers.persistent
def on_render_write(scene, *_):
    settings = scene.mgan
    if not settings.stylise_render:
        return
    frame_file = bpy.path.abspath(scene.render.frame_path(frame=scene.frame_current))
    try:
        out = stylise_file(frame_file, settings.stylise_preset, addon_prefs().endpoint, settings.timeout,
                           frame=scene.frame_current, temporal=settings.stylise_temporal)
        print(f"MGAN: stylised frame {scene.frame_current} -> {out}")
    except (EngineError, OSError, RuntimeError) as exc:
        message = exc.message if isinstance(exc, EngineError) else str(exc)
        PREVIOUS.clear()  # the next frame must not blend with a frame from before the gap
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
        layout.prop(context.scene.mgan, "stylise_temporal")
        layout.label(text=f"Writes <frame>{SUFFIX}.png next to each rendered frame")
        layout.operator("mgan.refresh", icon="FILE_REFRESH")


HANDLERS = (("render_init", on_render_init), ("render_write", on_render_write),
            ("render_complete", on_render_end), ("render_cancel", on_render_end))


def register_handler() -> None:
    for kind, handler in HANDLERS:
        if handler not in getattr(bpy.app.handlers, kind):
            getattr(bpy.app.handlers, kind).append(handler)


def unregister_handler() -> None:
    for kind, handler in HANDLERS:
        while handler in getattr(bpy.app.handlers, kind):
            getattr(bpy.app.handlers, kind).remove(handler)
    PREVIOUS.clear()
    SPENT_IMAGES.remove_all()
    RENDER_LINK.close()
