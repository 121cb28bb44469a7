"""Refresh: ask the engine for its status and preset list (and rebuild the thumbnails)."""
import bpy

from .connection import LINK
from .preferences import addon_prefs
from .previews import THUMBNAILS


class MGAN_OT_refresh(bpy.types.Operator):
    """Connect to the engine: device, version and presets"""
    bl_idname = "mgan.refresh"
    bl_label = "Refresh"

    def execute(self, context):
        if not LINK.refresh(addon_prefs(context).endpoint):
            self.report({"ERROR"}, LINK.last_error)
            return {"CANCELLED"}
        settings = context.scene.mgan
        names = [p["name"] for p in LINK.presets]
        if names and settings.preset not in names:
            settings.preset = names[0]
        try:
            THUMBNAILS.rebuild(LINK.presets)
        except OSError as exc:
            self.report({"WARNING"}, f"the presets' thumbnails cannot be shown: {exc}")
        if LINK.broken:
            self.report({"WARNING"}, f"cannot load preset(s) {', '.join(b['name'] for b in LINK.broken)}: "
                                     "the MGAN panel says why")
        return {"FINISHED"}
