"""The engine as a process, through the client: handshake, presets, synthesis and
stylisation equal to the in-process pipeline, errors, cancellation, shutdown."""
import os
import socket
import stat
import time

import numpy as np
import pytest
from PIL import Image

from engine import protocol as P
from engine.client import EngineClient, EngineError, EngineTimeout, raise_for_error
from engine.server import engine_version
from tests.engine_proc import EngineProcess, InProcess, engine_home


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = engine_home(tmp_path_factory.mktemp("home"))
    Image.new("RGB", (16, 16), (200, 100, 50)).save(home / "presets" / "tiny" / "thumbnail.png")
    return home


@pytest.fixture(scope="module")
def engine(home):
    proc = EngineProcess(home, f"ipc://{home}/engine.sock").start()
    yield proc
    proc.kill()


@pytest.fixture
def client(engine):
    with EngineClient(engine.endpoint, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def pipeline(home):
    return InProcess(home)


def test_handshake(client, engine):
    h = client.hello()
    assert h["ok"] and h["protocol_version"] == P.PROTOCOL_VERSION
    assert h["engine"] == {"name": "mgan-textures", "version": engine_version()}
    assert h["device"] == "cpu" and h["limits"] == P.Limits().to_dict()
    assert set(h["ops"]) == set(P.OPS)
    assert "device: cpu" in engine.log() and "tiny" in engine.log()


def test_ipc_socket_is_private(engine):
    mode = stat.S_IMODE(os.stat(engine.endpoint[len("ipc://"):]).st_mode)
    assert mode == 0o600, oct(mode)


def test_presets_with_source_licence_and_thumbnail(client, home):
    tiny = {p["name"]: p for p in client.presets()}["tiny"]
    assert tiny["kind"] == "texture"
    assert tiny["exemplar"] == {"source": "none (test)", "licence": "n/a"}
    assert tiny["thumbnail"] == (home / "presets" / "tiny" / "thumbnail.png").read_bytes()


@pytest.mark.parametrize("width, height, seed, dtype, precision, period", [
    (64, 64, 3, "uint8", "auto", None),
    (100, 60, 7, "float32", "fp32", None),
    (128, 64, 1, "uint8", "fp32", (64, 32)),
])
def test_synthesize_equals_the_in_process_pipeline(client, pipeline, width, height, seed, dtype, precision, period):
    got = client.synthesize("tiny", width, height, seed=seed, dtype=dtype, precision=precision, period=period)
    want = pipeline.synthesize(width, height, seed, dtype, precision, period)
    assert got.shape == (height, width, 3) and got.dtype == np.dtype(dtype)
    assert got.tobytes() == want.tobytes()


def test_maps_over_the_socket_equal_the_in_process_maps(client, pipeline):
    from engine.maps import MapSettings, derive_maps

    settings = {"height_scale": -0.7, "normal_convention": "directx", "ao_radius": 9}
    got, resolved = client.material("tiny", 72, 40, seed=5, map_settings=settings)
    assert resolved == MapSettings(**settings).to_dict()
    base = pipeline.synthesize(72, 40, 5)
    want = derive_maps(base, P.MAP_NAMES, MapSettings(**settings))
    assert list(got) == ["basecolor", *P.MAP_NAMES]
    assert got["basecolor"].tobytes() == base.tobytes()
    for name in P.MAP_NAMES:
        dtype, channels = P.MAP_FRAMES[name]
        assert got[name].dtype == np.dtype(dtype) and got[name].shape == (40, 72, channels), name
        assert got[name].tobytes() == want[name].tobytes(), name
    some, _ = client.material("tiny", 64, 64, maps=["normal", "height"])  # canonical order, as named
    assert list(some) == ["basecolor", "height", "normal"]
    with pytest.raises(EngineError, match="maps\\[0\\]' must be one of") as info:
        client.material("tiny", 64, 64, maps=["albedo"])
    assert info.value.code == P.BAD_FIELD
    with pytest.raises(EngineError, match="roughness_min .* above roughness_max"):
        client.material("tiny", 64, 64, map_settings={"roughness_min": 0.8, "roughness_max": 0.2})


def test_a_stretched_repeat_is_said_in_the_reply(client):
    """The fabric built-in follows its carpet's 226x292 px repeat: a canvas that squeezes
    whole repeats by more than 3% gets a ``note`` with the size that holds them; one that
    holds them, and a preset without a repeat, none."""
    r = client.call("synthesize", {"preset": "fabric", "width": 512, "height": 512})
    assert r.header["note"] == ("the pattern's 226x292 px repeat is stretched by up to 13% to fit "
                                         "2x2 whole repeats; a size of 456x584 holds them within 1%")
    assert r.header["fit"] == {"width": 456, "height": 584}
    assert "note" not in client.call("synthesize", {"preset": "fabric", "width": 456, "height": 584}).header
    untileable = client.call("synthesize", {"preset": "fabric", "width": 456, "height": 584, "tileable": False})
    assert "a size of 552x456 holds them" in untileable.header["note"]  # its canvas has a 64 px margin a side
    r = client.call("synthesize", {"preset": "fabric", "width": 64, "height": 64, "period": {"width": 512, "height": 512}})
    assert "a period of 456x584 holds them" in r.header["note"] and "fit" not in r.header
    assert "note" not in client.call("synthesize", {"preset": "tiny", "width": 64, "height": 64}).header


def test_release_frees_loaded_presets_and_the_engine_keeps_serving(client, pipeline):
    client.synthesize("tiny", 32, 32, seed=1)
    freed = client.release()
    assert freed["released_presets"] >= 1 and freed["cuda_cache_emptied"] is False
    assert client.release()["released_presets"] == 0  # nothing loaded since
    got = client.synthesize("tiny", 40, 24, seed=9)  # the preset loads again
    assert got.tobytes() == pipeline.synthesize(40, 24, 9).tobytes()


def test_untileable_texture_does_not_wrap(client):
    wrapped = client.synthesize("tiny", 64, 64, seed=2, dtype="float32")
    cropped = client.synthesize("tiny", 64, 64, seed=2, dtype="float32", tileable=False)
    assert cropped.shape == (64, 64, 3) and not np.array_equal(wrapped, cropped)


def test_stylize_equals_the_in_process_pipeline(client, pipeline):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8), rng.random((24, 24, 3), dtype=np.float32)]
    got = client.stylize("tiny", frames, dtype="float32")
    assert len(got) == 2
    for frame, out in zip(frames, got):
        assert out.tobytes() == pipeline.stylize(frame, "float32").tobytes()


