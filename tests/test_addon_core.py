"""The add-on's Blender-free parts (pixel conventions, node choice, the engine job that
the operator steps from its timer), loaded without bpy, against a real engine."""
from __future__ import annotations

import importlib.util
import sys
import time
import types
from types import SimpleNamespace as NS

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.engine_proc import EngineProcess, engine_home


def _core():
    """addon/ as a package without running its __init__ (which registers with Blender)."""
    name = "mgan_addon_core"
    if name not in sys.modules:
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(ROOT / "addon")]
        sys.modules[name] = pkg
    return tuple(importlib.import_module(f"{name}.{m}") for m in ("pixels", "wiring", "jobs", "connection"))


pixels, wiring, jobs, connection = _core()


def test_engine_to_blender_flips_rows_and_adds_opaque_alpha():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    flat = pixels.engine_to_blender(img, linear=False)
    rgba = flat.reshape(2, 3, 4)
    assert flat.dtype == np.float32 and flat.shape == (24,)
    np.testing.assert_array_equal(rgba[0, :, :3], img[1] / np.float32(255))  # Blender's first row is the bottom
    np.testing.assert_array_equal(rgba[1, :, :3], img[0] / np.float32(255))
    assert np.all(rgba[..., 3] == 1)
    back = pixels.blender_to_engine(flat, 3, 2, linear=False)
    np.testing.assert_array_equal(back, img)


def test_srgb_transfer_round_trips_every_byte_and_matches_known_values():
    v = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    flat = pixels.engine_to_blender(v, linear=True)
    np.testing.assert_array_equal(pixels.blender_to_engine(flat, 16, 16, linear=True), v)
    lin = pixels.srgb_to_linear(np.array([0.0, 0.04045, 0.5, 1.0]))
    np.testing.assert_allclose(lin, [0.0, 0.04045 / 12.92, 0.21404114, 1.0], rtol=1e-5)


def test_float_input_is_clipped_and_bad_shapes_refused():
    flat = pixels.engine_to_blender(np.array([[[-0.5, 0.25, 2.0]]], dtype=np.float32), linear=False)
    np.testing.assert_array_equal(flat, [0.0, 0.25, 1.0, 1.0])
    with pytest.raises(ValueError, match="expected an"):
        pixels.engine_to_blender(np.zeros((4, 4), np.uint8), linear=False)


def _node(type_, name="", label="", links=()):
    return NS(type=type_, name=name, label=label, inputs={"Surface": NS(links=list(links))})


def test_principled_chosen_is_the_one_feeding_the_active_output():
    first, second = _node("BSDF_PRINCIPLED", "first"), _node("BSDF_PRINCIPLED", "second")
    out = _node("OUTPUT_MATERIAL", links=[NS(from_node=second)])
    out.is_active_output = True
    assert wiring.principled_for_output([first, second, out]) is second
    assert wiring.principled_for_output([first, _node("OUTPUT_MATERIAL")]) is first
    assert wiring.principled_for_output([_node("BSDF_DIFFUSE"), _node("OUTPUT_MATERIAL")]) is None
    ours = _node("TEX_IMAGE", label=wiring.TEXTURE_NODE_LABEL)
    assert wiring.existing_texture_node([_node("TEX_IMAGE"), ours]) is ours
    assert wiring.existing_texture_node([_node("TEX_IMAGE")]) is None


def test_synthesize_fields_pass_the_clients_own_validation():
    fields = jobs.synthesize_fields("tiny", 64, 32, 5, 0.0, False)
    assert "noise" not in fields and fields["tileable"] is False and fields["events"] is True
    assert jobs.synthesize_fields("tiny", 64, 32, 5, 24.0, True)["noise"] == {"scale": 24.0}
    P = connection.protocol
    P.decode_request(P.encode({"protocol": 1, "op": "synthesize", "id": "x1", **fields}, []), P.Limits())


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    proc = EngineProcess(engine_home(tmp_path_factory.mktemp("engine")), "tcp://127.0.0.1:*").start()
    yield proc
    proc.kill()


@pytest.mark.slow
def test_job_steps_without_blocking_and_gives_the_engines_bytes(engine):
    link = connection.Link()
    try:
        fields = jobs.synthesize_fields("tiny", 48, 40, 3, 0.0, True)
        job = jobs.EngineJob(link, engine.connect_address(), "synthesize", fields).start()
        steps, slowest = 0, 0.0
        t_end = time.monotonic() + 120
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            done = job.step()  # what the operator's timer calls: must return at once
            slowest = max(slowest, time.monotonic() - t0)
            steps += 1
            if done:
                break
            time.sleep(0.01)
        assert job.stage == "done" and steps > 2
        assert slowest < 0.5  # never waits for the engine (generous: a loaded CI machine)
        assert link.hello["ok"] and link.hello["device"]
        with connection.EngineClient(engine.connect_address()) as c:
            expected = c.synthesize("tiny", 48, 40, seed=3)
        np.testing.assert_array_equal(job.reply.payloads[0], expected)
    finally:
        link.close()


@pytest.mark.slow
def test_cancel_stops_the_engine_job_and_the_link_stays_usable(engine):
    link = connection.Link()
    try:
        endpoint = engine.connect_address()
        # big enough to be still running (several decode tiles) when the cancel arrives
        job = jobs.EngineJob(link, endpoint, "synthesize", jobs.synthesize_fields("tiny", 2048, 2048, 1, 0.0, True))
        job.start()
        while job.stage == "hello":
            job.step(0.05)
        job_id = job.rid
        job.cancel()
        assert job.cancelled and job.step() is True
        t_end = time.monotonic() + 120
        state = None
        with connection.EngineClient(endpoint) as c:
            while time.monotonic() < t_end:
                state = c.status(job_id)["state"]
                if state in ("cancelled", "done", "failed"):
                    break
                time.sleep(0.2)
        assert state == "cancelled"
        again = jobs.EngineJob(link, endpoint, "synthesize", jobs.synthesize_fields("tiny", 16, 16, 0, 0.0, True))
        assert again.start().run().reply.payloads[0].shape == (16, 16, 3)
        time.sleep(0.5)
        link.take("nothing")  # the cancelled job's late reply is dropped, not kept for nobody
        assert link._done == {} and link._abandoned == set()
    finally:
        link.close()
