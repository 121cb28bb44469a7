"""The Variants settings (``scene.mgan.variants``), and what the Variants image shows, stored
with the scene so its Keep buttons still work after the .blend file is reopened."""
import bpy

from .variants import MAX_SEED


class MGAN_VariantSettings(bpy.types.PropertyGroup):
    count: bpy.props.IntProperty(name="Variants", default=4, min=2, max=8,
                                 description="How many seeds to show side by side, from the panel's seed on")
    size: bpy.props.IntProperty(name="Size", default=256, min=8, max=1024, subtype="PIXEL",
                                description="Longer side of each variant (same aspect ratio as the texture)")
    # what the Variants image shows (set by the Variants operator, read by the Keep buttons)
    preset: bpy.props.StringProperty(name="Shown preset", default="")
    first_seed: bpy.props.IntProperty(name="First shown seed", default=0, min=0, max=MAX_SEED)
    shown: bpy.props.IntProperty(name="Shown variants", default=0, min=0)
