"""Where Stylise Rendered Frames does its work, and the queue that carries it to the main
thread. No bpy.

Blender calls render handlers on the thread that renders. In a background render
(`blender -b ... -a`) that is the main thread, and timers never run: the handler does the
work at once. In an interactive render (Render Animation, Ctrl F12) it is a render thread,
and loading or removing images there races the UI on the main thread; so the handlers only
note what happened (a render job started, a frame file was written, the job ended, it was a
still) in this queue, and a timer on the main thread does the work, in order.

A still (F12, Render Image) writes no frame file, so ``render_write`` never comes; the
handlers tell it from an animation by what they saw of the job (RenderJob): a frame rendered
(``render_post``) and none written. Its pixels are only in the Render Result."""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

INIT, FRAME, END, STILL = "init", "frame", "end", "still"


def runs_inline(background: bool) -> bool:
    """True: the handler works itself (a background render: it is on the main thread, and no
    timer would ever run); False: it queues for the main thread's timer."""
    return background


def is_still(rendered: int, written: int) -> bool:
    """Whether a render job that ended was a still to take from the Render Result: it rendered
    a frame (a job whose set-up failed renders none, and leaves an older result) and wrote no
    file. An animation writes every frame it renders (``blender -b -a``, Ctrl F12), and so does
    ``blender -b -f N``: their files are stylised (``render_write``). So does a script's Render
    Image with write_still: it counts as written too."""
    return rendered > 0 and written == 0


class RenderJob:
    """What the handlers saw of the render job now running: frames rendered (``render_post``)
    and frames written (``render_write``). Blender calls one job's handlers one after another
    on one thread, and one job renders at a time: no lock."""

    def __init__(self):
        self.rendered = self.written = 0

    def begin(self) -> None:
        self.rendered = self.written = 0

    def frame_rendered(self) -> None:
        self.rendered += 1

    def frame_written(self) -> None:
        self.written += 1

    @property
    def still(self) -> bool:
        return is_still(self.rendered, self.written)


@dataclass(frozen=True)
class RenderEvent:
    kind: str  # INIT, FRAME, END or STILL (after its job's END)
    scene: str = ""  # the scene's name, for its settings (read on the main thread)
    frame: int | None = None
    path: str = ""  # the frame's file, as written


class RenderEvents:
    """A first-in first-out queue that any thread may ``put`` to and the main thread
    ``take``s from; and whether a render job is running now (set by the handlers), which
    decides when temporary images may be removed (images.LaterRemoval: never while
    Blender renders an animation)."""

    def __init__(self):
        self._events: deque[RenderEvent] = deque()
        self._lock = threading.Lock()
        self.rendering = threading.Event()

    def put(self, event: RenderEvent) -> None:
        if event.kind == INIT:
            self.rendering.set()
        elif event.kind == END:
            self.rendering.clear()
        with self._lock:
            self._events.append(event)

    def take(self) -> RenderEvent | None:
        with self._lock:
            return self._events.popleft() if self._events else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def newer_job_queued(self) -> bool:
        """Whether a render job started after every event taken so far: for a STILL taken,
        that the Render Result is no longer (or soon not) that still's."""
        with self._lock:
            return any(e.kind == INIT for e in self._events)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
        self.rendering.clear()

    def may_remove_images(self) -> bool:
        """At a job's END, taken on the main thread: False if another job has started since."""
        return not self.rendering.is_set()