def test_errors_are_specific_and_the_engine_keeps_serving(client, home):
    with pytest.raises(EngineError, match=r"preset 'marble' not found; known: .*tiny") as info:
        client.synthesize("marble", 64, 64)
    assert info.value.code == P.UNKNOWN_PRESET
    with pytest.raises(EngineError, match="noise scale must be in") as info:
        client.synthesize("tiny", 64, 64, noise={"scale": 0.5})
    assert info.value.code == P.BAD_FIELD
    with pytest.raises(EngineError, match="max_pixels") as info:
        client.synthesize("tiny", 16384, 8192)  # refused by the client before sending
    assert info.value.code == P.TOO_LARGE
    for op in ("status", "cancel"):
        with pytest.raises(EngineError, match="no job 'job-nope'") as info:
            getattr(client, op)("job-nope")
        assert info.value.code == P.UNKNOWN_JOB
    assert client.hello()["ok"]


def test_train_requests_are_checked_before_a_job_exists(client, home):
    with pytest.raises(EngineError, match="not a readable png image") as info:
        client.train(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "broken")
    assert info.value.code == P.BAD_IMAGE
    png = (home / "presets" / "tiny" / "thumbnail.png").read_bytes()
    with pytest.raises(EngineError, match="crop must be a multiple of 8") as info:
        client.train(png, "oddcrop", crop=36)
    assert info.value.code == P.BAD_FIELD
    run = home / "runs" / "taken"
    run.mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(EngineError, match="resume: true") as info:
        client.train(png, "taken")
    assert (info.value.code, info.value.reason) == (P.CONFLICT, P.HAS_CHECKPOINT)
    assert not [j for j in client.status() if j["kind"] == "train"]  # no job was started


def test_engine_answers_while_a_job_runs_and_cancel_stops_it(client):
    from engine.synth import DEFAULT_TILE

    width, height = 3 * DEFAULT_TILE, 2 * DEFAULT_TILE  # six tiles
    rid = client.send("synthesize", {"preset": "tiny", "width": width, "height": height, "events": True,
                                     "precision": "fp32"})
    t0 = time.monotonic()
    while not any(e.header["progress"]["done"] >= 1 for e in client.events()):
        assert client.poll(0.1) == [] and time.monotonic() - t0 < 120, "no progress event"
    assert client.hello()["ok"] and rid in client.pending()  # answered while the job computes
    running = client.status(rid)
    assert running["state"] == "running" and running["progress"]["total"] == 6
    assert client.cancel(rid) == "cancelling"
    with pytest.raises(EngineError, match="cancelled") as info:
        raise_for_error(client.wait(rid))
    assert info.value.code == P.CANCELLED
    final = client.status(rid)
    assert final["state"] == "cancelled" and final["progress"]["done"] < 6  # it stopped early
    assert client.events()[-1].header["state"] == "cancelled"


