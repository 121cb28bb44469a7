"""Start / stop the engine process from Blender."""
import bpy

from . import engine_process
from .connection import LINK
from .preferences import addon_prefs


class MGAN_OT_start_engine(bpy.types.Operator):
    """Start `python -m engine.cli engine` with the Python set in the preferences"""
    bl_idname = "mgan.start_engine"
    bl_label = "Start engine"

    def execute(self, context):
        prefs = addon_prefs(context)
        try:
            engine_process.start(prefs.python_executable, prefs.endpoint, prefs.project_folder)
        except (OSError, RuntimeError) as exc:
            self.report({"ERROR"}, f"could not start the engine: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, "engine starting (it loads torch first); press Refresh in a moment")
        return {"FINISHED"}


class MGAN_OT_stop_engine(bpy.types.Operator):
    """Stop the engine this add-on started"""
    bl_idname = "mgan.stop_engine"
    bl_label = "Stop engine"

    @classmethod
    def poll(cls, context):
        return engine_process.running()

    def execute(self, context):
        engine_process.stop()
        LINK.hello = None
        return {"FINISHED"}
