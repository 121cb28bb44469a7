"""A client for the engine: pyzmq + numpy only, so Blender's Python can import it.

Two ways to use it, on one DEALER socket:

- non-blocking, for a UI timer: ``rid = client.send("synthesize", {...})`` returns at once;
  ``client.poll()`` (cheap, call it from a ``bpy.app.timers`` callback) returns the replies
  that have arrived, and a timeout reply for every request whose deadline passed;
- blocking: ``hello()``, ``presets()``, ``synthesize(...)``, ``stylize(...)``, ``train(...)``,
  ``status(job)``, ``cancel(job)``, ``shutdown()``: send, wait up to the deadline, return
  the result or raise ``EngineError`` (``EngineTimeout`` when the engine did not answer).

REQ semantics without REQ's lock-step: every request carries a fresh id and its reply is
matched by it, so several can be in flight. Recovery is the Lazy Pirate pattern: when a
deadline passes, the socket is closed with LINGER 0 and a new one connects, and every
request still waiting on the old socket fails with EngineTimeout (their replies, if any
come, would go to the old socket; a request is never re-sent behind the caller's back,
because a second ``train`` would start a second job).

One client is used from one thread (Blender's main thread, say); it is not thread-safe.
"""
from __future__ import annotations

import math
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import zmq

from . import protocol as P
from .security import CurveClientKeys

DEFAULT_TIMEOUT = 10.0
# Synthesis of a large canvas on a CPU takes minutes; waiting less would abandon it.
COMPUTE_TIMEOUT = 600.0
MAX_EVENTS = 1000


class EngineError(Exception):
    """The engine answered with an error (or did not answer): ``code`` from
    engine.protocol.ERROR_CODES, a message meant for the user, and for some codes a
    ``reason`` to branch on (a ``conflict``: ``id_in_use``, ``training`` or ``checkpoint``)."""

    def __init__(self, code: str, message: str, reason: str | None = None):
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason


class EngineTimeout(EngineError):
    """No answer within the deadline: the engine is not running, hung, or unreachable."""

    def __init__(self, message: str):
        super().__init__(P.TIMEOUT, message)


def raise_for_error(reply: P.Reply) -> P.Reply:
    """The reply if it is a success; else its error as EngineError / EngineTimeout."""
    if reply.header.get("ok"):
        return reply
    err = reply.header["error"]
    if err["code"] == P.TIMEOUT:
        raise EngineTimeout(err["message"])
    reason = err.get("reason")
    raise EngineError(err["code"], err["message"], reason if isinstance(reason, str) else None)


@dataclass
class _Pending:
    op: str
    deadline: float
    timeout: float


