"""Live preview: a small synthesis that follows the panel's preset, seed, noise scale and
size while they change, as a state machine stepped from a timer on Blender's main thread
(or from a loop: the tests, bench/preview_latency.py). No bpy: the caller writes what
``step`` returns into Blender.

The rule that keeps it responsive on a slow engine: at most one request in flight. When
the settings change while one is in flight, it is cancelled (the engine drops it if it
has not started; the link drops its reply if it comes anyway) and the newest settings
are sent; so the engine never works through a backlog of stale previews, and a stale
result never reaches the image, whatever order the replies come in."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

from .connection import EngineError
from .jobs import synthesize_fields

# The longer side of the preview: big enough to judge a texture tiled 2x2, small enough
# to come back well within a second from a 2-core CPU (bench/preview_latency.py).
PREVIEW_SIDE = 256
IMAGE_NAME = "MGAN Preview"
# Timer periods: short while a reply is awaited (each tick is a non-blocking poll, and
# the tick after the reply is what the user waits for), longer while only watching the
# settings.
BUSY_TICK = 0.02
IDLE_TICK = 0.1


@dataclass(frozen=True)
class PreviewRequest:
    """What one preview shows; two requests are the same preview when they are equal."""
    preset: str
    width: int
    height: int
    seed: int
    noise_scale: float
    tileable: bool

    def fields(self) -> dict:
        # Progress events: a preview is one tile, nothing to show a bar for.
        return {**synthesize_fields(self.preset, self.width, self.height, self.seed, self.noise_scale,
                                    self.tileable), "events": False}


def preview_size(width: int, height: int, side: int = PREVIEW_SIDE) -> tuple[int, int]:
    """The preview's (width, height): the longer side ``side``, the chosen size's aspect,
    never under the engine's 8 px minimum. Pixels stay at the full texture's scale (the
    noise scale is in pixels), so the preview is a window on the texture's look, not a
    downscaled copy of it."""
    width, height = max(1, int(width)), max(1, int(height))
    longer = max(width, height)
    return (max(8, round(side * width / longer)), max(8, round(side * height / longer)))


def preview_request(preset: str, width: int, height: int, seed: int, noise_scale: float, tileable: bool,
                    no_preset: str, side: int = PREVIEW_SIDE) -> PreviewRequest | None:
    """The preview for the panel's settings; None while there is no preset to show
    (``preset`` empty or the menu's placeholder item ``no_preset``)."""
    if not preset or preset == no_preset:
        return None
    w, h = preview_size(width, height, side)
    return PreviewRequest(preset, w, h, int(seed), float(noise_scale), bool(tileable))


class Job(Protocol):
    """What the machine needs of a request in flight (jobs.EngineJob is one)."""
    reply: Any

    def step(self, wait: float = 0.0) -> bool: ...

    def cancel(self) -> None: ...


@dataclass
class Landed:
    """A preview to write: the latest request's (H, W, 3) uint8 sRGB pixels, top row first."""
    request: PreviewRequest
    rgb: Any
    seconds: float  # the engine's compute time


class LivePreview:
    """``want`` the settings whenever they may have changed (cheap: nothing is sent from
    here); ``step`` from a timer. ``start`` sends a request and returns its Job."""

    def __init__(self, start: Callable[[PreviewRequest], Job]):
        self.start = start
        self.wanted: PreviewRequest | None = None
        self.shown: PreviewRequest | None = None  # what the image holds now
        self.flight: tuple[PreviewRequest, Job] | None = None
        self.failed: PreviewRequest | None = None  # not retried until the settings change
        self.error = ""
        self.sent = self.cancelled = self.landed = 0

    @property
    def busy(self) -> bool:
        return self.flight is not None

    def want(self, request: PreviewRequest | None) -> None:
        self.wanted = request

    def step(self) -> Landed | None:
        """One tick: never blocks. Returns the newest request's preview once it has come."""
        if self.flight is not None and self.flight[0] != self.wanted:
            self._cancel()
        if self.flight is not None:
            request, job = self.flight
            try:
                done = job.step()
            except EngineError as exc:
                self.flight, self.failed, self.error = None, request, exc.message
                return None
            if not done:
                return None
            self.flight = None
            rgb = job.reply.payloads[0] if job.reply.payloads else None
            if getattr(rgb, "shape", None) != (request.height, request.width, 3) or str(rgb.dtype) != "uint8":
                self.failed = request
                self.error = (f"the engine sent {getattr(rgb, 'dtype', None)} {getattr(rgb, 'shape', None)} "
                              f"for a {request.width}x{request.height} preview")
                return None
            self.shown, self.error, self.landed = request, "", self.landed + 1
            seconds = job.reply.header.get("seconds")
            return Landed(request, rgb, float(seconds) if isinstance(seconds, (int, float)) else 0.0)
        if self.wanted is not None and self.wanted not in (self.shown, self.failed):
            try:
                self.flight = (self.wanted, self.start(self.wanted))
            except EngineError as exc:
                self.failed, self.error = self.wanted, exc.message
                return None
            self.sent += 1
        return None

    def stop(self) -> None:
        """Cancel what is in flight and forget what was shown (turning it on again redraws)."""
        if self.flight is not None:
            self._cancel()
        self.wanted = self.shown = self.failed = None
        self.error = ""

    def _cancel(self) -> None:
        _, job = self.flight
        self.flight = None
        job.cancel()
        self.cancelled += 1


def editors_to_show(spaces: Iterable[Any], image: Any) -> list[Any]:
    """The Image Editor spaces that should show the preview: those showing nothing or the
    preview already; an editor showing another image is the user's, left alone."""
    return [s for s in spaces if s.image is None or s.image == image]
