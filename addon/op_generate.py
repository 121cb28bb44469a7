"""Generate: synthesize a texture with the engine into an image (and the active material)."""
from __future__ import annotations

import bpy

from .images import wire_texture, write_image
from .jobs import synthesize_fields
from .op_job import EngineJobOperator
from .properties import STATE
from .variants import texture_name


class GenerateTexture(EngineJobOperator):
    """Generate's request and result, shared with Keep (op_variants.py), which picks its own
    seed and name: a registered operator class cannot be subclassed (Blender then loses the
    parent's Python class), so both operators mix this in."""

    _preset, _seed = "", 0

    def texture_seed(self, context) -> int:
        return context.scene.mgan.seed

    def image_name_for(self, context) -> str:
        """The panel's image name; empty (the default), '<preset>_s<seed>', so a new seed is
        a new image instead of overwriting the last."""
        return context.scene.mgan.image_name or texture_name(self._preset, self._seed)

    def request(self, context):
        preset = self.chosen_preset(context)
        if preset is None:
            return None
        s = context.scene.mgan
        # what the image is named after: the panel may change while the engine works
        self._preset, self._seed = preset, self.texture_seed(context)
        fields = synthesize_fields(preset, s.width, s.height, self._seed, s.noise_scale, s.tileable)
        return fields, f"generating {s.width}x{s.height} '{preset}' seed {self._seed}"

    def finish(self, context, reply):
        settings = context.scene.mgan
        rgb = reply.payloads[0]
        image = write_image(self.image_name_for(context), rgb, settings.float_buffer)
        seconds = reply.header.get("seconds", 0)
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
        self.report_note(reply)
        return {"FINISHED"}


class MGAN_OT_generate(GenerateTexture, bpy.types.Operator):
    """Synthesize a seamless texture with the MGAN engine"""
    bl_idname = "mgan.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER", "UNDO"}


class MGAN_OT_fit_repeat(bpy.types.Operator):
    """Set the size to the one the engine named, which holds the preset's pattern repeats as they are"""
    bl_idname = "mgan.fit_repeat"
    bl_label = "Use the size that fits the repeat"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return STATE.fit is not None and not STATE.running

    def execute(self, context):
        s = context.scene.mgan
        s.width, s.height = STATE.fit
        STATE.note, STATE.fit = "", None
        self.report({"INFO"}, f"size {s.width}x{s.height}: Generate again")
        return {"FINISHED"}
