"""The Blender side of the live preview (live_preview.py): the timer that steps it, the
preview image, the Image Editors that show it repeated, the panel's rows.

The timer runs while the scene's "Live preview" is on. It reads the settings at every
tick rather than being told by property update callbacks: that sees every way a setting
can change (the panel, a script, undo, a driver) and leaves the properties' definitions
alone. Everything here runs on the main thread (a timer, an update callback, a draw)."""
from __future__ import annotations

import bpy

from . import engine_process
from .connection import QUICK_TIMEOUT, Link
from .jobs import STARTING_ENGINE_TIMEOUT, EngineJob
from .live_preview import (BUSY_TICK, IDLE_TICK, IMAGE_NAME, LivePreview, PreviewRequest, editors_to_show,
                           preview_request)
from .pixels import SRGB, engine_to_blender
from .preferences import addon_prefs
from .preset_list import NO_PRESET
from .screens import PANEL_EDITORS, areas, redraw

# Its own link: a preview's deadline or cancel never touches the socket a Generate waits on.
PREVIEW_LINK = Link()


def _start(request: PreviewRequest) -> EngineJob:
    # An engine this add-on just spawned imports torch before it answers hello.
    hello_timeout = STARTING_ENGINE_TIMEOUT if engine_process.running() else QUICK_TIMEOUT
    return EngineJob(PREVIEW_LINK, addon_prefs().endpoint, "synthesize", request.fields(),
                     hello_timeout=hello_timeout, timeout=bpy.context.scene.mgan.timeout).start()


PREVIEW = LivePreview(_start)


def settings_request(settings) -> PreviewRequest | None:
    return preview_request(settings.preset, settings.width, settings.height, settings.seed,
                           settings.noise_scale, settings.tileable, NO_PRESET)


def write_preview(rgb) -> bpy.types.Image:
    """The preview image, made or resized, holding ``rgb`` (sRGB bytes). Not packed: it is
    remade whenever the settings change, and a saved file need not carry it."""
    h, w = rgb.shape[:2]
    image = preview_image(w, h)
    if tuple(image.size) != (w, h):
        # the generated size, not Image.scale: a buffer Blender frees and remakes keeps it
        image.generated_width, image.generated_height = w, h
    image.pixels.foreach_set(engine_to_blender(rgb, linear=False))
    image.update()
    return image


def preview_image(width: int, height: int) -> bpy.types.Image:
    """The preview image; made (``width`` x ``height``, sRGB bytes) if there is none."""
    image = bpy.data.images.get(IMAGE_NAME)
    if image is None:
        image = bpy.data.images.new(IMAGE_NAME, width, height, alpha=False)
        image.colorspace_settings.name = SRGB
    return image


def show_preview(image: bpy.types.Image) -> None:
    """Image Editors showing nothing (or the preview) show it repeated, so its seams (or
    their absence) are what the user sees."""
    editors = list(areas("IMAGE_EDITOR"))
    for space in editors_to_show([a.spaces.active for a in editors], image):
        space.image, space.show_repeat = image, True
    for area in editors:
        area.tag_redraw()


def tick() -> float | None:
    """The timer: want the current settings, step once, write a preview that came."""
    settings = getattr(bpy.context.scene, "mgan", None)
    if settings is None or not settings.live_preview:  # turned off, or a scene without it shown
        PREVIEW.stop()
        return None
    PREVIEW.want(settings_request(settings))
    before = (PREVIEW.error, PREVIEW.busy)
    landed = PREVIEW.step()
    if landed is not None:
        try:
            show_preview(write_preview(landed.rgb))
        except (RuntimeError, TypeError, ValueError) as exc:  # e.g. a user's own image of that name
            PREVIEW.error = f"cannot write image '{IMAGE_NAME}': {exc}"
    if landed is not None or (PREVIEW.error, PREVIEW.busy) != before:
        redraw(*PANEL_EDITORS)  # the panel's line says what the preview shows, or why not
    return BUSY_TICK if PREVIEW.busy else IDLE_TICK


def start_timer() -> None:
    if not bpy.app.timers.is_registered(tick):
        # persistent: a file load must not drop it behind load_post's back (tick stops itself)
        bpy.app.timers.register(tick, first_interval=0.0, persistent=True)


def stop_timer() -> None:
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    PREVIEW.stop()


def live_preview_toggled(settings, context) -> None:
    """The "Live preview" property's update: start or stop the timer. Turned on from an
    Image Editor, that editor shows the preview (another image it showed is kept in the file)."""
    if not settings.live_preview:
        stop_timer()
        return
    space = getattr(context, "space_data", None)
    if space is not None and space.type == "IMAGE_EDITOR":
        space.image, space.show_repeat = preview_image(8, 8), True
    start_timer()


@bpy.app.handlers.persistent
def _on_load_post(*_):
    # The new file's scene decides: a file saved with the preview on opens with it on, and
    # what the old file's preview showed says nothing about the new one's image.
    stop_timer()
    settings = getattr(bpy.context.scene, "mgan", None)
    if settings is not None and settings.live_preview:
        start_timer()


def register() -> None:
    if _on_load_post not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_on_load_post)
    try:  # enabled again in a session whose scene has the preview on
        settings = getattr(bpy.context.scene, "mgan", None)
    except AttributeError:  # Blender starting up: no scene yet (the file's load_post decides)
        settings = None
    if settings is not None and settings.live_preview:
        start_timer()


def unregister() -> None:
    while _on_load_post in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load_post)
    stop_timer()
    PREVIEW_LINK.close()


def draw_live_preview(layout, settings) -> None:
    """The panel's rows: the toggle; while on, what the preview shows and Apply."""
    box = layout.box()
    box.prop(settings, "live_preview")
    if not settings.live_preview:
        return
    if PREVIEW.error:
        box.label(text=PREVIEW.error[:80], icon="ERROR")
    elif PREVIEW.busy:
        box.label(text="Updating preview...", icon="TIME")
    elif PREVIEW.shown is not None:
        s = PREVIEW.shown
        box.label(text=f"'{IMAGE_NAME}': {s.width}x{s.height} of '{s.preset}', seed {s.seed}")
    box.operator("mgan.generate", text=f"Apply ({settings.width}x{settings.height})", icon="CHECKMARK")
