"""The preset part of the MGAN panel: a grid of thumbnails to pick from, the presets that
cannot be loaded (greyed, with the reason), and the button that frees engine memory."""
from .connection import LINK
from .preset_list import panel_lines


def draw_preset_picker(layout, settings) -> None:
    """The chosen preset's thumbnail, which opens the grid of all of them; its name below."""
    col = layout.column(align=True)
    col.template_icon_view(settings, "preset", show_labels=True, scale=6.0, scale_popup=5.0)
    col.prop(settings, "preset", text="")


def draw_broken_presets(layout) -> None:
    """Presets the engine found but cannot load, so they do not just vanish from the list."""
    if not LINK.broken:
        return
    box = layout.box()
    box.label(text=f"Cannot load {len(LINK.broken)} preset{'s' if len(LINK.broken) > 1 else ''}:", icon="ERROR")
    col = box.column(align=True)
    col.active = False  # greyed: nothing here can be picked
    for entry in LINK.broken:
        col.label(text=entry["name"], icon="CANCEL")
        for line in panel_lines(entry["reason"]):
            col.label(text=line)


def draw_release(layout) -> None:
    """Shown while connected: the engine keeps loaded presets warm until told otherwise."""
    if LINK.hello:
        layout.operator("mgan.release_memory", icon="TRASH")
