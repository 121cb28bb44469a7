"""How an operator runs one engine request, shared by Generate and Generate material.

Interactive Blender: a modal operator whose timer steps the request, so the UI never
freezes; progress and Cancel in the panel, Esc cancels. Background Blender (no event
loop, timers do not run): the same job, stepped in a blocking loop.

A mixin rather than a helper object because Blender calls ``execute``/``invoke``/``modal``/
``cancel`` on the operator class itself: this keeps the stepping in one place and leaves
each operator two hooks, what to ask (``request``) and what to do with the answer
(``finish``)."""
from __future__ import annotations

import bpy

from . import engine_process
from .connection import LINK, QUICK_TIMEOUT, EngineError
from .jobs import STARTING_ENGINE_TIMEOUT, EngineJob
from .preferences import addon_prefs
from .properties import NO_PRESET, STATE
from .screens import PANEL_EDITORS, redraw

TIMER_SECONDS = 0.1


class EngineJobOperator:
    """Mixed into a ``bpy.types.Operator``; the subclass supplies ``request`` and ``finish``."""

    _job: EngineJob | None = None
    _timer = None
    job_op = "synthesize"

    @classmethod
    def poll(cls, context):
        return not STATE.running

    # ---- the two hooks -----------------------------------------------------------------
    def request(self, context) -> tuple[dict, str] | None:
        """(wire fields, progress message), or None after reporting why not."""
        raise NotImplementedError

    def finish(self, context, reply) -> set[str]:
        """Write the reply into Blender data (main thread); report; return the result set."""
        raise NotImplementedError

    # ---- shared checks -----------------------------------------------------------------
    def chosen_preset(self, context) -> str | None:
        preset = context.scene.mgan.preset
        if preset == NO_PRESET or not preset:
            self.report({"ERROR"}, "no preset chosen: connect to the engine (Refresh) and pick one")
            return None
        return preset

    # ---- stepping ----------------------------------------------------------------------
    def make_job(self, endpoint: str, fields, hello_timeout: float, timeout: float):
        """The job that ``request``'s fields become: one EngineJob; Variants (several
        requests) makes a JobBatch with the same interface."""
        return EngineJob(LINK, endpoint, self.job_op, fields, hello_timeout=hello_timeout, timeout=timeout)

    def _start(self, context) -> bool:
        asked = self.request(context)
        if asked is None:
            return False
        fields, message = asked
        hello_timeout = STARTING_ENGINE_TIMEOUT if engine_process.running() else QUICK_TIMEOUT
        try:
            self._job = self.make_job(addon_prefs(context).endpoint, fields, hello_timeout,
                                      context.scene.mgan.timeout).start()
        except EngineError as exc:
            self.report({"ERROR"}, exc.message)
            return False
        STATE.running, STATE.fraction, STATE.cancel_requested = True, 0.0, False
        STATE.message, STATE.note, STATE.fit = message, "", None
        return True

    def _done(self, context) -> set[str]:
        STATE.running = False
        return self.finish(context, self._job.reply)

    def report_note(self, reply) -> None:
        """The engine's note on a texture (a pattern's repeat stretched to fit the size), kept
        for the panel and reported as a warning."""
        STATE.note = reply.header.get("note", "")
        fit = reply.header.get("fit")
        STATE.fit = ((fit["width"], fit["height"]) if isinstance(fit, dict)
                     and all(isinstance(fit.get(k), int) and fit[k] > 0 for k in ("width", "height")) else None)
        if STATE.note:
            self.report({"WARNING"}, STATE.note)

    def fail(self, message: str) -> set[str]:
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
            return self.fail(exc.message)
        return self._done(context)

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
            self.report({"WARNING"}, f"{self.bl_label} cancelled")
            redraw(*PANEL_EDITORS)
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            done = self._job.step()
        except EngineError as exc:
            self._stop_timer(context)
            redraw(*PANEL_EDITORS)
            return self.fail(exc.message)
        STATE.fraction = self._job.fraction
        redraw(*PANEL_EDITORS)
        if not done:
            return {"RUNNING_MODAL"}
        self._stop_timer(context)
        return self._done(context)

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
