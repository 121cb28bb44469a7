"""The add-on's timer-driven logic without Blender: the live preview's state machine (with
stand-in jobs, then against a real engine), what the panel shows of a training job, and
where the work of Stylise Rendered Frames runs (render_queue)."""
from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace as NS

import numpy as np
import pytest

from tests.engine_proc import EngineProcess, engine_home
from tests.support import addon_core

live, train_progress, render_queue, jobs, connection = addon_core(
    "live_preview", "train_progress", "render_queue", "jobs", "connection")
P = connection.protocol


# ---- the live preview's state machine, with stand-in jobs ------------------------------------
class FakeJob:
    """A request in flight that the test answers (``answer``) or fails (``fail``)."""

    def __init__(self, request):
        self.request, self.reply, self.error = request, None, None
        self.cancelled, self.steps = False, 0

    def step(self, wait=0.0):
        assert not self.cancelled, "a cancelled job is never stepped again"
        self.steps += 1
        if self.error is not None:
            raise self.error
        return self.reply is not None

    def cancel(self):
        self.cancelled = True

    def answer(self, rgb=None):
        r = self.request
        rgb = np.full((r.height, r.width, 3), r.seed % 256, np.uint8) if rgb is None else rgb
        self.reply = NS(header={"ok": True, "seconds": 0.25}, payloads=[rgb])

    def fail(self, message):
        self.error = connection.EngineError(P.ENGINE_ERROR, message)


class Engine:
    """Starts FakeJobs and remembers them, in order."""

    def __init__(self):
        self.jobs: list[FakeJob] = []
        self.refuse: str | None = None

    def __call__(self, request):
        if self.refuse:
            raise connection.EngineTimeout(self.refuse)
        self.jobs.append(FakeJob(request))
        return self.jobs[-1]


def _req(seed=0, preset="stone", width=1024, height=1024, scale=0.0, tileable=True):
    return live.preview_request(preset, width, height, seed, scale, tileable, "NONE")


def test_a_newer_change_cancels_the_request_in_flight_and_only_the_latest_lands():
    engine = Engine()
    machine = live.LivePreview(engine)
    machine.want(_req(1))
    assert machine.step() is None and [j.request.seed for j in engine.jobs] == [1]
    for _ in range(3):  # while it computes: nothing more is sent
        assert machine.step() is None
    assert len(engine.jobs) == 1 and machine.busy
    # a burst: each change cancels the one in flight and sends the newest, in the same tick
    for seed in (2, 3, 4):
        machine.want(_req(seed))
        assert machine.step() is None
    assert [j.request.seed for j in engine.jobs] == [1, 2, 3, 4]
    assert [j.cancelled for j in engine.jobs] == [True, True, True, False]
    assert (machine.sent, machine.cancelled) == (4, 3)
    # the stale ones answer anyway (the engine had started them): never stepped, never shown
    for job in engine.jobs[:3]:
        job.answer()
    assert machine.step() is None and machine.shown is None
    engine.jobs[3].answer()
    landed = machine.step()
    assert landed.request == _req(4) and landed.seconds == 0.25 and int(landed.rgb[0, 0, 0]) == 4
    assert machine.shown == _req(4) and machine.landed == 1 and not machine.busy
    for _ in range(3):  # the same settings again: nothing to do
        assert machine.step() is None
    assert len(engine.jobs) == 4


def test_going_back_to_what_is_shown_cancels_without_sending_and_stop_cancels():
    engine = Engine()
    machine = live.LivePreview(engine)
    machine.want(_req(1))
    machine.step()
    engine.jobs[0].answer()
    assert machine.step().request == _req(1)
    machine.want(_req(2))
    machine.step()
    machine.want(_req(1))  # back before seed 2 came: the image already shows seed 1
    assert machine.step() is None and engine.jobs[1].cancelled and len(engine.jobs) == 2
    assert machine.shown == _req(1) and not machine.busy
    machine.want(None)  # no preset any more: nothing sent
    assert machine.step() is None and len(engine.jobs) == 2
    machine.want(_req(5))
    machine.step()
    machine.stop()  # the toggle went off
    assert engine.jobs[2].cancelled and not machine.busy and machine.shown is None
    machine.want(_req(1))  # on again: the same settings are drawn again
    machine.step()
    assert engine.jobs[3].request == _req(1)


