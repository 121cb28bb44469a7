"""Free engine memory: the engine drops its loaded presets (and, on a GPU, its cached blocks)
and keeps running. A quick question (the IO thread answers it at once, even mid-job), asked
with the short deadline, so an engine that is down is reported in seconds."""
import bpy

from .connection import LINK, QUICK_TIMEOUT, EngineError
from .preferences import addon_prefs
from .preset_list import release_summary
from .properties import STATE


class MGAN_OT_release_memory(bpy.types.Operator):
    """Free the engine's memory without stopping it: its loaded presets (and the GPU's cached memory).
    The next texture loads its preset again"""
    bl_idname = "mgan.release_memory"
    bl_label = "Free engine memory"

    def execute(self, context):
        try:
            reply = LINK.client(addon_prefs(context).endpoint).call("release", timeout=QUICK_TIMEOUT)
        except EngineError as exc:
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        summary = release_summary(reply.header)
        if not STATE.running:  # while a job runs, the message is its progress text
            STATE.message = summary
        self.report({"INFO"}, summary)
        return {"FINISHED"}
