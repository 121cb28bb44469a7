"""Generate material: the base colour and all four maps of one texture from the engine, as
a PBR material on the active object (made and assigned if it has none; ours updated in
place on a re-run). UNDO: Blender records the whole result as one undo step."""
from __future__ import annotations

import bpy

from .connection import protocol
from .images import write_image, write_map_image
from .jobs import map_settings_fields, reply_maps, resolved_map_settings, synthesize_fields
from .material import build_material, can_have_material, material_for
from .material_plan import BASE_COLOR, image_name
from .op_job import EngineJobOperator
from .properties import STATE, map_settings_values, show_map_settings


class MGAN_OT_generate_material(EngineJobOperator, bpy.types.Operator):
    """Synthesize a texture with height, normal, roughness and AO maps into a PBR material
    on the active object"""
    bl_idname = "mgan.generate_material"
    bl_label = "Generate material"
    bl_options = {"REGISTER", "UNDO"}

    _object_name, _preset, _seed = "", "", 0

    def request(self, context):
        preset = self.chosen_preset(context)
        if preset is None:
            return None
        obj = getattr(context, "object", None)
        if not can_have_material(obj):  # said now, before the engine spends time on it
            self.report({"ERROR"}, "select a mesh object to put the material on")
            return None
        s = context.scene.mgan
        # what the images are named after and where they go: the panel may change meanwhile
        self._object_name, self._preset, self._seed = obj.name, preset, s.seed
        settings = map_settings_fields(map_settings_values(s) if s.map_override else None)
        fields = synthesize_fields(preset, s.width, s.height, s.seed, s.noise_scale, s.tileable,
                                   maps=protocol.MAP_NAMES, map_settings=settings)
        return fields, f"generating material {s.width}x{s.height} '{preset}'"

    def finish(self, context, reply):
        s = context.scene.mgan
        preset, seed = self._preset, self._seed
        try:
            base, maps = reply_maps(reply.header, reply.payloads, protocol.MAP_NAMES)
        except ValueError as exc:
            return self.fail(str(exc))
        images = {BASE_COLOR: write_image(image_name(preset, seed, BASE_COLOR), base)}
        images.update({m: write_map_image(image_name(preset, seed, m), data) for m, data in maps.items()})
        if not s.map_override:
            show_map_settings(s, resolved_map_settings(reply.header))
        made = f"made the images {image_name(preset, seed, '*')} but no material"
        obj = bpy.data.objects.get(self._object_name)
        if obj is None:
            return self._warn(f"{made}: object '{self._object_name}' is gone")
        try:
            material = material_for(obj, preset)
            build_material(material, images)
        except ValueError as exc:
            return self._warn(f"{made}: {exc}")
        seconds = reply.header.get("seconds", 0)
        STATE.message = f"material '{material.name}': {base.shape[1]}x{base.shape[0]} in {seconds:.1f} s"
        self.report({"INFO"}, STATE.message)
        self.report_note(reply)
        return {"FINISHED"}

    def _warn(self, message: str) -> set[str]:
        # still FINISHED: the images are made and packed, and undo should take them back
        STATE.message = message
        self.report({"WARNING"}, message)
        return {"FINISHED"}
