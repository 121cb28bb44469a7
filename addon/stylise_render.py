"""Stylise rendered frames: after Blender writes each frame, send it through a style
preset and write ``<frame file>_mgan.png`` beside it (the frame number is in the name); a
still rendered with F12 (Render Image), which writes no file, goes from the Render Result
into the image "Render Result MGAN", shown in the render window.

It starts in the ``render_write`` handler, when the frame's file exists. In a background
render (`blender -b ... -a`) the handler runs on the main thread and does it all, blocking
(nothing else is waiting). In an interactive render (Render Animation, Ctrl F12) the
handlers run on a render thread and must not touch Blender data: they queue what happened
(render_queue.py), and a timer on the main thread reads each frame, steps its engine
request without blocking the UI, and writes the result, in order. It has its own engine
link, so it never shares a socket with the panel's operators.

A still is told from an animation by the job's handlers (render_queue.RenderJob): it
rendered a frame and wrote none. Its Render Result is read (images.render_result_rgba) on the
main thread once the render job has ended, by the timer as for frames, or at render_complete
in a background render; `blender -b -f N` writes its frame, so it takes the frame path.

With "Temporal smoothing" above 0, consecutive frames of one render job go through the
engine's motion-gated filter (engine/sequence.py, the CLI's ``--temporal``): where the
rendered pixel barely changed since the previous frame, part of the previous stylised frame
is kept. The memory of the previous frame is dropped when a new render job starts.

A render over a transparent film (RGBA frames, or an RGBA Render Result) keeps its alpha:
the colours are stylised, the alpha goes through byte for byte, so it still composites.

The frame's file is read, and the stylised one written, through temporary Blender images;
they are removed only when the render job ends (see images.LaterRemoval)."""
from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from .connection import EngineError, Link, sequence
from .images import LaterRemoval, read_rgba, render_result_rgba, save_png, show_instead_of_render, write_image
from .jobs import EngineJob
from .preferences import addon_prefs
from .render_queue import END, FRAME, INIT, STILL, RenderEvent, RenderEvents, RenderJob, runs_inline

RENDER_LINK = Link()
SUFFIX = "_mgan"
STILL_IMAGE = "Render Result MGAN"
EVENTS = RenderEvents()
JOB = RenderJob()  # what the handlers saw of the render job now running
# The main thread's timer: quick while frames wait, slow while nothing renders.
BUSY_TICK, IDLE_TICK = 0.05, 0.25


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


class FrameWork:
    """One frame's stylisation: the frame read, its engine request, the result written.
    ``start`` and ``finish`` touch Blender data: main thread only."""

    def __init__(self, frame_file: str, frame: int | None, preset: str, temporal: float):
        self.frame_file, self.frame, self.preset, self.temporal = frame_file, frame, preset, temporal
        self.rgb = self.alpha = None
        self.job: EngineJob | None = None

    def start(self, endpoint: str, timeout: float) -> "FrameWork":
        self.rgb, self.alpha = read_rgba(self.frame_file, dispose=SPENT_IMAGES)
        self.job = EngineJob(RENDER_LINK, endpoint, "stylize", {"preset": self.preset, "dtype": "uint8"},
                             [self.rgb], timeout=timeout).start()
        return self

    def finish(self) -> Path:
        result = self.job.reply.payloads[0]
        if self.frame is not None and self.temporal > 0:
            result = PREVIOUS.blend(self.frame, self.preset, self.rgb, result, self.temporal)
        out = stylised_path(self.frame_file)
        save_png(out, result, dispose=SPENT_IMAGES, alpha=self.alpha)   # a transparent film stays transparent
        print(f"MGAN: stylised frame {self.frame} -> {out}")
        return out

    def failed(self, exc: Exception) -> None:
        PREVIOUS.clear()  # the next frame must not blend with a frame from before the gap
        print(f"MGAN: could not stylise frame {self.frame}: {_message(exc)}")


class StillWork:
    """A still's stylisation (F12: no frame file): the Render Result read, its engine request,
    the result written into image STILL_IMAGE (a byte image tagged sRGB, as images.write_image
    does for textures) and shown where the render is. ``start`` and ``finish`` touch Blender
    data: main thread only, with no render job running."""

    def __init__(self, scene: str, preset: str):
        self.scene, self.preset = scene, preset
        self.alpha = None
        self.job: EngineJob | None = None

    def start(self, endpoint: str, timeout: float) -> "StillWork":
        scene = bpy.data.scenes.get(self.scene)
        if scene is None:
            raise RuntimeError(f"scene '{self.scene}' is gone")
        rgb, self.alpha = render_result_rgba(scene)
        self.job = EngineJob(RENDER_LINK, endpoint, "stylize", {"preset": self.preset, "dtype": "uint8"},
                             [rgb], timeout=timeout).start()
        return self

    def finish(self) -> bpy.types.Image:
        image = write_image(STILL_IMAGE, self.job.reply.payloads[0], alpha=self.alpha)
        where = "shown in the render window" if show_instead_of_render(image) else "in the Image Editor's list"
        print(f"MGAN: stylised the rendered still -> image '{image.name}' ({where})")
        return image

    def failed(self, exc: Exception) -> None:
        print(f"MGAN: could not stylise the rendered still: {_message(exc)}")


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, EngineError) else str(exc)


