"""The engine service: a ZeroMQ ROUTER that serves the protocol of docs/protocol.md.

    clients (DEALER/REQ) ──▶ ROUTER (IO thread: validate, answer, queue) ──▶ DeviceWorker
                        ◀──             ▲ forwards replies/events          │ torch
                                        └──── inproc PULL ◀── PUSH ────────┘

The IO thread owns the ROUTER and answers hello, presets, status and cancel itself, so they
stay fast while a job computes; synthesize, stylize and train become jobs for the worker.
Every request is validated by engine.protocol before anything else looks at it, and every
failure becomes an error reply: the loop never dies on a bad message.
"""
from __future__ import annotations

import io
import os
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import zmq

from . import protocol as P
from .jobs import Job, JobBook, new_job_id
from .layout import parse_repeat
from .presets import PresetError, data_dir, find_preset, scan_presets
from .security import CurveServerKeys, EndpointError, apply_server_keys, check_bind, start_authenticator
from .synth import pick_device
from .worker import DeviceWorker, effective_noise, preset_error

POLL_MS = 200        # how often the loop looks at its stop flag (signals, shutdown)
MAX_THUMBNAIL_BYTES = 1 << 20
LINGER_MS = 2000     # time for the last replies (e.g. to shutdown) to leave on close


def engine_version() -> str:
    """The installed package's version, else the source tree's pyproject.toml."""
    import importlib.metadata

    try:
        return importlib.metadata.version("mgan-textures")
    except importlib.metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
        except (OSError, KeyError, ValueError):
            return "unknown"


def _stderr(msg: str) -> None:
    print(f"mgan engine: {msg}", file=sys.stderr, flush=True)