def test_a_time_budget_trains_over_the_socket_and_the_panel_reads_it_as_a_clock(client):
    """What the add-on's training panel sends by default (a budget in minutes; here 3 s on a
    tiny canvas): progress in seconds of training time, the step among the figures."""
    from tests.conftest import skimage_image
    from tests.support import addon_core

    (train_progress,) = addon_core("train_progress")
    fields = train_progress.train_fields("timed", "gravel.png", minutes=0.05, exemplar_size=64, crop=32, batch=1)
    fields.pop("source")
    job = client.train(skimage_image("gravel.png").read_bytes(), checkpoint_every=1000, preview_every=1000,
                       **fields)
    t0 = time.monotonic()
    while (record := client.status(job))["state"] not in ("done", "failed"):
        assert time.monotonic() - t0 < 300, record
        time.sleep(0.2)
    assert record["state"] == "done", record
    steps = record["result"]["steps"]
    assert record["progress"]["total"] == 3 and record["progress"]["done"] == 3
    assert steps >= 1 and record["progress"]["figures"]["step"] == steps
    assert train_progress.job_message(record) == f"training 'timed': done 0:03/0:03, step {steps}"
    # what the run told its user, as `mgan train` prints it, and the panel shows
    notes = train_progress.job_notes(record)
    assert notes == record["notes"] and any(n.startswith("G starts from") for n in notes)
    assert notes[-1].startswith("preset 'timed' written to")


def test_a_patterns_repeat_travels_over_the_socket_and_a_malformed_one_is_refused(client, home):
    """The panel's Repeat field: "WIDTHxHEIGHT" reaches the run (its preset lays that repeat,
    and the run's notes say so); a malformed or absurd one is a bad_field before any job."""
    import io
    import json

    rng = np.random.default_rng(0)
    unit = (rng.random((40, 36, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.tile(unit, (3, 3, 1))[:112, :104]).save(buf, format="PNG")
    for bad in ("36", "36x40x2", "wide", "9999x40"):
        with pytest.raises(EngineError) as info:
            client.train(buf.getvalue(), "patterned", steps=1, repeat=bad)
        assert info.value.code == P.BAD_FIELD and "repeat" in str(info.value), bad
    job = client.train(buf.getvalue(), "patterned", steps=2, crop=32, batch=1, repeat="36x40",
                       checkpoint_every=1000, preview_every=1000)
    t0 = time.monotonic()
    while (record := client.status(job))["state"] not in ("done", "failed"):
        assert time.monotonic() - t0 < 300, record
        time.sleep(0.2)
    assert record["state"] == "done", record
    meta = json.loads((home / "presets" / "patterned" / "preset.json").read_text())
    assert meta["generator"]["repeat"] == [40, 36]
    assert any(n.startswith("repeat: the photo's 36x40 px pattern") for n in record["notes"])


def test_a_queued_job_can_be_cancelled_before_it_starts(client):
    from engine.synth import DEFAULT_TILE

    # Several tiles, so the running job has a point between tiles where cancel bites.
    first = client.send("synthesize", {"preset": "tiny", "width": 2 * DEFAULT_TILE, "height": 2 * DEFAULT_TILE})
    second = client.send("synthesize", {"preset": "tiny", "width": 64, "height": 64})
    assert client.cancel(second) == "cancelled"
    assert client.cancel(first) in ("cancelling", "cancelled")
    replies, t0 = {}, time.monotonic()
    while len(replies) < 2 and time.monotonic() - t0 < 120:
        replies.update({r.id: r.header for r in client.poll(1.0)})
    assert replies[second]["error"]["code"] == P.CANCELLED and "before it started" in replies[second]["error"]["message"]
    assert replies[first]["error"]["code"] == P.CANCELLED


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # As a server binds: a closed connection's TIME_WAIT does not hold the port.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_shutdown_and_sigterm_release_the_port(tmp_path):
    home = engine_home(tmp_path)
    first = EngineProcess(home, "tcp://127.0.0.1:*").start()
    port = int(first.endpoint.rsplit(":", 1)[1])
    with EngineClient(first.endpoint) as c:
        c.shutdown()
    assert first.proc.wait(60) == 0 and "mgan engine stopped" in first.log()
    assert _port_is_free(port)
    second = EngineProcess(home, f"tcp://127.0.0.1:{port}").start()  # the same port again
    with EngineClient(second.endpoint) as c:
        assert c.hello()["ok"]
    assert second.stop() == 0 and _port_is_free(port)
    with EngineClient(second.endpoint) as c, pytest.raises(EngineTimeout, match="did not answer hello"):
        c.hello(timeout=1.0)