class QueuedStylist:
    """The main thread's side of an interactive render: takes the handlers' events in
    order and works on one frame at a time, stepping its engine request without blocking."""

    def __init__(self):
        self.work: FrameWork | StillWork | None = None
        self.still: RenderEvent | None = None  # a STILL taken, waiting for its render job to end

    def tick(self) -> float:
        """One step (the timer; a test calls it directly); the seconds until the next."""
        if self.work is not None:
            self._step()
            return BUSY_TICK
        if self.still is not None:
            self._start_still()
            return BUSY_TICK
        event = EVENTS.take()
        if event is None:
            return IDLE_TICK
        if event.kind == INIT:
            PREVIOUS.clear()
        elif event.kind == END:
            if EVENTS.may_remove_images():  # else the next job's END removes them
                SPENT_IMAGES.remove_all()
        elif event.kind == FRAME:
            self._start(event)
        elif event.kind == STILL:
            self.still = event
            self._start_still()
        return BUSY_TICK

    @property
    def idle(self) -> bool:
        return self.work is None and self.still is None and len(EVENTS) == 0

    def _start_still(self) -> None:
        """The still's work, once its render job has ended: render_complete comes from the
        render thread before the job lets go of the result. Dropped if another render has
        started since: the Render Result is that one's now."""
        if EVENTS.newer_job_queued():
            print("MGAN: a new render started before the still was stylised; skipped it")
            self.still = None
        elif not bpy.app.is_job_running("RENDER"):
            event, self.still = self.still, None
            self._start(event)

    def _start(self, event: RenderEvent) -> None:
        scene = bpy.data.scenes.get(event.scene)
        settings = getattr(scene, "mgan", None)
        if settings is None or not settings.stylise_render:
            return
        if event.kind == STILL:
            work = StillWork(scene.name, settings.stylise_preset)
        else:
            work = FrameWork(event.path, event.frame, settings.stylise_preset, settings.stylise_temporal)
        try:
            self.work = work.start(addon_prefs().endpoint, settings.timeout)
        except (EngineError, OSError, RuntimeError) as exc:
            work.failed(exc)

    def _step(self) -> None:
        work = self.work
        try:
            if not work.job.step():
                return
            work.finish()
        except (EngineError, OSError, RuntimeError) as exc:
            work.failed(exc)
        self.work = None

    def stop(self) -> None:
        if self.work is not None and self.work.job is not None:
            self.work.job.cancel()
        self.work = self.still = None
        EVENTS.clear()


STYLIST = QueuedStylist()
_tick = STYLIST.tick  # one bound method: the timer registered is the one unregistered


def handlers_work_inline() -> bool:
    """Whether the render handlers do the work themselves (see render_queue.runs_inline)."""
    return runs_inline(bpy.app.background)


# The handlers. Queued, each reads only the scene's name and settings and the frame's number
# and path, and counts frames (JOB): nothing is created, changed or removed off the main thread.
@bpy.app.handlers.persistent
def on_render_init(*_):
    JOB.begin()
    if handlers_work_inline():
        PREVIOUS.clear()
    else:
        EVENTS.put(RenderEvent(INIT))


@bpy.app.handlers.persistent
def on_render_post(*_):
    JOB.frame_rendered()


@bpy.app.handlers.persistent
def on_render_complete(scene, *_):
    still = JOB.still and scene.mgan.stylise_render
    if not handlers_work_inline():
        EVENTS.put(RenderEvent(END))
        if still:  # after END: the job is over when the main thread takes it
            EVENTS.put(RenderEvent(STILL, scene.name))
        return
    if still:  # a background render: the main thread, and the result is complete
        work = StillWork(scene.name, scene.mgan.stylise_preset)
        try:
            work.start(addon_prefs().endpoint, scene.mgan.timeout).job.run()  # blocking: see the module
            work.finish()
        except (EngineError, OSError, RuntimeError) as exc:
            work.failed(exc)
    SPENT_IMAGES.remove_all()


@bpy.app.handlers.persistent
def on_render_cancel(*_):
    if handlers_work_inline():
        SPENT_IMAGES.remove_all()
    else:
        EVENTS.put(RenderEvent(END))


@bpy.app.handlers.persistent
def on_render_write(scene, *_):
    JOB.frame_written()
    settings = scene.mgan
    if not settings.stylise_render:
        return
    frame = scene.frame_current
    frame_file = bpy.path.abspath(scene.render.frame_path(frame=frame))
    if not handlers_work_inline():
        EVENTS.put(RenderEvent(FRAME, scene.name, frame, frame_file))
        return
    work = FrameWork(frame_file, frame, settings.stylise_preset, settings.stylise_temporal)
    try:
        work.start(addon_prefs().endpoint, settings.timeout).job.run()  # blocking: see the module
        work.finish()
    except (EngineError, OSError, RuntimeError) as exc:
        work.failed(exc)


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
        layout.label(text=f"A still (F12) goes to the image '{STILL_IMAGE}'")
        layout.operator("mgan.refresh", icon="FILE_REFRESH")


HANDLERS = (("render_init", on_render_init), ("render_post", on_render_post), ("render_write", on_render_write),
            ("render_complete", on_render_complete), ("render_cancel", on_render_cancel))


def register_handler() -> None:
    for kind, handler in HANDLERS:
        if handler not in getattr(bpy.app.handlers, kind):
            getattr(bpy.app.handlers, kind).append(handler)
    # Registered here, on the main thread: a render thread must not register timers either.
    if not bpy.app.background and not bpy.app.timers.is_registered(_tick):
        bpy.app.timers.register(_tick, first_interval=IDLE_TICK, persistent=True)


def unregister_handler() -> None:
    for kind, handler in HANDLERS:
        while handler in getattr(bpy.app.handlers, kind):
            getattr(bpy.app.handlers, kind).remove(handler)
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    STYLIST.stop()
    PREVIOUS.clear()
    SPENT_IMAGES.remove_all()
    RENDER_LINK.close()
