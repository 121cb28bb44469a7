"""Train preset from image: send an image to the engine as a training exemplar. The
engine trains in the background (minutes to hours); a timer follows the job without
blocking: a progress bar, the latest preview image and Cancel in the panel, and the new
preset listed when it is done."""
from __future__ import annotations

import tempfile
from pathlib import Path

import bpy
import bpy.utils.previews

from .connection import LINK, QUICK_TIMEOUT, EngineError, client, protocol
from .images import image_rgba, save_png
from .jobs import EngineJob
from .preferences import addon_prefs
from .properties import STATE
from .screens import redraw
from .train_progress import (FINISHED_STATES, PREVIEW_SETTLE_SECONDS, engine_data_dir, job_fraction, job_message,
                             job_notes, latest_preview, preview_folder, train_fields)

WATCH_SECONDS = 1.0


def exemplar_bytes(image: bpy.types.Image) -> bytes:
    """PNG or JPEG bytes of an image: its own file when it has one, else its pixels as PNG
    (RGBA where the image has transparent pixels)."""
    path = Path(bpy.path.abspath(image.filepath)) if image.filepath else None
    if image.packed_file is None and path is not None and path.is_file() and image.file_format in ("PNG", "JPEG"):
        return path.read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "exemplar.png"
        rgb, alpha = image_rgba(image)
        save_png(target, rgb, alpha=alpha)   # with its transparency, which the engine crops away
        return target.read_bytes()


class TrainWatch:
    """Follows one training job with non-blocking status requests; finds its newest preview."""

    def __init__(self, endpoint: str, job: str, data_dir: Path | None = None):
        self.endpoint, self.job = endpoint, job
        self.data_dir = engine_data_dir() if data_dir is None else Path(data_dir)
        self.rid: str | None = None
        self.record: dict | None = None
        self.fraction = 0.0
        self.finished = False
        self.preview: Path | None = None

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
            self.finished = True
            return True
        self.record = reply.header.get("job") or {}
        self.fraction = job_fraction(self.record)
        STATE.train_message = job_message(self.record)
        self.finished = self.record.get("state") in FINISHED_STATES
        name = self.record.get("name")
        if isinstance(name, str) and protocol.NAME_RE.match(name):  # a path part from the wire: checked
            # once finished nothing is being written any more: the newest file is whole
            settle = 0.0 if self.finished else PREVIEW_SETTLE_SECONDS
            self.preview = latest_preview(preview_folder(self.data_dir, name, self.record),
                                          settle=settle) or self.preview
        return self.finished


class Following:
    """The training job the panel follows (one at a time): its watch, the timer that steps
    it (interactive Blender only: timers do not run in the background, where a script
    calls ``tick``), and the latest preview as a panel icon."""

    def __init__(self):
        self.watch: TrainWatch | None = None
        self.icons = None  # a bpy.utils.previews collection, made on the first preview
        self.icon_path: Path | None = None
        self._tick = self.tick  # one bound method, so the timer can be found and removed

    def follow(self, watch: TrainWatch) -> None:
        self.forget()
        self.watch = watch
        if not bpy.app.background:  # persistent: the job goes on when another file is opened
            bpy.app.timers.register(self._tick, first_interval=WATCH_SECONDS, persistent=True)

    def tick(self) -> float | None:
        watch = self.watch
        if watch is None:
            return None
        try:
            done = watch.step()
        except EngineError as exc:
            STATE.train_message, watch.finished, done = exc.message, True, True
        if watch.preview is not None and watch.preview != self.icon_path:
            self._show(watch.preview)
        redraw("IMAGE_EDITOR")
        if not done:
            return WATCH_SECONDS
        if watch.record and watch.record.get("state") == "done":
            LINK.refresh(watch.endpoint)  # the new preset appears in the list
        return None

    def _show(self, path: Path) -> None:
        if self.icons is None:
            self.icons = bpy.utils.previews.new()
        self.icons.clear()  # only the latest is kept
        self.icons.load(str(path), str(path), "IMAGE")  # positional: 5.3 renamed the keywords
        self.icon_path = path

    def icon(self):
        """The latest preview's ImagePreview, or None."""
        if self.icons is None or self.icon_path is None:
            return None
        return self.icons.get(str(self.icon_path))

    def forget(self) -> None:
        if bpy.app.timers.is_registered(self._tick):
            bpy.app.timers.unregister(self._tick)
        if self.icons is not None:
            bpy.utils.previews.remove(self.icons)
        self.watch, self.icons, self.icon_path = None, None, None


FOLLOWING = Following()


