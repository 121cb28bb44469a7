"""The "Variants" sub-panel: how many seeds and how big, the Variants button, and one Keep
button per variant shown, left to right as in the Variants image."""
import bpy

from .variants import variant_seeds


def draw_variants(layout, context) -> None:
    s = context.scene.mgan
    v = s.variants
    row = layout.row(align=True)
    row.prop(v, "count")
    row.prop(v, "size")
    # greyed while a job runs: the operators' poll
    layout.operator("mgan.variants", text=f"Variants from seed {s.seed}", icon="IMGDISPLAY")
    if v.shown and v.preset:
        layout.label(text=f"Keep one of '{v.preset}' at {s.width}x{s.height}:")
        row = layout.row(align=True)
        for seed in variant_seeds(v.first_seed, v.shown):
            op = row.operator("mgan.keep_variant", text=str(seed))
            op.seed, op.preset = seed, v.preset


class VariantsPanel:
    bl_label = "Variants"
    bl_region_type = "UI"
    bl_category = "MGAN"

    def draw(self, context):
        draw_variants(self.layout, context)


class MGAN_PT_variants_image_editor(VariantsPanel, bpy.types.Panel):
    bl_space_type = "IMAGE_EDITOR"
    bl_parent_id = "MGAN_PT_image_editor"


class MGAN_PT_variants_shader_editor(VariantsPanel, bpy.types.Panel):
    bl_space_type = "NODE_EDITOR"
    bl_parent_id = "MGAN_PT_shader_editor"

    @classmethod
    def poll(cls, context):
        return getattr(context.space_data, "tree_type", "") == "ShaderNodeTree"
