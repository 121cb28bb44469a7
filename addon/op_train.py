"""Train preset from image: send an image to the engine as a training exemplar. The
engine trains in the background (minutes to hours); a timer follows the job without
blocking and lists the new preset when it is done."""
from __future__ import annotations

import tempfile
from pathlib import Path

import bpy

from .connection import LINK, EngineError, client, protocol
from .images import image_rgb, save_png
from .jobs import EngineJob
from .preferences import addon_prefs
from .properties import STATE

WATCH_SECONDS = 2.0
FINISHED_STATES = ("done", "failed", "cancelled", "interrupted")


def exemplar_bytes(image: bpy.types.Image) -> bytes:
    """PNG or JPEG bytes of an image: its own file when it has one, else its pixels as PNG."""
    path = Path(bpy.path.abspath(image.filepath)) if image.filepath else None
    if image.packed_file is None and path is not None and path.is_file() and image.file_format in ("PNG", "JPEG"):
        return path.read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "exemplar.png"
        save_png(target, image_rgb(image))
        return target.read_bytes()


class TrainWatch:
    """Follows one training job with non-blocking status requests from a timer."""

    def __init__(self, endpoint: str, job: str):
        self.endpoint, self.job = endpoint, job
        self.rid: str | None = None
        self.record: dict | None = None

    def step(self) -> bool:
        """True once the job has finished (or cannot be followed any more)."""
        if self.rid is None:
            self.rid = LINK.client(self.endpoint).send("status", {"job": self.job}, timeout=10.0)
            return False
        reply = LINK.take(self.rid)
        if reply is None:
            return False
        self.rid = None
        if not reply.header.get("ok"):
            STATE.train_message = f"training {self.job}: {reply.header['error']['message']}"
            return True
        self.record = reply.header.get("job") or {}
        progress = self.record.get("progress") or {}
        state = self.record.get("state", "?")
        done, total = progress.get("done", 0), progress.get("total", "?")
        STATE.train_message = f"training '{self.record.get('name')}': {state} {done}/{total}"
        if state == "failed":
            STATE.train_message += f": {self.record.get('error')}"
        return state in FINISHED_STATES


def _watch_timer(watch: TrainWatch):
    def tick():
        try:
            done = watch.step()
        except EngineError as exc:
            STATE.train_message, done = exc.message, True
        if done:
            if watch.record and watch.record.get("state") == "done":
                LINK.refresh(watch.endpoint)  # the new preset appears in the list
            return None
        return WATCH_SECONDS
    return tick


class MGAN_OT_train(bpy.types.Operator):
    """Train a new preset from the chosen image (the engine trains in the background)"""
    bl_idname = "mgan.train"
    bl_label = "Train preset from image"

    @classmethod
    def poll(cls, context):
        return context.scene.mgan.train_image is not None

    def execute(self, context):
        settings = context.scene.mgan
        name = settings.train_name.strip().lower()
        if not protocol.NAME_RE.match(name):
            self.report({"ERROR"}, f"preset name '{name}': use 1-64 of a-z 0-9 _ -, starting with a letter or digit")
            return {"CANCELLED"}
        endpoint = addon_prefs(context).endpoint
        fields = {"name": name, "steps": settings.train_steps, "exemplar_size": settings.train_exemplar_size,
                  "crop": settings.train_crop, "batch": settings.train_batch,
                  "source": f"Blender image '{settings.train_image.name}'"}
        try:
            data = exemplar_bytes(settings.train_image)
            job = EngineJob(LINK, endpoint, "train", fields,
                            [protocol.EncodedImage(client.image_format(data), data)]).start().run()
        except EngineError as exc:
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        except (OSError, RuntimeError) as exc:
            self.report({"ERROR"}, f"could not read image '{settings.train_image.name}': {exc}")
            return {"CANCELLED"}
        STATE.train_job = job.reply.header["job"]
        STATE.train_message = f"training '{name}': queued"
        if not bpy.app.background:  # timers only run with an event loop
            bpy.app.timers.register(_watch_timer(TrainWatch(endpoint, STATE.train_job)),
                                    first_interval=WATCH_SECONDS)
        self.report({"INFO"}, f"training '{name}' started (job {STATE.train_job})")
        return {"FINISHED"}

