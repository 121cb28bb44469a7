"""kill -9 the engine in the middle of a training job and a synthesis: the client gets a
clear timeout within its deadline, a restarted engine serves the same client again, and
the training job resumes from its checkpoint and finishes."""
import json
import time

import pytest
import torch

from engine.client import EngineClient, EngineTimeout, raise_for_error
from tests.conftest import skimage_image
from tests.engine_proc import EngineProcess, engine_home

pytestmark = pytest.mark.slow

# As tests/test_train_e2e.py: seconds per step on a small CPU.
TINY = {"exemplar_size": 64, "crop": 32, "batch": 2, "checkpoint_every": 4, "preview_every": 100,
        "licence": "CC0", "source": "scikit-image gravel.png"}
STEPS = 60  # long enough that the kill lands mid-run, even on a fast machine
DEADLINE = 3.0


def wait_for(condition, timeout: float, what: str):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_kill9_mid_job_then_restart_resumes_training(tmp_path):
    home = engine_home(tmp_path)
    first = EngineProcess(home, "tcp://127.0.0.1:*").start()
    second = None
    client = EngineClient(first.endpoint, timeout=10)
    try:
        job = client.train(skimage_image("gravel.png").read_bytes(), "gravel", steps=STEPS, **TINY)
        wait_for(lambda: client.status(job)["progress"]["done"] > TINY["checkpoint_every"], 300,
                 "training past its first checkpoint")
        record = json.loads((home / "jobs" / f"{job}.json").read_text())
        assert record["state"] == "running" and record["fields"]["name"] == "gravel"

        # A canvas that takes far longer than the deadline, in flight when the engine dies.
        rid = client.send("synthesize", {"preset": "tiny", "width": 2048, "height": 2048}, timeout=DEADLINE)
        sent = time.monotonic()
        first.kill()
        with pytest.raises(EngineTimeout, match=rf"did not answer synthesize within {DEADLINE:g} s; is it running"):
            raise_for_error(client.wait(rid))
        assert time.monotonic() - sent < DEADLINE + 1.0
        with pytest.raises(EngineTimeout):
            client.status(job, timeout=1.0)

        checkpoint = torch.load(home / "runs" / "gravel" / "checkpoint.pt", weights_only=True)
        killed_at = int(checkpoint["step"])
        assert TINY["checkpoint_every"] <= killed_at < STEPS

        second = EngineProcess(home, first.endpoint).start()  # the same address
        assert client.hello(timeout=30)["ok"]  # the same client, reconnected
        assert f"resuming training job {job}" in second.log()
        done = wait_for(lambda: (s := client.status(job))["state"] not in ("queued", "running") and s, 300,
                        "the resumed job to finish")
        assert done["state"] == "done", done
        assert done["resumed_from"] == killed_at
        assert done["result"]["steps"] == STEPS
        assert int(torch.load(home / "runs" / "gravel" / "checkpoint.pt", weights_only=True)["step"]) == STEPS
        gravel = {p["name"]: p for p in client.presets()}["gravel"]
        assert gravel["exemplar"]["licence"] == "CC0" and gravel["thumbnail"].startswith(b"\x89PNG")
        assert client.synthesize("gravel", 64, 48).shape == (48, 64, 3)
    finally:
        client.close()
        first.kill()
        if second is not None:
            second.kill()
