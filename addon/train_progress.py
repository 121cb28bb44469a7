"""What the panel shows of a training job, from its status record and its run folder. No bpy.

The status record says how far the job is (``progress``: done/total) and where its
previews are (``previews``, the folder of ``step_<step>.png`` files; the engine is local).
A record without it (an older engine) falls back to the folder found the way the engine
finds it: ``MGAN_HOME``, else ~/.local/share/mgan (engine.presets.data_dir, mirrored here
because the add-on cannot import the engine)."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Mapping

FINISHED_STATES = ("done", "failed", "cancelled", "interrupted")
PREVIEW_RE = re.compile(r"step_(\d+)\.png")
# A preview younger than this may still be being written (the trainer writes it in place).
PREVIEW_SETTLE_SECONDS = 0.5
TRAIN_MINUTES = 5.0  # the default budget, as the command line's (training.texture.TrainConfig.minutes)
TRAIN_MODES = ("NEW", "RESUME", "FRESH")  # a new run; resume the run of that name; start it over


def engine_data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The engine's data folder as the engine computes it (engine.presets.data_dir)."""
    return Path(environ.get("MGAN_HOME") or os.path.expanduser("~/.local/share/mgan"))


def preview_folder(data_dir: Path, name: str, record: Mapping | None = None) -> Path:
    """The folder the status record names (engines from protocol 2 on say it), else the one
    derived from the data folder."""
    named = record.get("previews") if isinstance(record, Mapping) else None
    if isinstance(named, str) and named and os.path.isabs(named):
        return Path(named)
    return Path(data_dir) / "runs" / name / "previews"


def latest_preview(folder: Path, now: float | None = None,
                   settle: float = PREVIEW_SETTLE_SECONDS) -> Path | None:
    """The preview of the highest step that has settled, or None (no folder, none yet)."""
    now = time.time() if now is None else now
    best: tuple[int, Path] | None = None
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    for entry in entries:
        found = PREVIEW_RE.fullmatch(entry.name)
        if not found:
            continue
        try:
            if now - entry.stat().st_mtime < settle:
                continue
        except OSError:  # removed meanwhile (a fresh run)
            continue
        step = int(found.group(1))
        if best is None or step > best[0]:
            best = (step, Path(entry.path))
    return best[1] if best else None


def job_fraction(record: Mapping) -> float:
    """done/total of a status record, in [0, 1] (0 when it says nothing usable)."""
    progress = record.get("progress")
    if not isinstance(progress, Mapping):
        return 0.0
    done, total = progress.get("done"), progress.get("total")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (done, total)) or total <= 0:
        return 0.0
    return min(1.0, max(0.0, done / total))


def _clock(seconds) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def job_message(record: Mapping) -> str:
    """The panel's line for a status record: "training 'wood': running 40/300" (steps), or
    with a time budget (its figures carry the step) "running 1:20/5:00, step 240"."""
    progress = record.get("progress") if isinstance(record.get("progress"), Mapping) else {}
    figures = progress.get("figures") if isinstance(progress.get("figures"), Mapping) else {}
    done, total, step = progress.get("done", 0), progress.get("total", "?"), figures.get("step")
    # (the engine's figures are floats: a step arrives as 240.0)
    timed = all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer()
                for v in (done, total, step))
    where = f"{_clock(done)}/{_clock(total)}, step {int(step)}" if timed else f"{done}/{total}"
    message = f"training '{record.get('name')}': {record.get('state', '?')} {where}"
    if record.get("state") == "failed":
        error = record.get("error")
        message += f": {error.get('message') if isinstance(error, Mapping) else error}"
    return message


def train_fields(name: str, image_name: str, steps: int = 0, minutes: float = TRAIN_MINUTES,
                 exemplar_size: int = 0, crop: int = 128, batch: int = 4, mode: str = "NEW",
                 repeat: str = "") -> dict:
    """The train request's fields from the panel's settings. Steps 0: the time budget in
    minutes (the engine's previews every 100 steps); exemplar size 0: the image at its own
    pixel size (the engine scales down only images above 512 px, and says so): the same
    defaults as ``mgan train``. ``mode``: where a run of that name has a checkpoint (the
    engine refuses a new one, CONFLICT), RESUME continues it and FRESH starts it over.
    ``repeat``: a patterned image's repeat, "WIDTHxHEIGHT" px or "auto" (``mgan train
    --repeat``); empty: none."""
    if mode not in TRAIN_MODES:
        raise ValueError(f"train mode must be one of {', '.join(TRAIN_MODES)}, got {mode!r}")
    fields = {"name": name, "crop": int(crop), "batch": int(batch), "source": f"Blender image '{image_name}'"}
    if mode != "NEW":
        fields["resume" if mode == "RESUME" else "fresh"] = True
    if steps > 0:
        fields.update(steps=int(steps), preview_every=preview_every(steps))
    else:
        fields["minutes"] = float(minutes)
    if exemplar_size > 0:
        fields["exemplar_size"] = int(exemplar_size)
    if repeat.strip():
        fields["repeat"] = repeat.strip().lower().replace(" ", "")
    return fields


def job_notes(record: Mapping, limit: int = 6) -> list[str]:
    """The lines the run told its user (engine status ``notes``; none from older engines),
    at most ``limit``, for the panel."""
    notes = record.get("notes") if isinstance(record, Mapping) else None
    return [n for n in notes if isinstance(n, str)][:limit] if isinstance(notes, list) else []


def preview_every(steps: int) -> int:
    """Steps between two previews: about 50 over a run, at most the engine's default 100
    (a preview costs one 256 px decode, a small share of that many training steps), so a
    short run shows progress too."""
    return max(1, min(100, int(steps) // 50))
