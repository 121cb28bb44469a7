"""A texture request to the engine as a small state machine, stepped from a UI timer (or
in a loop when Blender runs in the background). No bpy: Blender data is written by the
caller, on the main thread, from ``result``."""
from __future__ import annotations

import numpy as np

from .connection import QUICK_TIMEOUT, Link, client, protocol

# The engine answers hello at once even while it computes; a longer wait is for an engine
# this add-on just spawned, which imports torch first.
STARTING_ENGINE_TIMEOUT = 90.0


# Blender's Normal Map node reads OpenGL tangent normals (green = +Y), whatever a preset prefers.
BLENDER_NORMAL_CONVENTION = "opengl"
# The map settings the panel offers (all of protocol.MAP_SETTING_FIELDS but the convention).
PANEL_MAP_SETTINGS = tuple(k for k in protocol.MAP_SETTING_FIELDS if k != "normal_convention")


def synthesize_fields(preset: str, width: int, height: int, seed: int, noise_scale: float,
                      tileable: bool, maps: tuple[str, ...] = (), map_settings: dict | None = None) -> dict:
    """The wire fields of a synthesize request from the panel's settings."""
    fields = {"preset": preset, "width": int(width), "height": int(height), "seed": int(seed),
              "tileable": bool(tileable), "dtype": "uint8", "events": True}
    if noise_scale > 0:  # 0 keeps the preset's own noise scale
        fields["noise"] = {"scale": float(noise_scale)}
    if maps:
        fields["maps"] = list(maps)
        fields["map_settings"] = dict(map_settings or {})
    return fields


def map_settings_fields(values: dict | None) -> dict:
    """The ``map_settings`` to send: None keeps the preset's own (then the engine's) values,
    a dict (the panel's "Custom map settings") sends those. The normal convention is always
    Blender's, so the normal map is right in the material whatever the preset says."""
    fields = {k: float(values[k]) for k in PANEL_MAP_SETTINGS if k in values} if values else {}
    return {**fields, "normal_convention": BLENDER_NORMAL_CONVENTION}


def resolved_map_settings(header: dict) -> dict:
    """The numbers the engine used (reply ``map_settings``) that the panel shows: only
    finite numbers of known keys, so a strange reply cannot break the properties."""
    settings = header.get("map_settings")
    if not isinstance(settings, dict):
        return {}
    return {k: float(v) for k, v in settings.items() if k in PANEL_MAP_SETTINGS
            and isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)}


def reply_maps(header: dict, payloads: list, wanted: tuple[str, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A synthesize reply with maps -> ((H,W,3) uint8 base colour, {map name: its array}),
    checked against the protocol (MAP_FRAMES) before anything is written into Blender.
    ValueError names what is wrong, e.g. an engine that predates material maps."""
    maps = header.get("maps")
    if not isinstance(maps, list):
        raise ValueError("the engine's reply has no material maps: update the engine (it predates them)")
    missing = [m for m in wanted if m not in maps]
    if missing or len(payloads) != 1 + len(maps):
        raise ValueError(f"the engine sent {len(payloads)} image(s) for maps {maps}; asked for "
                         f"base colour + {list(wanted)}")
    base = payloads[0]
    if base.dtype != np.uint8 or base.ndim != 3 or base.shape[2] != 3:
        raise ValueError(f"the base colour must be (H, W, 3) uint8, got {base.dtype} {base.shape}")
    maps_out = {}
    for name, data in zip(maps, payloads[1:]):
        if name not in protocol.MAP_FRAMES:
            raise ValueError(f"the engine sent an unknown map {str(name)[:40]!r}")
        dtype, channels = protocol.MAP_FRAMES[name]
        if data.dtype != np.dtype(dtype) or data.shape != (*base.shape[:2], channels):
            raise ValueError(f"the {name} map must be {base.shape[0]}x{base.shape[1]}x{channels} {dtype}, "
                             f"got {data.dtype} {data.shape}")
        maps_out[name] = data
    return base, maps_out


class EngineJob:
    """hello (a quick deadline: an engine that is down is reported in seconds, not after the
    compute deadline), then the request itself. ``step()`` never blocks unless asked to;
    it raises client.EngineError on any failure, with a message for the user."""

    def __init__(self, link: Link, endpoint: str, op: str, fields: dict, payloads=(),
                 hello_timeout: float = QUICK_TIMEOUT, timeout: float | None = None):
        self.link, self.endpoint, self.op, self.fields, self.payloads = link, endpoint, op, fields, payloads
        self.hello_timeout, self.timeout = hello_timeout, timeout
        self.stage = "new"
        self.rid: str | None = None
        self.reply = None
        self.cancelled = False

    def start(self) -> "EngineJob":
        self.rid = self.link.client(self.endpoint).send("hello", timeout=self.hello_timeout)
        self.stage = "hello"
        return self

    @property
    def fraction(self) -> float:
        p = self.link.progress.get(self.rid) if self.stage == "work" else None
        if not p or not p.get("total"):
            return 0.0
        return min(1.0, max(0.0, float(p.get("done", 0)) / float(p["total"])))

    def step(self, wait: float = 0.0) -> bool:
        """True when the result is in ``reply``; raises EngineError if the request failed."""
        if self.stage == "done":
            return True
        reply = self.link.take(self.rid, wait)
        if reply is None:
            return False
        client.raise_for_error(reply)
        if self.stage == "hello":
            self.link.hello = reply.header
            self.rid = self.link.client(self.endpoint).send(self.op, self.fields, self.payloads, self.timeout)
            self.stage = "work"
            return False
        self.link.progress.pop(self.rid, None)
        self.reply, self.stage = reply, "done"
        return True

    def run(self, poll: float = 0.05) -> "EngineJob":
        """Blocking: step until done (background mode, scripts, tests)."""
        while not self.step(poll):
            pass
        return self

    def cancel(self) -> None:
        """Ask the engine to stop the job (its id is the request id) and forget the reply."""
        if self.stage == "work" and self.rid is not None:
            try:
                cancel_rid = self.link.client(self.endpoint).send("cancel", {"job": self.rid},
                                                                  timeout=QUICK_TIMEOUT)
                self.link.abandon(cancel_rid)
            except client.EngineError:
                pass  # the engine is gone: nothing left to stop
        if self.rid is not None:
            self.link.abandon(self.rid)
        self.cancelled, self.stage = True, "done"