def draw_train_status(layout) -> None:
    """Under Train: while a job runs, its progress bar and Cancel; then its last word; and
    its latest preview."""
    watch = FOLLOWING.watch
    if watch is not None and not watch.finished:
        layout.progress(factor=watch.fraction, text=STATE.train_message or "training: queued")
        layout.operator("mgan.cancel_training", icon="CANCEL")
    elif STATE.train_message:
        layout.label(text=STATE.train_message)
    if watch is not None and watch.record:
        for note in job_notes(watch.record):  # what `mgan train` would print: a photo scaled down, ...
            layout.label(text=note, icon="INFO")
    if STATE.train_conflict and (watch is None or watch.finished):
        # a run of that name has a checkpoint (a cancelled, killed or finished run)
        row = layout.row(align=True)
        row.operator("mgan.train", text=f"Resume '{STATE.train_conflict}'", icon="PLAY").mode = "RESUME"
        row.operator("mgan.train", text="Start over", icon="FILE_REFRESH").mode = "FRESH"
    icon = FOLLOWING.icon()
    if icon is not None and icon.icon_id:  # headless Blender makes no icons
        layout.template_icon(icon_value=icon.icon_id, scale=8.0)


class MGAN_OT_train(bpy.types.Operator):
    """Train a new preset from the chosen image (the engine trains in the background)"""
    bl_idname = "mgan.train"
    bl_label = "Train preset from image"

    mode: bpy.props.EnumProperty(
        name="Run", default="NEW", options={"SKIP_SAVE"},
        items=(("NEW", "New", "Train a new run (refused where a run of that name has a checkpoint)"),
               ("RESUME", "Resume", "Continue the run of that name from its checkpoint"),
               ("FRESH", "Start over", "Start the run of that name over, dropping its checkpoint")))

    @classmethod
    def poll(cls, context):
        return context.scene.mgan.train_image is not None

    def execute(self, context):
        settings = context.scene.mgan
        name = settings.train_name.strip().lower()
        if not protocol.NAME_RE.match(name):
            self.report({"ERROR"}, f"preset name '{name}': use 1-64 of a-z 0-9 _ -, starting with a letter or digit")
            return {"CANCELLED"}
        fields = train_fields(name, settings.train_image.name, settings.train_steps, settings.train_minutes,
                              settings.train_exemplar_size, settings.train_crop, settings.train_batch, self.mode,
                              settings.train_repeat)
        if "repeat" in fields and not protocol.REPEAT_RE.match(fields["repeat"]):
            self.report({"ERROR"}, f"repeat '{settings.train_repeat}': WIDTHxHEIGHT in pixels (e.g. 226x292), "
                                   "auto, or empty")
            return {"CANCELLED"}
        endpoint = addon_prefs(context).endpoint
        try:
            data = exemplar_bytes(settings.train_image)
            job = EngineJob(LINK, endpoint, "train", fields,
                            [protocol.EncodedImage(client.image_format(data), data)]).start().run()
        except EngineError as exc:
            # (a run that is training now is a conflict too, with another reason: nothing to offer)
            if exc.code == protocol.CONFLICT and exc.reason == protocol.HAS_CHECKPOINT and self.mode == "NEW":
                STATE.train_conflict = name  # the panel offers Resume and Start over
                STATE.train_message = f"'{name}' has a checkpoint: resume it or start over"
                self.report({"ERROR"}, f"a training run '{name}' already has a checkpoint: "
                                       "Resume it or Start over (below), or choose another name")
            else:
                self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        except (OSError, RuntimeError) as exc:
            self.report({"ERROR"}, f"could not read image '{settings.train_image.name}': {exc}")
            return {"CANCELLED"}
        STATE.train_conflict = ""
        STATE.train_job = job.reply.header["job"]
        STATE.train_message = f"training '{name}': queued"
        FOLLOWING.follow(TrainWatch(endpoint, STATE.train_job))
        self.report({"INFO"}, f"training '{name}' started (job {STATE.train_job})")
        return {"FINISHED"}


class MGAN_OT_cancel_training(bpy.types.Operator):
    """Stop the training job: the engine stops after the current step and keeps its checkpoint"""
    bl_idname = "mgan.cancel_training"
    bl_label = "Cancel training"

    @classmethod
    def poll(cls, context):
        return FOLLOWING.watch is not None and not FOLLOWING.watch.finished

    def execute(self, context):
        watch = FOLLOWING.watch
        try:  # the engine answers cancel at once, whatever it computes
            job = EngineJob(LINK, addon_prefs(context).endpoint, "cancel", {"job": watch.job},
                            timeout=QUICK_TIMEOUT).start().run()
        except EngineError as exc:
            self.report({"ERROR"}, exc.message)
            return {"CANCELLED"}
        state = job.reply.header.get("state")
        STATE.train_message = f"training {watch.job}: {state}"  # the watch's next status says more
        self.report({"INFO"}, f"training job {watch.job}: {state}")
        return {"FINISHED"}