def test_errors_are_shown_and_not_retried_until_the_settings_change():
    engine = Engine()
    machine = live.LivePreview(engine)
    engine.refuse = "the engine at tcp://x did not answer hello within 3 s"
    machine.want(_req(1))
    assert machine.step() is None and "did not answer hello" in machine.error
    assert machine.step() is None and machine.sent == 0  # no retry loop against a dead engine
    engine.refuse = None
    machine.want(_req(2))
    machine.step()
    engine.jobs[0].fail("preset 'stone' failed to load")
    assert machine.step() is None and machine.error == "preset 'stone' failed to load" and not machine.busy
    machine.step()
    assert len(engine.jobs) == 1
    machine.want(_req(3))
    machine.step()
    engine.jobs[1].answer(np.zeros((8, 8, 3), np.uint8))  # not the size asked for: refused
    assert machine.step() is None and "for a 256x256 preview" in machine.error and machine.shown is None
    machine.want(_req(4))
    machine.step()
    engine.jobs[2].answer()
    assert machine.step().request == _req(4) and machine.error == ""


def test_preview_size_keeps_the_aspect_and_the_engines_minimum():
    assert live.preview_size(1024, 1024) == (256, 256)
    assert live.preview_size(4096, 1024) == (256, 64)
    assert live.preview_size(600, 800) == (192, 256)
    assert live.preview_size(16384, 8) == (256, 8)  # 0.125 px rounds up to the engine's minimum
    assert live.preview_size(100, 50, side=64) == (64, 32)
    assert _req(preset="NONE") is None and _req(preset="") is None
    request = _req(7, width=2048, height=1024, scale=24.0, tileable=False)
    assert (request.width, request.height, request.seed) == (256, 128, 7)
    fields = request.fields()
    assert fields["noise"] == {"scale": 24.0} and fields["tileable"] is False and fields["events"] is False
    P.decode_request(P.encode({"protocol": P.PROTOCOL_VERSION, "op": "synthesize", "id": "x1", **fields}, []),
                     P.Limits())


def test_editors_showing_another_image_are_left_alone():
    preview, other = object(), object()
    empty, showing, users = NS(image=None), NS(image=preview), NS(image=other)
    assert live.editors_to_show([empty, showing, users], preview) == [empty, showing]


# ---- the live preview against a real engine ----------------------------------------------------
@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    proc = EngineProcess(engine_home(tmp_path_factory.mktemp("engine")), "tcp://127.0.0.1:*").start()
    yield proc
    proc.kill()


class RecordedJob(jobs.EngineJob):
    """An EngineJob that remembers the stage it was cancelled in."""
    cancelled_in = None

    def cancel(self):
        self.cancelled_in = self.stage
        super().cancel()


@pytest.mark.slow
def test_a_burst_against_the_engine_shows_only_the_last_settings(engine):
    """Slider changes faster than previews come: each stale request is cancelled (on the
    engine too, when it had been sent there), only the last request's pixels land, and they
    are the engine's bytes for it."""
    endpoint = engine.connect_address()
    link = connection.Link()
    started: list[RecordedJob] = []

    def start(request):
        started.append(RecordedJob(link, endpoint, "synthesize", request.fields()).start())
        return started[-1]

    machine = live.LivePreview(start)
    try:
        landed = []

        def tick():
            got = machine.step()
            if got is not None:
                landed.append(got)
            time.sleep(0.02)

        t_end = time.monotonic() + 120
        for seed in range(1, 9):
            machine.want(_req(seed, preset="tiny", width=512, height=256))
            # the next change comes as soon as this request is on the engine (past hello):
            # the tick that would take its reply cancels it first
            def on_engine():
                return started and started[-1].fields["seed"] == seed and started[-1].stage == "work"
            while seed < 8 and not on_engine() and time.monotonic() < t_end:
                tick()
        while machine.busy and time.monotonic() < t_end:
            tick()
        last = _req(8, preset="tiny", width=512, height=256)
        assert machine.shown == last and [got.request for got in landed] == [last]
        assert machine.sent == len(started) == 8 and machine.cancelled == 7
        assert [j.cancelled_in for j in started] == ["work"] * 7 + [None]
        with connection.EngineClient(endpoint) as c:
            np.testing.assert_array_equal(landed[0].rgb, c.synthesize("tiny", 256, 128, seed=8))
            # cancelled while queued or running; or it had finished before the cancel came
            states = [c.status(j.rid)["state"] for j in started[:-1]]
        assert set(states) <= {"cancelled", "done"}
        time.sleep(0.3)
        link.take("nothing")  # the stale replies that came are dropped, not kept for nobody
        assert link._done == {}
    finally:
        link.close()


