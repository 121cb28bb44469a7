"""A texture request to the engine as a small state machine, stepped from a UI timer (or
in a loop when Blender runs in the background). No bpy: Blender data is written by the
caller, on the main thread, from ``result``."""
from __future__ import annotations


from .connection import QUICK_TIMEOUT, Link, client

# The engine answers hello at once even while it computes; a longer wait is for an engine
# this add-on just spawned, which imports torch first.
STARTING_ENGINE_TIMEOUT = 90.0


def synthesize_fields(preset: str, width: int, height: int, seed: int, noise_scale: float,
                      tileable: bool) -> dict:
    """The wire fields of a synthesize request from the panel's settings."""
    fields = {"preset": preset, "width": int(width), "height": int(height), "seed": int(seed),
              "tileable": bool(tileable), "dtype": "uint8", "events": True}
    if noise_scale > 0:  # 0 keeps the preset's own noise scale
        fields["noise"] = {"scale": float(noise_scale)}
    return fields


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
