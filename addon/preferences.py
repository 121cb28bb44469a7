"""Add-on preferences: where the engine is, and whether Blender starts it."""
from __future__ import annotations

import sys

import bpy

from . import engine_process
from .connection import protocol


def addon_prefs(context=None) -> "MGAN_AddonPreferences":
    context = context or bpy.context
    return context.preferences.addons[__package__].preferences


def start_engine_if_wanted(prefs) -> None:
    if prefs.auto_start and prefs.python_executable:
        engine_process.start(prefs.python_executable, prefs.endpoint, prefs.project_folder)


def _auto_start_changed(self, context):
    if self.auto_start:
        try:
            start_engine_if_wanted(self)
        except (OSError, RuntimeError) as exc:
            print(f"MGAN: could not start the engine: {exc}")
    else:
        engine_process.stop()


class MGAN_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    endpoint: bpy.props.StringProperty(
        name="Engine address", default=protocol.DEFAULT_ENDPOINT,
        description="ZeroMQ address of the MGAN engine (loopback TCP or ipc://)")
    python_executable: bpy.props.StringProperty(
        name="Engine Python", subtype="FILE_PATH", default="",
        description="Python interpreter that has the MGAN engine and torch installed "
                    f"(not Blender's own, {sys.executable})")
    project_folder: bpy.props.StringProperty(
        name="Engine folder", subtype="DIR_PATH", default="",
        description="Folder holding the engine package, if it is not installed in that Python")
    auto_start: bpy.props.BoolProperty(
        name="Start the engine with Blender", default=False, update=_auto_start_changed,
        description="Run `python -m engine.cli engine` while the add-on is enabled; stop it on quit")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "endpoint")
        layout.prop(self, "python_executable")
        layout.prop(self, "project_folder")
        layout.prop(self, "auto_start")
        row = layout.row()
        row.operator("mgan.start_engine")
        row.operator("mgan.stop_engine")
