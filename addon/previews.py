"""The presets' thumbnails as Blender previews (``bpy.utils.previews``), for the preset grid.

Refresh writes the engine's thumbnail PNGs into the extension's user folder (a temporary
folder when the add-on does not run as an extension) and loads them into a fresh preview
collection; the preset menu's items take their icon ids from it. Unregister frees it.
Headless Blender gives every preview the icon id 0 (it makes no icons), so there the menu
shows each kind's built-in icon."""
from __future__ import annotations

import tempfile
from pathlib import Path

import bpy
import bpy.utils.previews

from .preset_list import write_thumbnails

FOLDER = "thumbnails"


def thumbnail_folder() -> Path:
    try:
        return Path(bpy.utils.extension_path_user(__package__, path=FOLDER, create=True))
    except ValueError:  # not an extension: a legacy add-on or a source checkout
        return Path(tempfile.gettempdir()) / "mgan-textures" / FOLDER


class PresetPreviews:
    """One preview collection per refresh, keyed by preset name."""

    def __init__(self):
        self.collection = None

    def rebuild(self, presets: list[dict]) -> int:
        """Previews of the presets' thumbnails (``thumbnail``: PNG bytes or None); how many.
        Raises OSError if the files cannot be written (then there are none)."""
        self.free()  # before the files change under the old previews
        files = write_thumbnails(presets, thumbnail_folder())
        self.collection = bpy.utils.previews.new()
        for name, path in files.items():
            self.collection.load(name, str(path), "IMAGE")  # positional: 5.3 renamed the keywords
        return len(files)

    def icon_id(self, name: str) -> int:
        preview = self.collection.get(name) if self.collection is not None else None
        return preview.icon_id if preview is not None else 0

    def free(self) -> None:
        if self.collection is not None:
            bpy.utils.previews.remove(self.collection)
            self.collection = None


THUMBNAILS = PresetPreviews()