class EngineClient:
    def __init__(self, endpoint: str = P.DEFAULT_ENDPOINT, timeout: float = DEFAULT_TIMEOUT,
                 curve: CurveClientKeys | None = None, context: zmq.Context | None = None,
                 limits: P.Limits = P.Limits(), on_event: Callable[[P.Reply], None] | None = None):
        self.endpoint, self.timeout, self.curve, self.limits = endpoint, timeout, curve, limits
        self.on_event = on_event
        self._ctx = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None
        self._pending: dict[str, _Pending] = {}
        self._inbox: dict[str, P.Reply] = {}
        self._events: deque[P.Reply] = deque(maxlen=MAX_EVENTS)
        self._connect()

    # ---- connection -------------------------------------------------------------------
    def _connect(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        sock.linger = 0
        # A reply larger than any engine may send means something else is listening there.
        sock.maxmsgsize = max(self.limits.max_message_bytes, self.limits.max_header_bytes)
        if self.curve is not None:
            self.curve.apply(sock)
        sock.connect(self.endpoint)
        self._socket = sock

    def _reconnect(self, why: str) -> None:
        """Lazy Pirate: drop the socket (LINGER 0 discards what it still holds), fail every
        request that waited on it, connect a fresh one."""
        self._socket.close(linger=0)
        for rid, pending in self._pending.items():
            self._inbox[rid] = self._timeout_reply(rid, pending, why)
        self._pending.clear()
        self._connect()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def __enter__(self) -> "EngineClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- non-blocking API -------------------------------------------------------------
    def send(self, op: str, fields: dict | None = None, payloads: Sequence[P.Payload] = (),
             timeout: float | None = None) -> str:
        """Queue a request; returns its id. Fields are the wire fields of docs/protocol.md.
        A request this client can tell is invalid raises EngineError here, unsent."""
        if self._socket is None:
            raise EngineError(P.BAD_MESSAGE, "this client is closed")
        rid = uuid.uuid4().hex[:20]
        try:
            parts = P.encode({"protocol": P.PROTOCOL_VERSION, "op": op, "id": rid, **(fields or {})}, payloads)
            P.decode_request(parts, self.limits)
        except P.ProtocolError as exc:
            raise EngineError(exc.code, exc.message, exc.reason) from None
        if timeout is None:
            timeout = COMPUTE_TIMEOUT if op in ("synthesize", "stylize") else self.timeout
        try:
            self._socket.send_multipart([b"", *parts], flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            raise EngineTimeout(f"cannot queue {op} for the engine at {self.endpoint}: too many requests "
                                "are waiting for it; is it running?") from None
        self._pending[rid] = _Pending(op, time.monotonic() + timeout, timeout)
        return rid

    def poll(self, timeout: float = 0.0) -> list[P.Reply]:
        """Replies that finished (successes, errors, timeouts), each once. Waits up to
        ``timeout`` seconds for the first one; 0 never blocks."""
        self._receive(0.0 if self._inbox else timeout)  # replies already in hand: no waiting
        self._expire()
        done = list(self._inbox.values())
        self._inbox.clear()
        return done

    def events(self) -> list[P.Reply]:
        """Progress events received so far (jobs sent with events: true), oldest first."""
        out = list(self._events)
        self._events.clear()
        return out

    def pending(self) -> list[str]:
        return list(self._pending)

    def wait(self, rid: str) -> P.Reply:
        """Block until request ``rid`` has its reply or its deadline passes."""
        while rid not in self._inbox:
            pending = self._pending.get(rid)
            if pending is None:
                raise KeyError(f"no request {rid!r} is waiting (already collected by poll()?)")
            self._receive(max(0.0, pending.deadline - time.monotonic()), until=rid)
            self._expire()
        return self._inbox.pop(rid)

    def call(self, op: str, fields: dict | None = None, payloads: Sequence[P.Payload] = (),
             timeout: float | None = None) -> P.Reply:
        """send + wait + raise_for_error."""
        return raise_for_error(self.wait(self.send(op, fields, payloads, timeout)))

    # ---- receiving --------------------------------------------------------------------
    def _receive(self, timeout: float, until: str | None = None) -> None:
        """Take in what has arrived; wait up to ``timeout`` for a first reply (or for
        request ``until``'s reply)."""
        deadline = time.monotonic() + timeout
        got = self._drain()
        while not (got if until is None else until in self._inbox):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._socket.poll(math.ceil(remaining * 1000), zmq.POLLIN):
                return
            got = self._drain()

    def _drain(self) -> int:
        n = 0
        while True:
            try:
                parts = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return n
            self._accept(parts)
            n += 1

    def _accept(self, parts: list) -> None:
        if len(parts) < 2 or len(parts[0]) != 0:
            return  # not an answer to any request of ours
        try:
            reply = P.decode_reply(parts[1:], self.limits)
        except P.ProtocolError as exc:
            rid = _peek_id(parts[1])
            if rid in self._pending:
                del self._pending[rid]
                self._inbox[rid] = P.Reply(P.error_header(P.ProtocolError(exc.code, f"malformed reply from the "
                                                                          f"engine: {exc.message}", rid)), [])
            return
        if reply.is_event:
            self._events.append(reply)
            if self.on_event is not None:
                self.on_event(reply)
        elif reply.id in self._pending:
            del self._pending[reply.id]
            self._inbox[reply.id] = reply
        # else: a late reply to a request that already timed out; dropped.

    def _expire(self) -> None:
        now = time.monotonic()
        late = [(rid, p) for rid, p in self._pending.items() if p.deadline <= now]
        if late:
            rid, p = late[0]
            self._reconnect(f"the engine at {self.endpoint} did not answer {p.op} within {p.timeout:g} s; "
                            f"is it running? (start it with: mgan engine --bind {self.endpoint})")

    @staticmethod
    def _timeout_reply(rid: str, pending: _Pending, why: str) -> P.Reply:
        if pending.deadline > time.monotonic():
            why = f"{pending.op} was abandoned: {why}"
        return P.Reply(P.error_header(P.ProtocolError(P.TIMEOUT, why, rid), pending.op), [])

    # ---- blocking convenience ---------------------------------------------------------
    def hello(self, timeout: float | None = None) -> dict:
        """Engine version, protocol version, device and limits."""
        return self.call("hello", timeout=timeout).header

    def presets(self, timeout: float | None = None) -> list[dict]:
        """Installed presets; each ``thumbnail`` is PNG bytes or None."""
        reply = self.call("presets", timeout=timeout)
        out = []
        for p in reply.header["presets"]:
            index = p.get("thumbnail")
            thumb = reply.payloads[index] if isinstance(index, int) and 0 <= index < len(reply.payloads) else None
            out.append({**p, "thumbnail": bytes(thumb.data) if isinstance(thumb, P.EncodedImage) else None})
        return out

    def synthesize(self, preset: str, width: int, height: int, seed: int = 0, noise: dict | None = None,
                   tileable: bool = True, period: tuple[int, int] | None = None, dtype: str = "uint8",
                   precision: str = "auto", timeout: float | None = None) -> np.ndarray:
        """A (height, width, 3) texture: a view on the received message, not a copy."""
        fields: dict[str, Any] = {"preset": preset, "width": width, "height": height, "seed": seed,
                                  "tileable": tileable, "dtype": dtype, "precision": precision}
        if noise:
            fields["noise"] = noise
        if period is not None:
            fields["period"] = {"width": period[0], "height": period[1]}
        return self.call("synthesize", fields, timeout=timeout).payloads[0]

    def material(self, preset: str, width: int, height: int, seed: int = 0,
                 maps: Sequence[str] = P.MAP_NAMES, map_settings: dict | None = None,
                 timeout: float | None = None, **fields: Any) -> tuple[dict[str, np.ndarray], dict]:
        """The base colour and PBR maps of one synthesis: ({"basecolor": (H,W,3) uint8,
        "height": (H,W,1) uint16, ...}, the resolved map settings). ``fields`` are further
        synthesize fields (noise, tileable, period, precision)."""
        request = {"preset": preset, "width": width, "height": height, "seed": seed, "dtype": "uint8",
                   "maps": list(maps), "map_settings": dict(map_settings or {}), **fields}
        reply = self.call("synthesize", request, timeout=timeout)
        names = reply.header.get("maps")
        if not isinstance(names, list) or len(names) != len(reply.payloads) - 1:
            raise EngineError(P.BAD_MESSAGE, "the engine's reply does not name its map frames "
                                             "(an engine older than PBR maps?)")
        return dict(zip(["basecolor", *names], reply.payloads)), reply.header.get("map_settings", {})

    def stylize(self, preset: str, images: np.ndarray | Sequence[np.ndarray], dtype: str = "uint8",
                precision: str = "auto", timeout: float | None = None) -> list[np.ndarray]:
        """Each (H,W,3) uint8 or float32 [0,1] image decoded by the preset's generator."""
        frames = [images] if isinstance(images, np.ndarray) else list(images)
        reply = self.call("stylize", {"preset": preset, "dtype": dtype, "precision": precision}, frames, timeout)
        return list(reply.payloads)

    def train(self, image: bytes | str | os.PathLike, name: str, timeout: float | None = None,
              **options: Any) -> str:
        """Start training a preset from a PNG/JPEG exemplar (bytes or a file path); returns
        the job id. Options are the train fields (steps, batch, crop, ...)."""
        data = bytes(image) if isinstance(image, (bytes, bytearray)) else Path(image).read_bytes()
        fmt = image_format(data)
        return self.call("train", {"name": name, **options}, [P.EncodedImage(fmt, data)], timeout).header["job"]

    def status(self, job: str | None = None, timeout: float | None = None) -> dict | list[dict]:
        """One job's state, progress, error and result; without ``job``, every job's."""
        header = self.call("status", {"job": job} if job else {}, timeout=timeout).header
        return header["job"] if job else header["jobs"]

    def cancel(self, job: str, timeout: float | None = None) -> str:
        """Cancel a job; returns its state now ('cancelled', or 'cancelling' while it stops)."""
        return self.call("cancel", {"job": job}, timeout=timeout).header["state"]

    def release(self, timeout: float | None = None) -> dict:
        """Free engine memory without stopping it: {"released_presets": n, "cuda_cache_emptied": bool}."""
        h = self.call("release", timeout=timeout).header
        return {"released_presets": h["released_presets"], "cuda_cache_emptied": h["cuda_cache_emptied"]}

    def shutdown(self, timeout: float | None = None) -> None:
        self.call("shutdown", timeout=timeout)


def image_format(data: bytes) -> str:
    """'png' or 'jpeg' from the file's magic bytes."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    raise EngineError(P.BAD_IMAGE, "the exemplar must be a PNG or JPEG file")


def _peek_id(frame) -> str | None:
    try:
        rid = P.parse_header(frame).get("id")
    except P.ProtocolError:
        return None
    return rid if isinstance(rid, str) else None
