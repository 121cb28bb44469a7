"""MDAN, the iterative method: a tiny CPU run lowers its loss, moves towards the style and
keeps the content's structure; its discriminator carries over between images."""
import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import run_cli, shifted_frames, skimage_image


def _photo(name, size):
    from training.mdan import fit_size

    return fit_size(np.asarray(Image.open(skimage_image(name)).convert("RGB"), np.float32) / 255, size)


def _lum_corr(a, b):
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    return float(np.corrcoef(a[:h, :w].mean(-1).ravel(), b[:h, :w].mean(-1).ravel())[0, 1])


@pytest.fixture(scope="module")
def tiny_run():
    from training.mdan import MDAN, MDANConfig

    content = _photo("astronaut.png", 96)
    mdan = MDAN(skimage_image("coffee.png"), MDANConfig(size=96, style_size=128, steps=30))
    out, history = mdan.run(content)
    return mdan, content, out, history


def test_tiny_mdan_lowers_its_loss_and_moves_to_the_style(tiny_run):
    from training.mdan import to_tensor

    mdan, content, out, history = tiny_run
    losses = [h["loss"] for h in history]
    assert len(losses) == 30 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    # The trained D scores the result as more style-like than the photo it started from...
    assert mdan.score(out) < mdan.score(content) - 1.0
    # ...and a D-independent figure agrees: relu3_1 Gram distance to the style falls.
    assert mdan.style_distance(to_tensor(out)) < 0.85 * mdan.style_distance(to_tensor(content))
    assert out.shape == content.shape and out.min() >= 0 and out.max() <= 1


def test_tiny_mdan_keeps_the_content_structure(tiny_run):
    _, content, out, _ = tiny_run
    other = _photo("chelsea.png", 96)
    assert np.abs(out - content).mean() > 0.02          # it did change the image
    assert _lum_corr(out, content) > 0.8                # but the content's structure remains
    assert abs(_lum_corr(out, other)) < 0.4             # (a different photo does not correlate)


def test_discriminator_carries_over_between_images(tiny_run):
    from training.mdan import MDAN, MDANConfig

    mdan, *_ = tiny_run
    state = mdan.state_dict()
    assert state["images_done"] == 1
    fresh = MDAN(skimage_image("coffee.png"), MDANConfig(size=96, style_size=128, steps=2))
    w_fresh = [p.detach().clone() for p in fresh.D.parameters()]
    fresh.load_state_dict(state)
    assert any(not torch.equal(a, b) for a, b in zip(w_fresh, fresh.D.parameters()))
    for a, b in zip(mdan.D.state_dict().values(), fresh.D.state_dict().values()):
        assert torch.equal(a, b)
    fresh.run(_photo("chelsea.png", 96))
    assert fresh.images_done == 2


def test_unguided_mdan_makes_a_seamless_texture():
    from training.mdan import MDAN, MDANConfig

    mdan = MDAN(skimage_image("gravel.png"), MDANConfig(style_size=128, steps=12, contrast_sigma=0))
    out, _ = mdan.run(None, size=(64, 96))
    assert out.shape == (64, 96, 3)
    interior = np.abs(np.diff(out, axis=1)).mean()
    seam = np.abs(out[:, 0] - out[:, -1]).mean()
    assert seam < 2.0 * interior
    with pytest.raises(ValueError, match="multiples of 16"):
        mdan.run(None, size=(60, 96))


def test_mdan_cli(tmp_path):
    out = tmp_path / "m.png"
    r = run_cli("mdan", "--style", str(skimage_image("coffee.png")), "--content", str(skimage_image("chelsea.png")),
                "--size", "96", "--style-size", "128", "--steps", "6", "-o", str(out),
                "--tiled", str(tmp_path / "m-2x2.png"), timeout=300)
    assert r.returncode == 0, r.stderr
    assert "mdan chelsea.png" in r.stderr and "ETA" in r.stderr and "6 steps" in r.stdout
    assert np.asarray(Image.open(out)).shape == (64, 96, 3)
    assert np.asarray(Image.open(tmp_path / "m-2x2.png")).shape == (128, 192, 3)
    r = run_cli("mdan", "--style", str(tmp_path / "nope.png"), "--content", str(skimage_image("chelsea.png")),
                "-o", str(out))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_mdan_cli_sequence_with_warm_start(tmp_path):
    frames = shifted_frames(tmp_path / "frames", 3, 96, 128, 3, name="f{}.png")
    out = tmp_path / "out"
    args = ["mdan", "--style", str(skimage_image("coffee.png")), "--content", str(frames), "--size", "64",
            "--style-size", "128", "--steps", "4", "--warm-start", "-o", str(out)]
    r = run_cli(*args, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "mdan 3/3 f3.png" in r.stderr and "wrote 3 images" in r.stdout
    assert [p.name for p in sorted(out.iterdir())] == ["f1.png", "f2.png", "f3.png"]
    r = run_cli(*args)                                      # outputs are never silently replaced
    assert r.returncode == 2 and "--overwrite" in r.stderr
    r = run_cli(*args[:-1], str(frames), "--overwrite")     # and inputs never
    assert r.returncode == 2 and "overwrite an input" in r.stderr
    r = run_cli("mdan", "--style", str(skimage_image("coffee.png")), "--warm-start", "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "sequence" in r.stderr


def test_mdan_sequence_killed_resumes_without_redoing_frames(tmp_path, isolated_home):
    import signal

    from tests.conftest import start_cli, wait_until

    frames = shifted_frames(tmp_path / "frames", 3, 96, 128, 3, name="f{}.png")
    out = tmp_path / "out"
    args = ["mdan", "--style", str(skimage_image("coffee.png")), "--content", str(frames), "--size", "64",
            "--style-size", "128", "--steps", "40", "--warm-start", "-o", str(out)]
    proc = start_cli(isolated_home, *args)
    wait_until(lambda: (out / "f1.png").exists() and (out / ".mdan_state.pt").exists(), proc, what="frame 1")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in out.glob("f*.png")}
    assert "f1.png" in done and len(done) < 3

    r = run_cli(*args, "--resume", "--overwrite")
    assert r.returncode == 2 and "pick one" in r.stderr
    r = run_cli(*args, "--resume", timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"kept {len(done)} finished" in r.stdout and f"wrote {3 - len(done)} images" in r.stdout
    for name, mtime in done.items():                       # finished frames were not redone
        assert (out / name).stat().st_mtime_ns == mtime
    assert sorted(p.name for p in out.glob("f*.png")) == ["f1.png", "f2.png", "f3.png"]
    assert not (out / ".mdan_state.pt").exists()           # a complete sequence leaves no state behind
