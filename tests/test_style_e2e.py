"""Style presets end to end through the CLI: MDAN targets, kill -9 during the targets and
during training, resume (targets are not redone), then stylise frames with the preset."""
import signal

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import run_cli, shifted_frames, skimage_image, start_cli, wait_until

pytestmark = pytest.mark.slow


def _content_dir(tmp_path, names=("astronaut.png", "chelsea.png", "rocket.jpg")):
    d = tmp_path / "content"
    d.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.open(skimage_image(n)).convert("RGB").save(d / (n.rsplit(".", 1)[0] + ".png"))
    return d


def _args(content, *extra):
    return ["train", "--style", str(skimage_image("coffee.png")), "--content-dir", str(content),
            "--name", "tiny-style", "--content-size", "96", "--exemplar-size", "128", "--crop", "32",
            "--batch", "2", "--inverter-steps", "4", "--checkpoint-every", "4", "--preview-every", "8",
            "--steps", "16", "--source", "scikit-image coffee.png", "--licence", "CC0",
            "--content-source", "scikit-image", "--content-licence", "CC0 / public domain", *extra]


def test_style_train_kill_resume_stylize(isolated_home, tmp_path):
    content = _content_dir(tmp_path)
    run = isolated_home / "runs" / "tiny-style"
    targets = run / "targets"
    env = {"MGAN_HOME": str(isolated_home)}

    # 1. Killed while MDAN makes the targets: finished targets stay cached.
    proc = start_cli(isolated_home, *_args(content, "--mdan-steps", "60"))
    wait_until(lambda: len(list(targets.glob("0*.png"))) >= 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cached = {p.name: p.stat().st_mtime_ns for p in targets.glob("0*.png")}
    assert 1 <= len(cached) < 3 and not (run / "checkpoint.pt").exists()

    # 2. Resumed, then killed during G's training after a checkpoint.
    proc = start_cli(isolated_home, *_args(content, "--mdan-steps", "60", "--resume"))
    wait_until(lambda: (run / "checkpoint.pt").exists(), proc)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate()
    assert f"({3 - len(cached)} of 3)" in err           # only the missing targets were made
    for name, mtime in cached.items():                   # and the cached ones were not redone
        assert (targets / name).stat().st_mtime_ns == mtime
    killed_at = int(torch.load(run / "checkpoint.pt", weights_only=True)["step"])
    assert 4 <= killed_at < 16

    # Another content set is another run: resume refuses instead of mixing them.
    other = _content_dir(tmp_path / "o", ("astronaut.png", "chelsea.png"))
    r = run_cli(*_args(other, "--mdan-steps", "60", "--resume"), env=env, timeout=300)
    assert r.returncode == 2 and "different run" in r.stderr

    # 3. Resumed to the end: all targets cached, training continues from the checkpoint.
    r = run_cli(*_args(content, "--mdan-steps", "60", "--resume"), env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "all 3 cached" in r.stdout and f"resumed tiny-style from step {killed_at}" in r.stdout
    assert "rec=" in r.stderr and "ETA" in r.stderr
    preset = isolated_home / "presets" / "tiny-style"
    for f in ("preset.json", "generator.safetensors", "thumbnail.png", "exemplar.png",
              "content_example.png", "mdan_example.png"):
        assert (preset / f).is_file(), f
    r = run_cli("presets", "--json", env=env)
    entry = {p["name"]: p for p in __import__("json").loads(r.stdout)}["tiny-style"]
    assert entry["kind"] == "style" and entry["exemplar"]["licence"] == "CC0"

    # 4. Stylise a folder of frames; each output equals the in-process pipeline's.
    frames = shifted_frames(tmp_path / "frames", 3, 150, 200, 4)
    out_dir = tmp_path / "styled"
    r = run_cli("stylize", "--preset", "tiny-style", str(frames), "-o", str(out_dir), env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "stylize tiny-style" in r.stderr and "3/3" in r.stderr
    from engine.presets import open_preset
    from engine.synth import Synthesizer, stylize_image, to_uint8

    synth = Synthesizer.load(open_preset(preset))
    for i in range(3):
        got = np.asarray(Image.open(out_dir / f"frame_{i + 1:04d}.png"))
        frame = np.asarray(Image.open(frames / f"frame_{i + 1:04d}.png"), np.float32) / 255
        assert got.shape == (150, 200, 3)
        assert np.array_equal(got, to_uint8(stylize_image(synth, frame)))
    # Running it again never silently replaces the outputs.
    r = run_cli("stylize", "--preset", "tiny-style", str(frames), "-o", str(out_dir), env=env)
    assert r.returncode == 2 and "--overwrite" in r.stderr


def test_style_cli_errors(isolated_home, tmp_path, tiny_preset):
    env = {"MGAN_HOME": str(isolated_home)}
    r = run_cli("train", "--style", str(skimage_image("coffee.png")), "--name", "x", env=env)
    assert r.returncode == 2 and "--content-dir" in r.stderr
    r = run_cli("train", "--style", str(skimage_image("coffee.png")), "--content-dir", str(tmp_path),
                "--name", "x", env=env)
    assert r.returncode == 2 and "no content images" in r.stderr
    frame = tmp_path / "f.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(frame)
    r = run_cli("stylize", "--preset", str(tiny_preset.path), str(frame), "-o", str(tmp_path / "o"), env=env)
    assert r.returncode == 2 and "texture preset" in r.stderr
    r = run_cli("stylize", "--preset", str(tiny_preset.path), "--any-kind", str(frame), "-o", str(tmp_path), env=env)
    assert r.returncode == 2 and "overwrite an input" in r.stderr
    r = run_cli("stylize", "--preset", "nope", str(frame), "-o", str(tmp_path / "o"), env=env)
    assert r.returncode == 2 and "not found" in r.stderr
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    r = run_cli("stylize", "--preset", str(tiny_preset.path), "--any-kind", str(bad), "-o", str(tmp_path / "o2"), env=env)
    assert r.returncode == 2 and "cannot read frame" in r.stderr
