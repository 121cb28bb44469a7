"""The compute worker: one thread per device that runs the engine's jobs.

Only this thread touches torch models; it never touches the engine's ROUTER socket.
Replies and progress events leave through its own PUSH socket to the IO thread, which
forwards them (ZeroMQ sockets are not thread-safe, inproc PUSH/PULL is the hand-over).

Scheduling: synthesize/stylize jobs go before training. A training job runs for minutes
to hours, so between its steps (``on_step``) the worker runs whatever synthesis is
waiting; one thread per device also means two jobs never fight over its memory.

Cancelling is cooperative: synthesis checks the job's flag between tiles (the progress
callback of ``Synthesizer.synthesize``), training through ``should_stop`` (the trainer
checkpoints, then raises KeyboardInterrupt).
"""
from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections import OrderedDict, deque
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import zmq

from . import protocol as P
from .jobs import Job, JobBook
from .maps import MapSettings, derive_maps
from .noise import NoiseParams
from .presets import PresetError, PresetInfo, PresetNotFound, data_dir
from .synth import TILE_HALO, Synthesizer, stylize_image, to_uint8

SYNTH_CACHE_SIZE = 4
EVENT_INTERVAL = 0.25  # s between progress events of one job; state changes always go out
# Decode canvases up to this many pixels run on one CPU thread. A team of OpenMP threads
# waits at every layer's barrier for its slowest member, and on a busy machine (Blender
# drawing, a training run) that member is often descheduled: a 64x64 synthesis took
# 570 ms with 2 threads and 10 ms with 1 on a 2-core machine next to a training job.
# Results are the same bytes either way (tests compare them with the in-process pipeline).
SINGLE_THREAD_PIXELS = 256 * 256


class JobStopped(Exception):
    """Raised inside a job's progress callback when it is cancelled or the engine stops."""


def preset_error(exc: PresetError) -> P.ProtocolError:
    code = P.UNKNOWN_PRESET if isinstance(exc, PresetNotFound) else P.BAD_PRESET
    return P.ProtocolError(code, str(exc))


def effective_noise(preset: PresetInfo, overrides: dict) -> NoiseParams:
    """The preset's noise with the request's overrides; out-of-range values are BAD_FIELD."""
    try:
        return NoiseParams.from_dict({**preset.noise.to_dict(), **overrides})
    except (TypeError, ValueError) as exc:
        raise P.ProtocolError(P.BAD_FIELD, f"noise: {exc}") from None


def effective_map_settings(preset: PresetInfo, overrides: dict) -> MapSettings:
    """The preset's map defaults with the request's overrides; bad combinations are BAD_FIELD."""
    try:
        return preset.map_settings.merged(overrides)
    except (TypeError, ValueError) as exc:
        raise P.ProtocolError(P.BAD_FIELD, f"map_settings: {exc}") from None


def decode_pixels(job: Job) -> int:
    """Pixels the decoder will see: the canvas, with the halo or margins added around it."""
    if job.kind == "stylize":
        return sum((p.shape[0] + 2 * TILE_HALO) * (p.shape[1] + 2 * TILE_HALO) for p in job.payloads)
    margin = 0 if job.fields["tileable"] else 2 * TILE_HALO
    return (job.fields["height"] + margin) * (job.fields["width"] + margin)


