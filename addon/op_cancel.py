"""Cancel: stop the texture being generated."""
import bpy

from .properties import STATE


class MGAN_OT_cancel(bpy.types.Operator):
    """Cancel the texture being generated"""
    bl_idname = "mgan.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return STATE.running

    def execute(self, context):
        STATE.cancel_requested = True  # the running operator's next timer tick stops the job
        return {"FINISHED"}
