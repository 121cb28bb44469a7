"""End to end through the CLI: train a tiny preset, kill -9 it, resume, synthesize from it."""
import signal
import time

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import run_cli, skimage_image, start_cli, wait_until

pytestmark = pytest.mark.slow

TINY = ["--exemplar-size", "64", "--crop", "32", "--batch", "2", "--checkpoint-every", "4",
        "--preview-every", "8", "--licence", "CC0", "--source", "scikit-image gravel.png"]


def _start(home, *args):
    return start_cli(home, "train", str(skimage_image("gravel.png")), "--name", "tiny", *TINY, *args)


def _wait_for(path, proc, timeout=180):
    wait_until(path.exists, proc, timeout, what="checkpoint")


def test_train_kill9_resume_synthesize(isolated_home, tmp_path):
    ckpt = isolated_home / "runs" / "tiny" / "checkpoint.pt"
    proc = _start(isolated_home, "--steps", "16")
    _wait_for(ckpt, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = torch.load(ckpt, weights_only=True)
    killed_at = int(state["step"])
    assert 4 <= killed_at < 16 and killed_at % 4 == 0
    assert not (isolated_home / "presets" / "tiny").exists()

    # Without --resume an existing run is never overwritten.
    env = {"MGAN_HOME": str(isolated_home)}
    r = run_cli("train", str(skimage_image("gravel.png")), "--name", "tiny", *TINY, "--steps", "16", env=env)
    assert r.returncode == 2 and "--resume" in r.stderr
    assert torch.load(ckpt, weights_only=True)["step"] == killed_at

    r = run_cli("train", str(skimage_image("gravel.png")), "--name", "tiny", *TINY, "--steps", "16",
                "--resume", env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert f"resumed tiny from step {killed_at}" in r.stdout
    assert torch.load(ckpt, weights_only=True)["step"] == 16
    previews = sorted((isolated_home / "runs" / "tiny" / "previews").glob("step_*.png"))
    assert [p.name for p in previews][-1] == "step_000016.png"
    # The progress bar shows rate, ETA and the losses.
    assert "ETA" in r.stderr and "tex=" in r.stderr

    r = run_cli("presets", env=env)
    assert "tiny" in r.stdout and "CC0" in r.stdout
    out = tmp_path / "t.png"
    r = run_cli("synth", "--preset", "tiny", "--size", "100x60", "--seed", "3", "-o", str(out),
                "--tiled", str(tmp_path / "t2.png"), env=env)
    assert r.returncode == 0, r.stderr
    img = np.asarray(Image.open(out))
    assert img.shape == (60, 100, 3)
    assert np.asarray(Image.open(tmp_path / "t2.png")).shape == (120, 200, 3)


def test_ctrl_c_saves_a_checkpoint(isolated_home):
    ckpt = isolated_home / "runs" / "tiny" / "checkpoint.pt"
    proc = _start(isolated_home, "--steps", "400")
    _wait_for(ckpt, proc)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "checkpoint saved at step" in out + err
    step = int(torch.load(ckpt, weights_only=True)["step"])
    assert 4 <= step < 400


def test_bad_exemplar_is_a_clear_error(isolated_home, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    r = run_cli("train", str(bad), "--name", "x", *TINY, "--steps", "2", env={"MGAN_HOME": str(isolated_home)})
    assert r.returncode == 2 and "cannot read exemplar image" in r.stderr
    r = run_cli("train", str(tmp_path / "none.png"), "--name", "x", env={"MGAN_HOME": str(isolated_home)})
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = run_cli("train", str(skimage_image("gravel.png")), "--name", "../evil", env={"MGAN_HOME": str(isolated_home)})
    assert r.returncode == 2 and "invalid preset name" in r.stderr
