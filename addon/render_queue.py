"""Where Stylise Rendered Frames does its work, and the queue that carries it to the main
thread. No bpy.

Blender calls render handlers on the thread that renders. In a background render
(`blender -b ... -a`) that is the main thread, and timers never run: the handler does the
work at once. In an interactive render (Render Animation, Ctrl F12) it is a render thread,
and loading or removing images there races the UI on the main thread; so the handlers only
note what happened (a render job started, a frame file was written, the job ended) in
this queue, and a timer on the main thread does the work, in order."""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

INIT, FRAME, END = "init", "frame", "end"


def runs_inline(background: bool) -> bool:
    """True: the handler works itself (a background render: it is on the main thread, and no
    timer would ever run); False: it queues for the main thread's timer."""
    return background


@dataclass(frozen=True)
class RenderEvent:
    kind: str  # INIT, FRAME or END
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

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
        self.rendering.clear()

    def may_remove_images(self) -> bool:
        """At a job's END, taken on the main thread: False if another job has started since."""
        return not self.rendering.is_set()
