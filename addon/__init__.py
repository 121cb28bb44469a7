"""MGAN Textures: seamless neural textures from a local MGAN engine (see README)."""
import atexit

import bpy

from . import engine_process, live_preview_timer
from .connection import LINK
from .op_cancel import MGAN_OT_cancel
from .op_engine import MGAN_OT_start_engine, MGAN_OT_stop_engine
from .op_generate import MGAN_OT_fit_repeat, MGAN_OT_generate
from .op_generate_material import MGAN_OT_generate_material
from .op_refresh import MGAN_OT_refresh
from .op_release import MGAN_OT_release_memory
from .op_train import FOLLOWING, MGAN_OT_cancel_training, MGAN_OT_train
from .op_variants import MGAN_OT_keep_variant, MGAN_OT_variants
from .panels import MGAN_PT_image_editor, MGAN_PT_shader_editor, MGAN_PT_train
from .panels_variants import MGAN_PT_variants_image_editor, MGAN_PT_variants_shader_editor
from .preferences import MGAN_AddonPreferences, start_engine_if_wanted
from .previews import THUMBNAILS
from .properties import MGAN_Settings
from .stylise_render import MGAN_PT_render_stylise, register_handler, unregister_handler
from .variant_settings import MGAN_VariantSettings

classes = (
    MGAN_AddonPreferences,
    MGAN_VariantSettings,  # before MGAN_Settings, which points to it
    MGAN_Settings,
    MGAN_OT_refresh,
    MGAN_OT_generate,
    MGAN_OT_generate_material,
    MGAN_OT_fit_repeat,
    MGAN_OT_cancel,
    MGAN_OT_train,
    MGAN_OT_cancel_training,
    MGAN_OT_start_engine,
    MGAN_OT_stop_engine,
    MGAN_OT_variants,
    MGAN_OT_keep_variant,
    MGAN_OT_release_memory,
    MGAN_PT_image_editor,
    MGAN_PT_shader_editor,
    MGAN_PT_variants_image_editor,  # after their parents, above Train Preset
    MGAN_PT_variants_shader_editor,
    MGAN_PT_train,
    MGAN_PT_render_stylise,
)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.mgan = bpy.props.PointerProperty(type=MGAN_Settings)
    register_handler()
    live_preview_timer.register()
    atexit.register(engine_process.stop)  # Blender quitting stops the engine we started
    try:
        start_engine_if_wanted(bpy.context.preferences.addons[__package__].preferences)
    except (OSError, RuntimeError, KeyError) as exc:
        print(f"MGAN: could not start the engine: {exc}")


def unregister():
    atexit.unregister(engine_process.stop)
    engine_process.stop()
    unregister_handler()
    live_preview_timer.unregister()
    FOLLOWING.forget()
    THUMBNAILS.free()
    LINK.close()
    del bpy.types.Scene.mgan
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