@contextlib.contextmanager
def cpu_threads(n: int | None):
    """torch's intra-op threads set to ``n`` for a block (None: unchanged). Safe here
    because the worker is the only thread of the engine that runs torch."""
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class DeviceWorker(threading.Thread):
    """Runs jobs on one device, synthesis first; talks to the IO thread only through its
    PUSH socket (``outbox``) and the job book."""

    def __init__(self, device: str, book: JobBook, context: zmq.Context, outbox: str, log: Callable[[str], None]):
        super().__init__(name=f"mgan-worker-{device}", daemon=True)
        self.device, self.book, self.context, self.outbox, self.log = device, book, context, outbox, log
        self._cond = threading.Condition()
        self._inference: deque[Job] = deque()
        self._training: deque[Job] = deque()
        self._stopping = False
        self._synths: OrderedDict[tuple, Synthesizer] = OrderedDict()
        self._synths_lock = threading.Lock()
        self._out: zmq.Socket | None = None

    # ---- queue ------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self._cond:
            (self._training if job.kind == "train" else self._inference).append(job)
            self._cond.notify()

    def stop(self) -> list[Job]:
        """Stop after the current job (which is interrupted); returns the queued synthesis
        jobs that will not run, for the IO thread to answer."""
        with self._cond:
            self._stopping = True
            dropped = list(self._inference)
            self._inference.clear()
            self._cond.notify()
        return dropped

    def _next(self) -> Job | None:
        with self._cond:
            while not self._stopping and not (self._inference or self._training):
                self._cond.wait()
            if self._stopping:
                return None
            return (self._inference or self._training).popleft()

    def _next_inference(self) -> Job | None:
        with self._cond:
            return self._inference.popleft() if self._inference and not self._stopping else None

    # ---- the thread -------------------------------------------------------------------
    def run(self) -> None:
        self._out = self.context.socket(zmq.PUSH)
        self._out.connect(self.outbox)
        try:
            while (job := self._next()) is not None:
                self._run(job)
        finally:
            self._out.close(linger=-1)  # replies already handed over still reach the IO thread

    def _send(self, identity: bytes | None, header: dict, payloads=()) -> None:
        if identity is not None:
            self._out.send_multipart([identity, b"", *P.encode(header, payloads)], copy=False)

    def _event(self, job: Job, force: bool = False) -> None:
        if not job.fields.get("events"):
            return
        now = time.monotonic()
        if force or now - job.last_event >= EVENT_INTERVAL:
            job.last_event = now
            snap = self.book.snapshot(job.id)
            self._send(job.identity, P.event_header(job.request_id, job.id, snap["state"], snap["progress"]))

    def _check_stop(self, job: Job) -> None:
        if job.cancel.is_set() or self._stopping:
            raise JobStopped()

    def _run(self, job: Job) -> None:
        if not self.book.start(job):
            return  # cancelled while queued; the IO thread has answered
        self._event(job, force=True)
        payloads: list = []
        try:
            result, payloads = (self._train if job.kind == "train" else self._infer)(job)
        except (JobStopped, KeyboardInterrupt):
            reply = self._stopped(job)
        except P.ProtocolError as exc:
            reply = self._failed(job, exc)
        except PresetError as exc:
            reply = self._failed(job, preset_error(exc))
        except (ValueError, RuntimeError, FileNotFoundError, MemoryError) as exc:
            # Bad exemplars, mismatched checkpoints, out of memory: the message says what to do.
            reply = self._failed(job, P.ProtocolError(P.ENGINE_ERROR, f"{job.kind} failed: {exc}"))
        except Exception as exc:  # a bug: keep serving, tell the client, log the traceback
            self.log(f"job {job.id} crashed:\n{traceback.format_exc()}")
            reply = self._failed(job, P.ProtocolError(P.ENGINE_ERROR, f"{job.kind} failed: "
                                                                      f"{type(exc).__name__}: {exc}"))
        else:
            self.book.finish(job, "done", result=result)
            reply = P.reply_header(job.kind, job.request_id, job=job.id, **result)
        self._event(job, force=True)  # the final state, before the reply
        if job.kind != "train":  # a train request was answered when it was queued
            self._send(job.identity, reply, payloads)

    def _stopped(self, job: Job) -> dict:
        if job.cancel.is_set():
            err = P.ProtocolError(P.CANCELLED, f"job {job.id} was cancelled", job.request_id)
            self.book.finish(job, "cancelled", error=err.to_dict())
        else:
            err = P.ProtocolError(P.SHUTTING_DOWN, f"the engine is shutting down; job {job.id} was stopped"
                                  + (" and resumes when it restarts" if job.kind == "train" else ""),
                                  job.request_id)
            self.book.finish(job, "interrupted" if job.kind == "train" else "cancelled", error=err.to_dict())
        return P.error_header(err, job.kind)

    def _failed(self, job: Job, err: P.ProtocolError) -> dict:
        err.request_id = job.request_id
        self.book.finish(job, "failed", error=err.to_dict())
        return P.error_header(err, job.kind)

    # ---- synthesis --------------------------------------------------------------------
    def release(self) -> dict:
        """Drop the loaded presets (called from the IO thread; the cache's lock keeps the
        worker's lookups whole) and, on a GPU, hand its cached blocks back to the driver."""
        with self._synths_lock:
            released = len(self._synths)
            self._synths.clear()
        cuda = self.device.startswith("cuda") and torch.cuda.is_available()
        if cuda:
            torch.cuda.empty_cache()
        return {"released_presets": released, "cuda_cache_emptied": cuda}

    def synthesizer(self, preset: PresetInfo, precision: str) -> Synthesizer:
        """Cached per preset folder, weights file version and precision: loading G and
        moving it to the device costs more than a small synthesis."""
        weights = preset.path / "generator.safetensors"
        key = (str(preset.path), weights.stat().st_mtime_ns if weights.exists() else 0, precision)
        with self._synths_lock:
            if key in self._synths:
                self._synths.move_to_end(key)
                return self._synths[key]
        synth = Synthesizer.load(preset, device=self.device, precision=precision)
        with self._synths_lock:
            self._synths[key] = synth
            while len(self._synths) > SYNTH_CACHE_SIZE:
                self._synths.popitem(last=False)
        return synth

    def _infer(self, job: Job) -> tuple[dict, list[np.ndarray]]:
        f = job.fields
        self._check_stop(job)
        maps = f.get("maps") or []
        map_settings = effective_map_settings(job.preset, f["map_settings"]) if maps else None
        synth = self.synthesizer(job.preset, f["precision"])
        t0 = time.perf_counter()
        with cpu_threads(1 if self.device == "cpu" and decode_pixels(job) <= SINGLE_THREAD_PIXELS else None):
            if job.kind == "synthesize":
                images, header = [self._synthesize(job, synth)], {"width": f["width"], "height": f["height"]}
                period = f.get("period")
                note, fit = synth.repeat_note((f["height"], f["width"]),
                                              (period["height"], period["width"]) if period else None,
                                              0 if f["tileable"] else TILE_HALO)
                if note:
                    header["note"] = note
                    if not period:  # the size to ask for instead (with a period, the period is what to change)
                        header["fit"] = {"width": fit[1], "height": fit[0]}
            else:
                images, header = self._stylize(job, synth), {}
        out = [to_uint8(im) if f["dtype"] == "uint8" else np.ascontiguousarray(im, np.float32) for im in images]
        if maps:
            # from the 8-bit base colour whatever dtype travels: the maps of the pixels a PNG holds
            base = out[0] if f["dtype"] == "uint8" else to_uint8(images[0])
            derived = derive_maps(base, maps, map_settings)
            out += [m.reshape(m.shape[0], m.shape[1], -1) for m in derived.values()]
            header.update(maps=list(derived), map_settings=map_settings.to_dict())
        return {**header, "preset": job.preset.name, "seconds": round(time.perf_counter() - t0, 4)}, out

    def _train_log(self, job: Job, msg: str) -> None:
        """A training run's line to its user: the engine's log, and the job's notes (status)."""
        self.log(f"job {job.id}: {msg}")
        self.book.add_note(job, msg)

    def _tile_progress(self, job: Job, offset: int = 0, scale: int = 1):
        def progress(done: int, total: int) -> None:
            self.book.progress(job, offset * total + done, scale * total)
            self._event(job)
            self._check_stop(job)  # between tiles: a cancelled canvas stops here
        return progress

    def _synthesize(self, job: Job, synth: Synthesizer) -> np.ndarray:
        f = job.fields
        h, w = f["height"], f["width"]
        noise = effective_noise(job.preset, f["noise"])
        progress = self._tile_progress(job)
        dtype = np.uint8 if f["dtype"] == "uint8" else np.float32  # uint8: no float canvas kept
        if not f["tileable"]:
            # A wrapped canvas larger by the decoder's reach on every side, cropped: the
            # crop does not continue across its edges, and no edge sees wrapped pixels.
            m = TILE_HALO
            big = synth.synthesize((h + 2 * m, w + 2 * m), seed=f["seed"], noise=noise, progress=progress,
                                   dtype=dtype)
            return np.ascontiguousarray(big[m:m + h, m:m + w])
        period = f.get("period")
        return synth.synthesize((h, w), seed=f["seed"], noise=noise, progress=progress, dtype=dtype,
                                period=(period["height"], period["width"]) if period else None)

    def _stylize(self, job: Job, synth: Synthesizer) -> list[np.ndarray]:
        out = []
        for i, frame in enumerate(job.payloads):
            if frame.dtype == np.uint8:
                image = frame.astype(np.float32) / 255.0
            else:
                if not np.isfinite(frame).all():
                    raise P.ProtocolError(P.BAD_FRAME, f"frames[{i}] holds NaN or infinite values")
                image = np.clip(frame, 0.0, 1.0)
            self.book.progress(job, i, len(job.payloads))
            out.append(stylize_image(synth, image, progress=self._tile_progress(job, i, len(job.payloads))))
        return out

    # ---- training ---------------------------------------------------------------------
    def _train(self, job: Job) -> tuple[dict, list]:
        from training.loop import Trainer
        from training.texture import TextureTask, TrainConfig

        f, name = job.fields, job.fields["name"]
        task = TextureTask(job.extra["exemplar"], TrainConfig(**job.extra["config"]),
                           source=f["source"], licence=f["licence"])
        trainer = Trainer(task, name, Path(job.extra["run_dir"]), preset_dir=data_dir() / "presets",
                          device=self.device, log=lambda msg: self._train_log(job, msg),
                          show_progress=False)
        first_step: list[int] = []

        def on_step(done: int, total: int, figures: dict) -> None:
            # done/total: steps, or seconds of training time with a minutes budget
            if not first_step:
                first_step.append(trainer.step)
                if f["resume"]:
                    self.book.note(job, resumed_from=trainer.step - 1)
            self.book.progress(job, done, total, figures)
            self._event(job)
            # Synthesis waiting behind this run goes now, between two steps.
            while (other := self._next_inference()) is not None:
                self._run(other)

        folder = trainer.run(resume=f["resume"], fresh=f["fresh"], on_step=on_step,
                             should_stop=lambda: job.cancel.is_set() or self._stopping)
        return {"preset": name, "steps": trainer.step, "path": str(folder)}, []
