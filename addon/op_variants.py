"""Variants: N seeds of the panel's preset, small, side by side in one image; Keep: the
chosen seed at the panel's full size, as its own image '<preset>_s<seed>' (addon/variants.py
says why one image, and what a variant is)."""
from __future__ import annotations

import bpy

from .connection import LINK
from .images import write_image
from .jobs import EngineJob, synthesize_fields
from .op_generate import GenerateTexture
from .op_job import EngineJobOperator
from .properties import STATE
from .variants import MAX_SEED, VARIANTS_IMAGE, JobBatch, row_of, texture_name, variant_seeds, variant_shape


def _show_in_image_editor(context, image, replacing=None, everywhere=True) -> None:
    """Show ``image`` in the Image Editors that show nothing or ``replacing``; with
    ``everywhere=False``, in the first Image Editor whatever it shows."""
    screen = getattr(context, "screen", None)  # None in background Blender
    for area in screen.areas if screen is not None else ():
        if area.type != "IMAGE_EDITOR":
            continue
        if not everywhere:
            area.spaces.active.image = image
            return
        if area.spaces.active.image in (None, replacing):
            area.spaces.active.image = image


class MGAN_OT_variants(EngineJobOperator, bpy.types.Operator):
    """Synthesize several seeds of the preset, small and side by side, to pick one to keep"""
    bl_idname = "mgan.variants"
    bl_label = "Variants"
    bl_options = {"REGISTER", "UNDO"}

    _preset, _seeds = "", ()

    def request(self, context):
        preset = self.chosen_preset(context)
        if preset is None:
            return None
        s = context.scene.mgan
        width, height = variant_shape(s.width, s.height, s.variants.size)
        self._preset, self._seeds = preset, variant_seeds(s.seed, s.variants.count)
        fields = [synthesize_fields(preset, width, height, seed, s.noise_scale, s.tileable) for seed in self._seeds]
        return fields, f"{len(fields)} variants of '{preset}', seeds {self._seeds[0]}-{self._seeds[-1]}"

    def make_job(self, endpoint, fields, hello_timeout, timeout):
        return JobBatch([EngineJob(LINK, endpoint, self.job_op, f, hello_timeout=hello_timeout, timeout=timeout)
                         for f in fields])

    def finish(self, context, reply):
        try:
            row = row_of([r.payloads[0] if r.payloads else None for r in reply])
        except (ValueError, AttributeError) as exc:
            return self.fail(f"the engine's variants cannot be shown: {exc}")
        image = write_image(VARIANTS_IMAGE, row)
        v = context.scene.mgan.variants
        v.preset, v.first_seed, v.shown = self._preset, self._seeds[0], len(self._seeds)
        _show_in_image_editor(context, image, everywhere=False)
        STATE.message = f"'{self._preset}' seeds {self._seeds[0]}-{self._seeds[-1]}, left to right: Keep one"
        self.report({"INFO"}, STATE.message)
        return {"FINISHED"}


class MGAN_OT_keep_variant(GenerateTexture, bpy.types.Operator):
    """Synthesize this variant at the panel's full size, as its own image named after its preset and seed"""
    bl_idname = "mgan.keep_variant"
    bl_label = "Keep variant"
    bl_options = {"REGISTER", "UNDO"}

    seed: bpy.props.IntProperty(name="Seed", default=0, min=0, max=MAX_SEED)
    preset: bpy.props.StringProperty(name="Preset", default="", options={"SKIP_SAVE"},
                                     description="Empty: the preset the variants show")

    def chosen_preset(self, context):
        preset = self.preset or context.scene.mgan.variants.preset
        return preset or super().chosen_preset(context)

    def texture_seed(self, context) -> int:
        context.scene.mgan.seed = self.seed  # the panel now says which texture this is
        return self.seed

    def image_name_for(self, context) -> str:
        return texture_name(self._preset, self._seed)  # always its own image

    def finish(self, context, reply):
        result = super().finish(context, reply)
        kept = bpy.data.images.get(self.image_name_for(context))
        if kept is not None:  # show it where the variants were
            _show_in_image_editor(context, kept, replacing=bpy.data.images.get(VARIANTS_IMAGE))
        return result
