"""The job book without a server: states, cancel, conflicts, training records that outlive
the engine."""
import json

import pytest

from engine import protocol as P
from engine.jobs import MAX_CRASHES, Job, JobBook, new_job_id


def train_job(name="gravel", **fields):
    return Job(id=new_job_id(), kind="train", fields={"name": name, "resume": False, "fresh": False, **fields},
               extra={"config": {"steps": 8}, "run_dir": "/x", "exemplar": "/x/exemplar.png"})


def test_states_and_status(tmp_path):
    book = JobBook(tmp_path / "jobs")
    job = book.add(Job(id="r1", kind="synthesize", fields={"preset": "tiny"}))
    assert book.snapshot("r1")["state"] == "queued"
    assert book.start(job) and not book.start(job)
    book.progress(job, 2, 4)
    assert book.snapshot("r1")["progress"] == {"done": 2, "total": 4, "figures": {}}
    book.finish(job, "done", result={"width": 8})
    snap = book.snapshot("r1")
    assert snap["state"] == "done" and snap["progress"]["done"] == 4 and snap["result"] == {"width": 8}
    assert not (tmp_path / "jobs").exists()  # synthesis jobs are not persisted
    with pytest.raises(P.ProtocolError) as info:
        book.snapshot("r2")
    assert info.value.code == P.UNKNOWN_JOB


def test_a_loss_that_is_not_finite_still_gives_a_status_in_strict_json(tmp_path):
    book = JobBook(tmp_path / "jobs")
    job = book.add(train_job())
    book.start(job)
    book.progress(job, 3, 8, {"tex": float("nan"), "adv": float("inf"), "d": 0.5})
    snap = book.snapshot(job.id)
    assert snap["progress"]["figures"] == {"tex": None, "adv": None, "d": 0.5}
    assert json.loads(P.encode({"ok": True, "job": snap})[0]) == {"ok": True, "job": snap}


def test_cancel_queued_at_once_running_cooperatively(tmp_path):
    book = JobBook(tmp_path / "jobs")
    queued = book.add(Job(id="q", kind="synthesize", fields={}))
    running = book.add(Job(id="r", kind="synthesize", fields={}))
    book.start(running)
    assert book.cancel("q")[1] == "cancelled" and not book.start(queued)
    assert book.snapshot("q")["error"]["code"] == P.CANCELLED
    assert book.cancel("r")[1] == "cancelling" and running.cancel.is_set()
    book.finish(running, "cancelled")
    assert book.cancel("r")[1] == "cancelled"


def test_ids_in_use_and_runs_in_training_are_conflicts(tmp_path):
    book = JobBook(tmp_path / "jobs")
    book.add(Job(id="same", kind="synthesize", fields={}))
    with pytest.raises(P.ProtocolError, match="in use by a queued job") as info:
        book.add(Job(id="same", kind="stylize", fields={}))
    assert (info.value.code, info.value.to_dict()["reason"]) == (P.CONFLICT, P.ID_IN_USE)
    book.finish(book.get("same"), "done")
    book.add(Job(id="same", kind="stylize", fields={}))  # a finished id may be reused
    assert book.snapshot("same")["kind"] == "stylize"
    first = book.add(train_job())
    with pytest.raises(P.ProtocolError, match=f"already queued as job {first.id}") as info:
        book.add(train_job())
    assert info.value.reason == P.TRAINING
    book.add(train_job("other"))


def test_training_records_resume_after_a_restart(tmp_path):
    folder = tmp_path / "jobs"
    book = JobBook(folder)
    running, interrupted, done, queued = (book.add(train_job(n)) for n in ("a", "b", "c", "d"))
    book.start(running)
    book.start(interrupted)
    book.finish(interrupted, "interrupted")
    book.start(done)
    book.finish(done, "done", result={"preset": "c"})
    record = json.loads((folder / f"{running.id}.json").read_text())
    assert record["state"] == "running" and record["extra"]["config"] == {"steps": 8}

    again = JobBook(folder)  # a new engine on the same folder
    resumed = {j.fields["name"]: j for j in again.load_training(log=lambda m: None)}
    assert sorted(resumed) == ["a", "b", "d"]
    assert all(j.state == "queued" and j.fields["resume"] and not j.fields["fresh"] for j in resumed.values())
    assert resumed["a"].crashes == 1 and resumed["b"].crashes == 0  # only a death while running counts
    assert again.snapshot(done.id)["result"] == {"preset": "c"}  # finished ones stay visible


def test_a_job_that_keeps_killing_the_engine_is_not_resumed_forever(tmp_path):
    folder = tmp_path / "jobs"
    book = JobBook(folder)
    book.start(job := book.add(train_job()))  # ... and the engine dies while it runs
    for death in range(1, MAX_CRASHES + 1):
        book = JobBook(folder)
        resumed = book.load_training(log=lambda m: None)
        if death < MAX_CRASHES:
            assert [j.id for j in resumed] == [job.id]
            book.start(resumed[0])  # ... and it dies again
    assert resumed == []
    assert book.snapshot(job.id)["state"] == "failed"
    assert "not resumed again" in book.snapshot(job.id)["error"]["message"]


def test_unreadable_records_are_skipped_with_a_message(tmp_path):
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "job-broken.json").write_text("{not json")
    said = []
    assert JobBook(folder).load_training(log=said.append) == []
    assert "job-broken.json" in said[0]


def test_a_training_status_names_its_preview_folder(tmp_path):
    book = JobBook(tmp_path / "jobs")
    job = train_job("wood")
    job.extra["run_dir"] = str(tmp_path / "runs" / "wood")
    book.add(job)
    assert book.snapshot(job.id)["previews"] == str(tmp_path / "runs" / "wood" / "previews")
    bare = train_job("no-run-dir")
    del bare.extra["run_dir"]
    assert "previews" not in book.snapshot(book.add(bare).id)
    assert "previews" not in book.snapshot(book.add(Job(id="s1", kind="synthesize", fields={"preset": "x"})).id)
