"""The engine's job book: every synthesize, stylize and train request becomes a Job here.

The IO thread adds jobs, answers ``status`` and ``cancel`` from the book and reads what
the worker writes; the worker moves jobs through their states. One lock guards every
change, so ``status`` always sees a consistent job.

Training jobs outlive the process: their record (JSON, no pickle) is written under
``data_dir()/jobs/<id>.json`` at every state change, and ``unfinished_training`` hands a
restarted engine the ones it must resume from their checkpoints.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .protocol import CANCELLED, CONFLICT, ENGINE_ERROR, ID_IN_USE, TRAINING, UNKNOWN_JOB, ProtocolError

ACTIVE = ("queued", "running")
# A restarted engine resumes these; "interrupted" is a training job stopped by a shutdown.
RESUMABLE = ("queued", "running", "interrupted")
RECORD_VERSION = 1
# A training job that was running when the engine died this many times is not resumed
# again (it may be what kills the engine, e.g. out of memory).
MAX_CRASHES = 3
# Finished synthesize/stylize jobs remembered for ``status``.
KEEP_FINISHED = 256
NOTES_KEPT = 20      # a training job's first lines to its user (a run says 3-6)


def new_job_id() -> str:
    return "job-" + uuid.uuid4().hex[:16]


@dataclass
class Job:
    id: str
    kind: str                                   # "synthesize", "stylize" or "train"
    fields: dict                                # the validated request fields
    state: str = "queued"
    done: int = 0
    total: int = 0
    figures: dict = field(default_factory=dict)
    error: dict | None = None
    result: dict | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    crashes: int = 0                            # times the engine died while it ran
    resumed_from: int | None = None             # training: the checkpoint step it continued from
    extra: dict = field(default_factory=dict)   # training: config, exemplar path (persisted)
    notes: list = field(default_factory=list)   # training: what the run told its user (a photo scaled down, ...)
    # Not persisted: who asked, and what the worker needs.
    identity: bytes | None = field(default=None, repr=False)
    request_id: str | None = None
    payloads: list = field(default_factory=list, repr=False)
    preset: Any = field(default=None, repr=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    last_event: float = 0.0

    def public(self) -> dict:
        """What ``status`` reports."""
        return {"id": self.id, "kind": self.kind, "state": self.state, "name": self.fields.get("name")
                or self.fields.get("preset"), "progress": {"done": self.done, "total": self.total,
                                                           "figures": self.figures},
                "error": self.error, "result": self.result, "created": self.created,
                "updated": self.updated, "resumed_from": self.resumed_from,
                # where a training run writes its preview images (the engine is local), and
                # what the run said: the lines `mgan train` prints
                **({"previews": str(Path(self.extra["run_dir"]) / "previews")}
                   if self.kind == "train" and "run_dir" in self.extra else {}),
                **({"notes": list(self.notes)} if self.kind == "train" else {})}

    def record(self) -> dict:
        return {"version": RECORD_VERSION, "id": self.id, "kind": self.kind, "fields": self.fields,
                "state": self.state, "done": self.done, "total": self.total, "error": self.error,
                "result": self.result, "created": self.created, "updated": self.updated,
                "crashes": self.crashes, "resumed_from": self.resumed_from, "extra": self.extra,
                "notes": self.notes}


class JobBook:
    """Jobs by id, guarded by one lock; training records mirrored to ``folder``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._finished: OrderedDict[str, Job] = OrderedDict()

    # ---- adding and looking up --------------------------------------------------------
    def add(self, job: Job) -> Job:
        with self._lock:
            if job.id in self._jobs:
                raise ProtocolError(CONFLICT, f"job id {job.id!r} is in use by a {self._jobs[job.id].state} job; "
                                              "send a fresh request id", reason=ID_IN_USE)
            self._finished.pop(job.id, None)  # a client that reuses ids gets the newest job's status
            if job.kind == "train":
                self._check_idle(job.fields["name"])
            self._jobs[job.id] = job
            self._persist(job)
        return job

    def check_idle(self, name: str) -> None:
        """A conflict (reason ``training``) when a run of this name is queued or training."""
        with self._lock:
            self._check_idle(name)

    def _check_idle(self, name: str) -> None:
        busy = [j for j in self._jobs.values() if j.kind == "train" and j.fields["name"] == name and j.state in ACTIVE]
        if busy:
            raise ProtocolError(CONFLICT, f"training {name!r} is already {busy[0].state} as job {busy[0].id}; "
                                          "cancel it first or wait", reason=TRAINING)

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id) or self._finished.get(job_id)
        if job is None:
            raise ProtocolError(UNKNOWN_JOB, f"no job {job_id!r} on this engine (finished synthesis jobs are "
                                             f"forgotten after {KEEP_FINISHED} more)")
        return job

    def snapshot(self, job_id: str | None = None) -> dict | list[dict]:
        if job_id is not None:
            job = self.get(job_id)
            with self._lock:
                return job.public()
        with self._lock:
            return [j.public() for j in (*self._jobs.values(), *self._finished.values())]

    # ---- state changes ----------------------------------------------------------------
    def start(self, job: Job) -> bool:
        """queued -> running; False if it was cancelled (or finished) meanwhile."""
        with self._lock:
            if job.state != "queued":
                return False
            job.state, job.updated = "running", time.time()
            self._persist(job)
            return True

    def progress(self, job: Job, done: int, total: int, figures: dict | None = None) -> None:
        with self._lock:
            job.done, job.total, job.updated = done, total, time.time()
            if figures is not None:
                # (a step whose loss was not finite is gone back from; its NaN would make the
                # job's status unencodable: replies are strict JSON, protocol.encode)
                job.figures = {k: x if math.isfinite(x := float(v)) else None for k, v in figures.items()}

    def note(self, job: Job, **changes: Any) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(job, k, v)
            self._persist(job)

    def add_note(self, job: Job, line: str) -> None:
        """One line the training run told its user (kept: the first NOTES_KEPT)."""
        with self._lock:
            if len(job.notes) < NOTES_KEPT:
                job.notes.append(str(line)[:500])
                self._persist(job)

    def finish(self, job: Job, state: str, error: dict | None = None, result: dict | None = None) -> None:
        with self._lock:
            job.state, job.error, job.result, job.updated = state, error, result, time.time()
            if state == "done":
                job.total = job.total or 1  # small canvases decode in one piece, unreported
                job.done = job.total
            job.payloads = []  # inputs can be large; the job record outlives them
            self._persist(job)
            if job.kind != "train" and state not in ACTIVE:
                self._jobs.pop(job.id, None)
                self._finished[job.id] = job
                while len(self._finished) > KEEP_FINISHED:
                    self._finished.popitem(last=False)

    def cancel(self, job_id: str) -> tuple[Job, str]:
        """Cancel a job: a queued one at once, a running one at its next check (the worker
        finishes it). Returns the job and its state as seen now."""
        job = self.get(job_id)
        with self._lock:
            if job.state == "queued":
                job.state, job.updated = "cancelled", time.time()
                job.error = {"code": CANCELLED, "message": f"job {job.id} was cancelled before it started"}
                self._persist(job)
            elif job.state == "running":
                job.cancel.set()
                return job, "cancelling"
            return job, job.state

    # ---- persistence (training jobs only) ---------------------------------------------
    def _persist(self, job: Job) -> None:
        if job.kind != "train":
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{job.id}.json"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(job.record(), indent=1), encoding="utf-8")
        os.replace(tmp, path)  # a kill never leaves half a record

    def load_training(self, log=print) -> list[Job]:
        """Read the training records a previous engine left; return the ones to resume
        (queued, running or interrupted), re-queued with ``resume`` set."""
        found = []
        for path in sorted(self.folder.glob("job-*.json")) if self.folder.is_dir() else ():
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
                job = Job(id=rec["id"], kind=rec["kind"], fields=rec["fields"], state=rec["state"],
                          done=rec["done"], total=rec["total"], error=rec["error"], result=rec["result"],
                          created=rec["created"], updated=rec["updated"], crashes=rec["crashes"],
                          resumed_from=rec["resumed_from"], extra=rec["extra"], notes=list(rec.get("notes", [])))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log(f"ignoring unreadable job record {path}: {exc}")
                continue
            if job.kind != "train":
                continue
            with self._lock:
                self._jobs[job.id] = job
            if job.state not in RESUMABLE:
                continue
            if job.state == "running":
                job.crashes += 1
            if job.crashes >= MAX_CRASHES:
                self.finish(job, "failed", {"code": ENGINE_ERROR, "message": f"the engine died {job.crashes} "
                                            "times while this job trained; it is not resumed again"})
                continue
            job.fields["resume"], job.fields["fresh"] = True, False
            self.note(job, state="queued")
            found.append(job)
        return found