# ---- a training job in the panel -----------------------------------------------------------------
def test_the_engines_data_folder_is_found_as_the_engine_finds_it(monkeypatch, tmp_path):
    from engine.presets import data_dir

    monkeypatch.setenv("MGAN_HOME", str(tmp_path / "home"))
    assert train_progress.engine_data_dir() == data_dir() == tmp_path / "home"
    monkeypatch.delenv("MGAN_HOME")
    assert train_progress.engine_data_dir() == data_dir()
    assert train_progress.engine_data_dir({"MGAN_HOME": "/x"}) == train_progress.Path("/x")
    assert train_progress.preview_folder(tmp_path, "wood") == tmp_path / "runs" / "wood" / "previews"
    # an engine that names its folder is believed (its MGAN_HOME may differ from Blender's)
    named = {"previews": str(tmp_path / "elsewhere" / "previews")}
    assert train_progress.preview_folder(tmp_path, "wood", named) == tmp_path / "elsewhere" / "previews"
    for bad in ({"previews": "relative/previews"}, {"previews": 3}, {"previews": ""}, None):
        assert train_progress.preview_folder(tmp_path, "wood", bad) == tmp_path / "runs" / "wood" / "previews"


def test_the_latest_settled_preview_is_shown(tmp_path):
    folder = tmp_path / "previews"
    assert train_progress.latest_preview(folder) is None  # no folder yet
    folder.mkdir()
    now = time.time()
    for step, age in ((6, 30), (12, 20), (100, 10), (18, 0.1)):  # step 18 is being written
        path = folder / f"step_{step:06d}.png"
        path.write_bytes(b"png")
        os.utime(path, (now - age, now - age))
    (folder / "step_999999.png.tmp").write_bytes(b"")
    (folder / "notes.txt").write_bytes(b"")
    assert train_progress.latest_preview(folder, now=now) == folder / "step_000100.png"  # by step, not name
    (folder / "step_000100.png").unlink()
    assert train_progress.latest_preview(folder, now=now) == folder / "step_000012.png"
    assert train_progress.latest_preview(folder, now=now, settle=0.0) == folder / "step_000018.png"


def test_progress_and_message_from_a_status_record():
    record = {"name": "wood", "state": "running", "progress": {"done": 30, "total": 120, "figures": {}}}
    assert train_progress.job_fraction(record) == 0.25
    assert train_progress.job_message(record) == "training 'wood': running 30/120"
    for bad in ({}, {"progress": None}, {"progress": {"done": 1, "total": 0}},
                {"progress": {"done": "1", "total": 2}}, {"progress": {"done": True, "total": 2}}):
        assert train_progress.job_fraction(bad) == 0.0
    assert train_progress.job_fraction({"progress": {"done": 5, "total": 2}}) == 1.0
    failed = {"name": "wood", "state": "failed", "progress": {"done": 3, "total": 9},
              "error": {"code": "engine_error", "message": "train failed: out of memory"}}
    assert train_progress.job_message(failed) == "training 'wood': failed 3/9: train failed: out of memory"
    assert [train_progress.preview_every(s) for s in (1, 3, 300, 1200, 1_000_000)] == [1, 1, 6, 24, 100]
    # A time budget: done/total are seconds of training time, and the figures carry the step.
    timed = {"name": "wood", "state": "running", "progress": {"done": 80, "total": 300, "figures": {"step": 240.0}}}
    assert train_progress.job_message(timed) == "training 'wood': running 1:20/5:00, step 240"
    assert train_progress.job_fraction(timed) == 80 / 300
    assert train_progress.job_notes({"notes": ["a", 3, "b"]}) == ["a", "b"]  # strings only
    assert train_progress.job_notes({"notes": [str(i) for i in range(9)]}) == [str(i) for i in range(6)]
    assert train_progress.job_notes(record) == [] and train_progress.job_notes({"notes": "x"}) == []


def test_train_fields_default_to_the_command_lines_budget_and_scale():
    """The panel's defaults send what `mgan train photo.jpg` does: 5 minutes of training
    and the photo at its own pixel size (before, 1200 steps on the photo scaled to 256 px:
    the previous recipe's, 12-17 minutes on a 2-core CPU without AMX)."""
    f = train_progress.train_fields("wood", "bark.jpg")
    assert f == {"name": "wood", "crop": 128, "batch": 4, "source": "Blender image 'bark.jpg'", "minutes": 5.0}
    f = train_progress.train_fields("wood", "bark.jpg", steps=300, minutes=2.0, exemplar_size=256, crop=64, batch=2)
    assert f == {"name": "wood", "crop": 64, "batch": 2, "source": "Blender image 'bark.jpg'", "steps": 300,
                 "preview_every": 6, "exemplar_size": 256}
    resume = train_progress.train_fields("wood", "x", mode="RESUME")
    fresh = train_progress.train_fields("wood", "x", mode="FRESH")
    assert resume["resume"] is True and "fresh" not in resume and fresh["fresh"] is True and "resume" not in fresh
    with pytest.raises(ValueError, match="train mode"):
        train_progress.train_fields("wood", "x", mode="AGAIN")
    carpet = train_progress.train_fields("rug", "x", repeat=" 226X292 ")
    auto = train_progress.train_fields("rug", "x", repeat="auto")
    assert carpet["repeat"] == "226x292" and auto["repeat"] == "auto" and "repeat" not in f
    from engine import protocol  # what the engine accepts
    for fields in (train_progress.train_fields("wood", "x"), f, resume, fresh, carpet, auto):
        checked = protocol.check_fields(fields, protocol.SPECS["train"].fields)
        assert ("steps" in checked) != ("minutes" in checked)
    assert set(train_progress.FINISHED_STATES) <= {"done", "failed", "cancelled", "interrupted"}


