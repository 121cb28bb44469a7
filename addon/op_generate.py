"""Generate: synthesize a texture with the engine into an image (and the active material).

Interactive Blender: a modal operator whose timer steps the request, so the UI never
freezes; progress and Cancel in the panel, Esc cancels. Background Blender (no event
loop, timers do not run): the same job, stepped in a blocking loop."""
from __future__ import annotations

import bpy

from . import engine_process
from .connection import LINK, QUICK_TIMEOUT, EngineError
from .images import wire_texture, write_image
from .jobs import STARTING_ENGINE_TIMEOUT, EngineJob, synthesize_fields
from .preferences import addon_prefs
from .properties import NO_PRESET, STATE

TIMER_SECONDS = 0.1


def _redraw(context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in ("IMAGE_EDITOR", "NODE_EDITOR"):
                area.tag_redraw()


class MGAN_OT_generate(bpy.types.Operator):
    """Synthesize a seamless texture with the MGAN engine"""
    bl_idname = "mgan.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    _job: EngineJob | None = None
    _timer = None

    @classmethod
    def poll(cls, context):
        return not STATE.running

    def _start(self, context) -> bool:
        settings = context.scene.mgan
        if settings.preset == NO_PRESET or not settings.preset:
            self.report({"ERROR"}, "no preset chosen: connect to the engine (Refresh) and pick one")
            return False
        prefs = addon_prefs(context)
        fields = synthesize_fields(settings.preset, settings.width, settings.height, settings.seed,
                                   settings.noise_scale, settings.tileable)
        hello_timeout = STARTING_ENGINE_TIMEOUT if engine_process.running() else QUICK_TIMEOUT
        try:
            self._job = EngineJob(LINK, prefs.endpoint, "synthesize", fields, hello_timeout=hello_timeout,
                                  timeout=settings.timeout).start()
        except EngineError as exc:
            self.report({"ERROR"}, exc.message)
            return False
        STATE.running, STATE.fraction, STATE.cancel_requested = True, 0.0, False
        STATE.message = f"generating {settings.width}x{settings.height} '{settings.preset}'"
        return True

    def _finish(self, context) -> set[str]:
        STATE.running = False
        settings = context.scene.mgan
        rgb = self._job.reply.payloads[0]
        image = write_image(settings.image_name, rgb, settings.float_buffer)
        seconds = self._job.reply.header.get("seconds", 0)
        STATE.message = f"{image.name}: {rgb.shape[1]}x{rgb.shape[0]} in {seconds:.1f} s"
        if settings.add_to_material:
            obj = context.object if hasattr(context, "object") else None
            material = obj.active_material if obj is not None else None
            if material is None:
                self.report({"WARNING"}, f"made image '{image.name}'; no active material to add it to")
            else:
                try:
                    wire_texture(material, image)
                except ValueError as exc:
                    self.report({"WARNING"}, f"made image '{image.name}'; {exc}")
        screen = getattr(context, "screen", None)  # None in background Blender
        for area in screen.areas if screen is not None else ():
            if area.type == "IMAGE_EDITOR" and area.spaces.active.image is None:
                area.spaces.active.image = image  # show the result where the user works
        self.report({"INFO"}, STATE.message)
        return {"FINISHED"}

    def _fail(self, message: str) -> set[str]:
        STATE.running, STATE.message = False, message
        self.report({"ERROR"}, message)
        return {"CANCELLED"}

    # background / scripted: blocking
    def execute(self, context):
        if not self._start(context):
            return {"CANCELLED"}
        try:
            self._job.run()
        except EngineError as exc:
            return self._fail(exc.message)
        return self._finish(context)

    # interactive: modal + timer
    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_SECONDS, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" or STATE.cancel_requested:
            self._stop_timer(context)
            self._job.cancel()
            STATE.running, STATE.message = False, "cancelled"
            self.report({"WARNING"}, "texture generation cancelled")
            _redraw(context)
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            done = self._job.step()
        except EngineError as exc:
            self._stop_timer(context)
            _redraw(context)
            return self._fail(exc.message)
        STATE.fraction = self._job.fraction
        _redraw(context)
        if not done:
            return {"RUNNING_MODAL"}
        self._stop_timer(context)
        return self._finish(context)

    def cancel(self, context):
        # Blender ends modal operators itself (a file is opened, the window closes)
        self._stop_timer(context)
        if self._job is not None:
            self._job.cancel()
        STATE.running = False

    def _stop_timer(self, context) -> None:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