class EngineServer:
    """Bind, serve until stopped, release everything. Use as a context manager or call
    ``start`` / ``serve`` / ``close``."""

    def __init__(self, bind: str = P.DEFAULT_ENDPOINT, device: str | None = None,
                 curve: CurveServerKeys | None = None, limits: P.Limits = P.Limits(),
                 log: Callable[[str], None] = _stderr):
        check_bind(bind, curve is not None)
        self.bind, self.curve, self.limits, self.log = bind, curve, limits, log
        self.device = pick_device(device)
        self.endpoint: str | None = None
        self.book = JobBook(data_dir() / "jobs")
        self._stop = threading.Event()
        self._ctx: zmq.Context | None = None
        self._auth = None
        self._router: zmq.Socket | None = None
        self._inbox: zmq.Socket | None = None
        self._worker: DeviceWorker | None = None
        self._handlers = {"hello": self._hello, "presets": self._presets, "synthesize": self._compute,
                          "stylize": self._compute, "train": self._train, "status": self._status,
                          "cancel": self._cancel, "release": self._release, "shutdown": self._shutdown}

    # ---- life cycle -------------------------------------------------------------------
    def start(self) -> str:
        """Bind and start the worker; returns the bound address (a tcp port of '*' resolved)."""
        self._ctx = zmq.Context()
        try:
            if self.curve is not None:
                self._auth = start_authenticator(self._ctx, self.curve)
            router = self._router = self._ctx.socket(zmq.ROUTER)
            router.linger = LINGER_MS
            # A frame above this makes libzmq drop the connection before we read a byte.
            router.maxmsgsize = max(self.limits.max_message_bytes, self.limits.max_header_bytes)
            if self.curve is not None:
                apply_server_keys(router, self.curve)
            try:
                router.bind(self.bind)
            except zmq.ZMQError as exc:
                raise EndpointError(f"cannot bind {self.bind}: {exc.strerror}; is another engine running "
                                    "there? pick another address with --bind") from None
            self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
            if self.endpoint.startswith("ipc://"):
                os.chmod(self.endpoint[len("ipc://"):], 0o600)  # this user's processes only
            self._inbox = self._ctx.socket(zmq.PULL)
            outbox = f"inproc://mgan-worker-{id(self)}"
            self._inbox.bind(outbox)
            self._worker = DeviceWorker(str(self.device), self.book, self._ctx, outbox, self.log)
            self._worker.start()
        except BaseException:
            self.close()
            raise
        for job in self.book.load_training(self.log):
            self.log(f"resuming training job {job.id} ({job.fields['name']}) from its checkpoint")
            self._worker.submit(job)
        return self.endpoint

    def stop(self) -> None:
        """Ask ``serve`` to return (thread-safe; used by signals and the shutdown op)."""
        self._stop.set()

    def serve(self) -> None:
        """Answer requests until ``stop``; SIGINT/SIGTERM stop it too (in the main thread)."""
        restore = self._install_signals()
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._inbox, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(POLL_MS))
                if self._inbox in ready:
                    self._forward_worker_messages()
                if self._router in ready:
                    self._read_requests()
        finally:
            restore()

    def close(self) -> None:
        """Stop the worker (interrupting its job, answering queued ones), close, release."""
        if self._worker is not None:
            for job in self._worker.stop():
                self._refuse_queued(job)
            self._worker.join(timeout=60)
            if self._worker.is_alive():
                # Its socket stays open, so terminating the context would wait forever.
                self.log("the worker did not stop within 60 s; exiting without waiting for it")
                self._ctx = None
            elif self._inbox is not None:
                self._forward_worker_messages()  # its last replies
            self._worker = None
        for sock in (self._inbox, self._router):
            if sock is not None:
                sock.close()
        self._inbox = self._router = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def __enter__(self) -> "EngineServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {s: signal.signal(s, lambda *_: self.stop()) for s in (signal.SIGINT, signal.SIGTERM)}
        return lambda: [signal.signal(s, h) for s, h in old.items()]

    # ---- the IO loop ------------------------------------------------------------------
    def _forward_worker_messages(self) -> None:
        while True:
            try:
                parts = self._inbox.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._router.send_multipart(parts, copy=False)

    def _read_requests(self) -> None:
        # A bounded batch, so worker replies are forwarded even under a flood of requests.
        for _ in range(100):
            try:
                parts = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._handle(parts)

    def _reply(self, identity: bytes, header: dict, payloads=()) -> None:
        self._router.send_multipart([identity, b"", *P.encode(header, payloads)], copy=False)

    def _handle(self, parts: list) -> None:
        identity = parts[0].bytes
        if len(parts) < 2 or len(parts[1]) != 0:
            err = P.ProtocolError(P.BAD_MESSAGE, "a request starts with an empty delimiter frame, then the "
                                                 "JSON header (REQ sockets add the delimiter; DEALER must)")
            self._reply(identity, P.error_header(err))
            return
        request = None
        try:
            request = P.decode_request(parts[2:], self.limits)
            self._handlers[request.op](identity, request)
            return
        except P.ProtocolError as exc:
            err = exc
        except PresetError as exc:
            err = preset_error(exc)
        except Exception as exc:  # a bug must not take the engine down
            import traceback

            self.log(f"error handling a request:\n{traceback.format_exc()}")
            err = P.ProtocolError(P.ENGINE_ERROR, f"the engine failed: {type(exc).__name__}: {exc}")
        if request is not None:
            err.request_id = request.id
        self._reply(identity, P.error_header(err, request.op if request else None))

    def _ok(self, identity: bytes, request: P.Request, payloads=(), **fields) -> None:
        self._reply(identity, P.reply_header(request.op, request.id, **fields), payloads)

    # ---- ops answered here ------------------------------------------------------------
    def _hello(self, identity: bytes, request: P.Request) -> None:
        name = self.device.type
        if self.device.type == "cuda":
            import torch

            name = torch.cuda.get_device_name(self.device)
        self._ok(identity, request, engine={"name": "mgan-textures", "version": engine_version()},
                 protocol_version=P.PROTOCOL_VERSION, device=str(self.device), device_name=name,
                 limits=self.limits.to_dict(), ops=list(P.OPS))

    def _release(self, identity: bytes, request: P.Request) -> None:
        """Free engine memory without stopping: the loaded presets (and CUDA's cached blocks).
        A job that is running keeps what it holds until it ends."""
        self._ok(identity, request, **self._worker.release())

    def _presets(self, identity: bytes, request: P.Request) -> None:
        listed, thumbs = [], []
        scan = scan_presets()
        for p in scan.presets:
            ex = p.meta.get("exemplar", {})
            entry = {"name": p.name, "kind": p.kind, "exemplar": {"source": str(ex.get("source", "")),
                                                                 "licence": str(ex.get("licence", ""))},
                     "thumbnail": None}
            thumb = p.thumbnail
            if thumb is not None and thumb.stat().st_size <= MAX_THUMBNAIL_BYTES and len(thumbs) < self.limits.max_images:
                entry["thumbnail"] = len(thumbs)
                thumbs.append(P.EncodedImage("png", thumb.read_bytes()))
            listed.append(entry)
        self._ok(identity, request, thumbs, presets=listed,
                 broken=[{"name": b.name, "reason": b.reason} for b in scan.broken])

    def _status(self, identity: bytes, request: P.Request) -> None:
        job = request.fields.get("job")
        if job is None:
            self._ok(identity, request, jobs=self.book.snapshot())
        else:
            self._ok(identity, request, job=self.book.snapshot(job))

    def _cancel(self, identity: bytes, request: P.Request) -> None:
        job, state = self.book.cancel(request.fields["job"])
        if state == "cancelled" and job.kind != "train" and job.identity is not None and job.error:
            # Cancelled while queued: the worker will skip it, so its requester hears it here.
            err = P.ProtocolError(job.error["code"], job.error["message"], job.request_id,
                                  job.error.get("reason"))
            self._reply(job.identity, P.error_header(err, job.kind))
        self._ok(identity, request, job=job.id, state=state)

    def _shutdown(self, identity: bytes, request: P.Request) -> None:
        self._ok(identity, request, state="stopping")
        self.log("shutdown requested")
        self.stop()

    # ---- ops that become jobs ---------------------------------------------------------
    def _new_job(self, identity: bytes, request: P.Request, **extra) -> Job:
        if self._stop.is_set():
            raise P.ProtocolError(P.SHUTTING_DOWN, "the engine is shutting down", request.id)
        # Synthesis jobs are named by their request id, which the client knows before the
        # reply (to cancel it); training ids are the engine's: they outlive connections.
        job_id = request.id if request.id and request.op != "train" else new_job_id()
        return Job(id=job_id, kind=request.op, fields=request.fields, identity=identity,
                   request_id=request.id, payloads=request.payloads, **extra)

    def _compute(self, identity: bytes, request: P.Request) -> None:
        """synthesize / stylize: the preset and noise are checked now, the work queued."""
        preset = find_preset(request.fields["preset"])
        if request.op == "synthesize":
            effective_noise(preset, request.fields["noise"])
        job = self.book.add(self._new_job(identity, request, preset=preset))
        self._worker.submit(job)

    def _train(self, identity: bytes, request: P.Request) -> None:
        from training.texture import TrainConfig

        f = request.fields
        run_dir = data_dir() / "runs" / f["name"]
        self.book.check_idle(f["name"])  # a run training now is that conflict, not its checkpoint's
        if (run_dir / "checkpoint.pt").exists() and not (f["resume"] or f["fresh"]):
            raise P.ProtocolError(P.CONFLICT, f"a training run {f['name']!r} already has a checkpoint; send "
                                              "resume: true to continue it or fresh: true to start over",
                                  reason=P.HAS_CHECKPOINT)
        config = TrainConfig()
        for key in P.TRAIN_CONFIG_FIELDS:
            if key in f:
                setattr(config, key, f[key])
        config.noise = {**config.noise, **f["noise"]}
        try:
            if "repeat" in f:
                config.repeat = parse_repeat(f["repeat"])
            config.validate()
        except ValueError as exc:
            raise P.ProtocolError(P.BAD_FIELD, str(exc)) from None
        exemplar = request.payloads[0]
        _check_image(exemplar)
        job = self._new_job(identity, request)
        job.extra = {"config": asdict(config), "run_dir": str(run_dir),
                     "exemplar": str(run_dir / f"exemplar.{exemplar.format}")}
        self.book.add(job)  # refuses a second job for a run that is training now
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            Path(job.extra["exemplar"]).write_bytes(exemplar.data)
        except OSError as exc:
            self.book.finish(job, "failed", error={"code": P.ENGINE_ERROR, "message": str(exc)})
            raise P.ProtocolError(P.ENGINE_ERROR, f"cannot store the exemplar in {run_dir}: {exc}") from None
        self._worker.submit(job)
        self._ok(identity, request, job=job.id, state=job.state, name=f["name"])

    def _refuse_queued(self, job: Job) -> None:
        err = P.ProtocolError(P.SHUTTING_DOWN, f"the engine is shutting down; job {job.id} did not run",
                              job.request_id)
        self.book.finish(job, "cancelled", error=err.to_dict())
        if self._router is not None and job.identity is not None:
            self._reply(job.identity, P.error_header(err, job.kind))


def _check_image(image: P.EncodedImage) -> None:
    """An exemplar upload must be the image file it claims to be, of a sane size."""
    from PIL import Image, UnidentifiedImageError

    from training.exemplar import MAX_EXEMPLAR_PIXELS

    try:
        with Image.open(io.BytesIO(image.data)) as im:
            # Phone cameras write JPEGs with extra frames, which PIL reports as MPO.
            kind, size = {"mpo": "jpeg"}.get((im.format or "").lower(), (im.format or "").lower()), im.size
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise P.ProtocolError(P.BAD_IMAGE, f"the exemplar is not a readable {image.format} image: {exc}") from None
    if kind != image.format:
        raise P.ProtocolError(P.BAD_IMAGE, f"the exemplar frame is declared {image.format} but holds {kind or 'unknown'}")
    if size[0] * size[1] > MAX_EXEMPLAR_PIXELS:
        raise P.ProtocolError(P.TOO_LARGE, f"the exemplar is {size[0]}x{size[1]}; the limit is "
                                           f"{MAX_EXEMPLAR_PIXELS / 1e6:.0f} Mpx")