# ---- where Stylise Rendered Frames works -----------------------------------------------------------
def test_background_renders_work_in_the_handler_interactive_ones_queue():
    assert render_queue.runs_inline(background=True) is True
    assert render_queue.runs_inline(background=False) is False


def test_events_from_a_render_thread_reach_the_main_thread_in_order():
    E = render_queue
    events = E.RenderEvents()
    assert events.take() is None and events.may_remove_images()

    def render_job():  # what the handlers do on the render thread: note, nothing else
        events.put(E.RenderEvent(E.INIT))
        for frame in range(1, 51):
            events.put(E.RenderEvent(E.FRAME, "Scene", frame, f"/out/frame_{frame:04d}.png"))
        events.put(E.RenderEvent(E.END))

    thread = threading.Thread(target=render_job)
    thread.start()
    taken = []
    t_end = time.monotonic() + 10
    while len(taken) < 52 and time.monotonic() < t_end:
        event = events.take()
        if event is not None:
            taken.append(event)
    thread.join()
    assert [e.kind for e in taken] == [E.INIT, *[E.FRAME] * 50, E.END]
    assert [e.frame for e in taken[1:-1]] == list(range(1, 51))
    assert events.may_remove_images() and len(events) == 0

    # an END taken after the next job began: its images wait for that job's END
    events.put(E.RenderEvent(E.INIT))
    events.put(E.RenderEvent(E.END))
    events.put(E.RenderEvent(E.INIT))
    assert events.take().kind == E.INIT and events.take().kind == E.END
    assert not events.may_remove_images()
    events.put(E.RenderEvent(E.END))
    assert events.may_remove_images()
    events.clear()
    assert len(events) == 0 and events.take() is None


# The handler calls of one render job, in Blender's order (RE_RenderFrame / RE_RenderAnim in
# source/blender/render/intern/pipeline.cc, and as bpy 5.0 and 5.3 call them): "post" is
# render_post (a frame rendered), "write" render_write (its file written).
RENDER_JOBS = {
    "F12 still (Render Image)": (["post"], True),
    "still with write_still": (["post", "write"], False),
    "blender -b -f 7 (one frame of RE_RenderAnim)": (["post", "write"], False),
    "animation of 3 frames": (["post", "write"] * 3, False),
    "animation whose frames all exist (no overwrite)": ([], False),
    "set-up failed (no camera): the result is an older one": ([], False),
}


@pytest.mark.parametrize("job", sorted(RENDER_JOBS))
def test_a_still_is_a_job_that_rendered_a_frame_and_wrote_none(job):
    calls, still = RENDER_JOBS[job]
    tally = render_queue.RenderJob()
    tally.frame_rendered()  # left from the job before: begin() forgets it
    tally.frame_written()
    tally.begin()  # render_init
    for call in calls:
        {"post": tally.frame_rendered, "write": tally.frame_written}[call]()
    assert tally.still is still  # at render_complete
    assert render_queue.is_still(calls.count("post"), calls.count("write")) is still


def test_a_still_waits_for_no_newer_render_job():
    E = render_queue
    events = E.RenderEvents()
    for event in (E.RenderEvent(E.INIT), E.RenderEvent(E.END), E.RenderEvent(E.STILL, "Scene")):
        events.put(event)
    taken = [events.take() for _ in range(3)]
    assert [e.kind for e in taken] == [E.INIT, E.END, E.STILL] and taken[2].scene == "Scene"
    assert not events.newer_job_queued()  # its Render Result is still the one to read
    events.put(E.RenderEvent(E.INIT))  # F12 again before the still was read
    assert events.newer_job_queued()
    events.put(E.RenderEvent(E.END))
    assert events.newer_job_queued()  # ended too: the result is that job's now
