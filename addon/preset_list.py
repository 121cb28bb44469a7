"""What the add-on knows about the engine's presets, without bpy: the ``presets`` reply read
defensively (it comes off the network), the preset menu's items with their thumbnail icons,
the thumbnail files that Blender's previews load, the broken presets' lines for the panel,
and what a ``release`` freed, in words."""
from __future__ import annotations

import hashlib
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

NO_PRESET = "NONE"  # the one item of the preset menu when the engine lists none
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Built-in icons for a preset without a thumbnail (and for every preset in headless Blender,
# where previews have no icon ids).
KIND_ICONS = {"texture": "TEXTURE", "style": "BRUSH_DATA"}
# The protocol caps a broken preset's reason at 300 characters; a name is at most 64.
MAX_REASON, MAX_NAME = 300, 64


@dataclass
class PresetListing:
    """The presets that load (dicts as on the wire; ``thumbnail``: PNG bytes or None) and
    the broken ones (``{"name", "reason"}``)."""
    presets: list[dict] = field(default_factory=list)
    broken: list[dict] = field(default_factory=list)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_presets_reply(header: dict, payloads) -> PresetListing:
    """A ``presets`` reply -> PresetListing. Entries that are not what docs/protocol.md
    says are skipped; a thumbnail is kept only if its frame is a PNG file; an engine that
    predates ``broken`` lists none."""
    presets = []
    entries = header.get("presets")
    for p in entries if isinstance(entries, list) else ():
        if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not p["name"]:
            continue
        index = p.get("thumbnail")
        frame = payloads[index] if type(index) is int and 0 <= index < len(payloads) else None
        # a file frame (protocol.EncodedImage) that says it is a PNG; not an array frame
        data = bytes(frame.data) if getattr(frame, "format", None) == "png" else None
        presets.append({**p, "thumbnail": data if data and data.startswith(PNG_MAGIC) else None})
    broken = []
    entries = header.get("broken")
    for b in entries if isinstance(entries, list) else ():
        if isinstance(b, dict) and isinstance(b.get("name"), str) and b["name"]:
            broken.append({"name": _one_line(b["name"], MAX_NAME),
                           "reason": _one_line(b.get("reason") or "no reason given", MAX_REASON)})
    return PresetListing(presets, broken)


def enum_items(presets: list[dict], first_kind: str,
               icon_of: Callable[[str], int]) -> list[tuple[str, str, str, int | str, int]]:
    """The items of a preset EnumProperty: ``first_kind`` first (so the default fits the
    menu), each with its thumbnail's icon id from ``icon_of`` (0: none) or else its kind's
    built-in icon. Numbers are positions, as Blender gives items listed without one."""
    listed = sorted((p for p in presets if isinstance(p.get("name"), str)),
                    key=lambda p: p.get("kind", "texture") != first_kind)
    items = []
    for number, p in enumerate(listed):
        kind = p.get("kind", "texture")
        exemplar = p.get("exemplar") if isinstance(p.get("exemplar"), dict) else {}
        icon = icon_of(p["name"]) or KIND_ICONS.get(kind, "TEXTURE")
        items.append((p["name"], p["name"], f"{kind}: {exemplar.get('source', '')}", icon, number))
    return items or [(NO_PRESET, "No presets", "Connect to the engine (Refresh) to list its presets", "ERROR", 0)]


def write_thumbnails(presets: list[dict], folder: Path) -> dict[str, Path]:
    """Each preset's thumbnail as a PNG file in ``folder`` (made if missing): {preset name:
    file}. Files are named by their content, so a changed thumbnail is a new file (nothing
    stale is shown) and a name from the network never becomes a path; files that no preset
    uses any more are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for p in presets:
        data = p.get("thumbnail")
        if not data:
            continue
        path = folder / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
        if not path.exists():
            part = path.with_suffix(".part")
            part.write_bytes(data)
            os.replace(part, path)  # a half-written file is never loaded
        files[p["name"]] = path
    kept = set(files.values())
    for old in folder.glob("*.png"):
        if old not in kept:
            old.unlink(missing_ok=True)
    return files


def panel_lines(reason: str, width: int = 44, max_lines: int = 6) -> list[str]:
    """A long text (a broken preset's reason, an engine's note) as panel lines (Blender labels do not wrap)."""
    lines = textwrap.wrap(reason, width) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:width - 3] + "..."
    return lines


def release_summary(header: dict) -> str:
    """A ``release`` reply in words, for the panel and the status bar."""
    n = header.get("released_presets")
    n = n if type(n) is int and n >= 0 else 0
    freed = f"freed {n} loaded preset{'' if n == 1 else 's'}" if n else "no preset was loaded"
    if header.get("cuda_cache_emptied") is True:
        freed += "; the GPU's cached memory went back to the driver"
    return f"engine memory: {freed}"
