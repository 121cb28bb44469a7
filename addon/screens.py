"""The editors of every open window: where the add-on's results and panels show (main
thread only)."""
from __future__ import annotations

import bpy

PANEL_EDITORS = ("IMAGE_EDITOR", "NODE_EDITOR")  # where the MGAN sidebar panels live


def areas(*types: str):
    """The areas of these types in every window (none in background Blender)."""
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in types:
                yield area


def redraw(*types: str) -> None:
    """Ask the areas of these types to redraw (progress, a new image)."""
    for area in areas(*types):
        area.tag_redraw()
