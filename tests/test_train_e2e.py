"""End to end through the CLI: train a tiny preset, kill -9 it, resume, synthesize from it."""
import json
import signal
import time

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import run_cli, skimage_image, start_cli, wait_until
from tests.support import icc_profile

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


def test_time_budget_stops_in_time_and_resumes(isolated_home):
    # 12 s of training time: far more than one step (fp32: no bf16 warm-up in the first),
    # so the first call below stops by --stop-after, not by the budget.
    env = {"MGAN_HOME": str(isolated_home)}
    args = ["train", str(skimage_image("gravel.png")), "--name", "timed", *TINY, "--precision", "fp32",
            "--minutes", "0.2"]
    ckpt = isolated_home / "runs" / "timed" / "checkpoint.pt"
    r = run_cli(*args, "--stop-after", "1", env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "stopped at step 1" in r.stdout
    first = torch.load(ckpt, weights_only=True)
    assert first["step"] == 1 and 0 < first["elapsed"] < 12.0

    # Resumed with the same options: it trains until 12 s of training time are spent.
    r = run_cli(*args, "--resume", env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "resumed timed from step 1" in r.stdout
    assert "/00:12" in r.stderr and "ETA" in r.stderr and "step=" in r.stderr  # time used / budget
    training = json.loads((isolated_home / "presets" / "timed" / "preset.json").read_text())["training"]
    assert training["steps"] is None and training["minutes"] == 0.2
    assert training["steps_done"] > 1
    assert 12.0 <= training["train_seconds"] < 12.0 + 60  # one step's overshoot at most; generous
    assert int(torch.load(ckpt, weights_only=True)["step"]) == training["steps_done"]

    r = run_cli(*args, "--steps", "2", env=env)
    assert r.returncode == 2 and "not allowed with argument" in r.stderr


def test_a_collapsed_run_stops_with_a_clear_error(isolated_home):
    """A learning rate far too high saturates G's sigmoid everywhere (no gradient reaches G
    from there): the run goes back three times with half the rate, then stops early, says
    what to change, and writes no flat preset."""
    r = run_cli("train", str(skimage_image("gravel.png")), "--name", "tiny", *TINY, "--steps", "200",
                "--lr-g", "10", "-q", env={"MGAN_HOME": str(isolated_home)})
    assert r.returncode == 2
    assert [line.rsplit("(", 1)[-1] for line in r.stdout.splitlines() if "back to step 0" in line] == \
        ["5)", "2.5)", "1.25)"]
    assert "training collapsed at step" in r.stderr and "going back 3 times" in r.stderr
    assert "lower --lr-g (this run: 10)" in r.stderr
    assert not (isolated_home / "presets" / "tiny").exists()


def test_a_white_photo_trains_to_a_white_texture(isolated_home, tmp_path):
    """A photo all 255s: a faithful G writes 255s everywhere too, which is no collapse.
    (From scratch, a flat image: started from a built-in, 30 steps do not yet flatten its shapes.)"""
    Image.fromarray(np.full((64, 64, 3), 255, np.uint8)).save(tmp_path / "white.png")
    env = {"MGAN_HOME": str(isolated_home)}
    r = run_cli("train", str(tmp_path / "white.png"), "--name", "white", *TINY, "--steps", "30", "--start-from", "off",
                "-q", env=env)
    assert r.returncode == 0 and "collapsed" not in r.stdout + r.stderr, r.stderr
    r = run_cli("synth", "--preset", "white", "--size", "48x40", "-o", str(tmp_path / "w.png"), env=env)
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "w.png") as im:
        assert np.asarray(im).min() >= 250


def test_bad_exemplar_is_a_clear_error(isolated_home, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    r = run_cli("train", str(bad), "--name", "x", *TINY, "--steps", "2", env={"MGAN_HOME": str(isolated_home)})
    assert r.returncode == 2 and "cannot read exemplar image" in r.stderr
    r = run_cli("train", str(tmp_path / "none.png"), "--name", "x", env={"MGAN_HOME": str(isolated_home)})
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = run_cli("train", str(skimage_image("gravel.png")), "--name", "../evil", env={"MGAN_HOME": str(isolated_home)})
    assert r.returncode == 2 and "invalid preset name" in r.stderr


def test_small_narrow_colour_exemplar_trains_end_to_end(isolated_home, tmp_path):
    """A 100x70 colour photo crop at its own scale: the canvas adapts, nothing to lower."""
    with Image.open(skimage_image("coffee.png")) as im:
        Image.fromarray(np.asarray(im.convert("RGB"))[200:270, 250:350]).save(tmp_path / "small.png")
    env = {"MGAN_HOME": str(isolated_home)}
    r = run_cli("train", str(tmp_path / "small.png"), "--name", "small", "--steps", "6", "--checkpoint-every", "3",
                "--preview-every", "3", "-q", env=env)
    assert r.returncode == 0, r.stderr
    meta = json.loads((isolated_home / "presets" / "small" / "preset.json").read_text())
    assert meta["exemplar"]["scale"] == 1.0 and meta["exemplar"]["crop"] == 64
    assert meta["generator"]["arch"] == "residual" and meta["training"]["steps_done"] == 6
    with Image.open(isolated_home / "presets" / "small" / "exemplar.png") as ex:
        assert ex.size == (96, 64)  # 1:1, cut to multiples of 8, not resampled
    out = tmp_path / "t.png"
    r = run_cli("synth", "--preset", "small", "--size", "100x70", "-o", str(out), env=env)
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        a = np.asarray(im, np.float32)
    assert a.shape == (70, 100, 3) and a.std() > 1.0


def test_exemplar_scale_rules(isolated_home, tmp_path):
    from training.exemplar import load_exemplar

    Image.fromarray(np.zeros((20, 300, 3), np.uint8)).save(tmp_path / "thin.png")
    r = run_cli("train", str(tmp_path / "thin.png"), "--name", "thin", "--steps", "2",
                env={"MGAN_HOME": str(isolated_home)})
    assert r.returncode == 2 and "too small, at least 32 px a side" in r.stderr
    Image.fromarray(np.zeros((600, 1200, 3), np.uint8)).save(tmp_path / "big.png")
    img, scale, note = load_exemplar(tmp_path / "big.png", max_side=512, with_scale=True)
    assert img.shape[-2:] == (256, 512) and scale == 512 / 1200 and "--scale" in note
    img, scale, note = load_exemplar(tmp_path / "big.png", scale=0.1, max_side=512, with_scale=True)
    assert img.shape[-2:] == (56, 120) and note == ""
    # a panorama: the longest side comes down, but the shorter one not under the canvas
    Image.fromarray(np.zeros((300, 4000, 3), np.uint8)).save(tmp_path / "pano.png")
    img, scale, note = load_exemplar(tmp_path / "pano.png", max_side=512, with_scale=True, keep_side=128)
    assert img.shape[-2:] == (128, 1704) and scale == 128 / 300 and "1707x128" in note
    img, scale, note = load_exemplar(tmp_path / "pano.png", max_side=512, with_scale=True, keep_side=64)
    assert img.shape[-2:] == (64, 848) and scale == 64 / 300 and "853x64" in note
    img, scale, note = load_exemplar(tmp_path / "pano.png", 384, with_scale=True)  # a style image: 96 px floor
    assert img.shape[-2:] == (96, 1280) and scale == 96 / 300 and note == ""
    r = run_cli("train", str(tmp_path / "big.png"), "--name", "big", "--scale", "0.02", "--steps", "2",
                env={"MGAN_HOME": str(isolated_home)})
    assert r.returncode == 2 and "raise --scale" in r.stderr


def test_16_bit_grey_and_phone_rotated_photos_load_as_they_look(tmp_path):
    """A 16-bit grey PNG keeps its range (PIL's own conversion clips it to white), at scale
    1 and resampled; a JPEG with an EXIF orientation loads upright; frames alike."""
    from engine.sequence import read_frame
    from training.exemplar import load_exemplar
    ramp = np.tile(np.linspace(0, 65535, 96).astype(np.uint16), (64, 1))
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")
    img = load_exemplar(tmp_path / "g16.png")
    assert img.shape == (1, 3, 64, 96) and torch.equal(img[:, 0], img[:, 2])
    assert abs(float(img.mean()) - 0.5) < 0.01 and float(img.min()) == 0.0 and float(img.max()) == 1.0
    half, scale, _ = load_exemplar(tmp_path / "g16.png", scale=0.5, with_scale=True)
    assert half.shape == (1, 3, 32, 48) and abs(float(half.mean()) - 0.5) < 0.01
    assert np.allclose(read_frame(tmp_path / "g16.png")[..., 1], ramp / 65535, atol=1e-6)
    sideways = np.zeros((48, 80, 3), np.uint8)
    sideways[:8] = 255                          # a white band along the stored top edge
    im = Image.fromarray(sideways)
    exif = im.getexif()
    exif[0x0112] = 6                            # "rotate 90 degrees clockwise to display"
    im.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    up = load_exemplar(tmp_path / "phone.jpg")[0].mean(0)
    assert up.shape == (80, 48)
    assert float(up[:, -4:].mean()) > 0.9 and float(up[:, :-12].mean()) < 0.05   # the band runs down the right
    assert read_frame(tmp_path / "phone.jpg").shape == (80, 48, 3)


def test_a_photo_in_another_colour_space_is_converted_to_srgb(tmp_path):
    """A photo that embeds a colour profile other than sRGB (here a wide-gamut one with
    Display P3's primaries) trains on its colours as they look: converted to sRGB, the
    conversion computed here from the two profiles' matrices, and the user is told. An
    sRGB profile, none, or one that cannot be read leave the numbers as they are."""
    from PIL import ImageCms

    from engine.sequence import read_frame
    from training.exemplar import load_exemplar
    p3 = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))
    rng = np.random.default_rng(0)
    pixels = rng.integers(20, 236, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "p3.png", icc_profile=icc_profile("Test P3", *p3))
    img, _, note = load_exemplar(tmp_path / "p3.png", with_scale=True)
    got = img[0].permute(1, 2, 0).numpy()
    # The reference: gamma 2.2 (as the profile stores it: 563/256) -> XYZ (D50) -> linear
    # sRGB through littleCMS's own sRGB colorants -> the sRGB curve, clipped.
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).profile
    to_srgb = np.linalg.inv(np.array([c[0] for c in (srgb.red_colorant, srgb.green_colorant,
                                                        srgb.blue_colorant)]).T) @ np.array(p3).T
    lin = np.clip((pixels / 255.0) ** (563 / 256) @ to_srgb.T, 0.0, 1.0)
    want = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    assert np.abs(got - want).max() < 3 / 255 and np.abs(got - pixels / 255.0).max() > 20 / 255
    assert "'Test P3'" in note and "converted to sRGB" in note
    assert np.abs(read_frame(tmp_path / "p3.png") - got).max() < 1e-6   # a photo to stylise alike
    palette = Image.fromarray(pixels).quantize(64)                       # a palette PNG with the profile
    palette.save(tmp_path / "p3pal.png", icc_profile=icc_profile("Test P3", *p3))
    plain = np.asarray(palette.convert("RGB"), dtype=np.float32) / 255.0
    assert np.abs(load_exemplar(tmp_path / "p3pal.png")[0].permute(1, 2, 0).numpy() - plain).max() > 20 / 255
    for name, icc in (("srgb", ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()),
                      ("broken", b"not a profile" * 20), ("none", None)):
        Image.fromarray(pixels).save(tmp_path / f"{name}.png", **({"icc_profile": icc} if icc else {}))
        img, _, note = load_exemplar(tmp_path / f"{name}.png", with_scale=True)
        assert np.abs(img[0].permute(1, 2, 0).numpy() - pixels / 255.0).max() < 1e-6 and note == "", name


def test_a_cut_out_photo_trains_on_its_opaque_part(isolated_home, tmp_path):
    """A PNG with transparent pixels: what lies under the transparency (here white, as
    exporters often leave it) is not the material, so the exemplar is its largest opaque
    rectangle, and the user is told; too little opacity is a clear error."""
    from training.exemplar import largest_opaque_rect, load_exemplar
    rgba = np.zeros((120, 200, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[10:110, 60:190] = (40, 90, 30, 255)     # the material: 130x100, opaque
    rgba[50, 70, 3] = 128                        # one half-transparent pixel inside it
    Image.fromarray(rgba).save(tmp_path / "cut.png")
    img, scale, note = load_exemplar(tmp_path / "cut.png", with_scale=True)
    assert scale == 1.0 and "transparent pixels" in note and "opaque rectangle" in note
    assert img.shape[-2:] == (96, 112) and float(img.max()) < 0.4    # no white got in
    assert largest_opaque_rect(rgba[..., 3] == 255) == (10, 71, 100, 119)   # right of the pixel
    pal = Image.fromarray(rgba).convert("RGB").quantize(4)           # a palette with a clear entry
    pal.info["transparency"] = pal.getpixel((0, 0))
    pal.save(tmp_path / "pal.png", transparency=pal.getpixel((0, 0)))
    assert float(load_exemplar(tmp_path / "pal.png").max()) < 0.4
    rgba[..., 3] = 0
    rgba[:20, :20, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    r = run_cli("train", str(tmp_path / "clear.png"), "--name", "clear", "--steps", "2",
                env={"MGAN_HOME": str(isolated_home)})
    assert r.returncode == 2 and "largest opaque rectangle, 20x20" in r.stderr and "98% of its pixels" in r.stderr
    assert not (isolated_home / "presets" / "clear").exists()


def _train_tiny(photo, name, extra, home):
    """3 steps of ``mgan train`` on ``photo``: the run and its preset's generator config."""
    r = run_cli("train", str(photo), "--name", name, "--steps", "3", "--batch", "1", "--checkpoint-every", "3",
                "--preview-every", "3", "-q", *extra, env={"MGAN_HOME": str(home)})
    assert r.returncode == 0, r.stderr
    return r, json.loads((home / "presets" / name / "preset.json").read_text())["generator"]


def test_a_regular_photo_trains_with_periodic_inputs_and_off_without(isolated_home, tmp_path):
    """A brick wall photo: the CLI finds its courses and bond, says so, and the preset's G
    reads them (two waves, three harmonics, the bond coordinate) and upsamples by nearest
    neighbour (its sharp joints); ``--lattice off`` trains the plain G, which upsamples
    bilinearly as irregular photos' do. Both synthesize a seamless texture of any size."""
    from tests.support import running_bond
    Image.fromarray((running_bond(256, 256) * 255).astype(np.uint8)).save(tmp_path / "wall.png")
    env = {"MGAN_HOME": str(isolated_home)}
    for name, extra in (("wall", []), ("wall-off", ["--lattice", "off"])):
        r, g = _train_tiny(tmp_path / "wall.png", name, extra, isolated_home)
        if extra:
            assert "waves" not in g and "regular texture" not in r.stdout + r.stderr
            assert g["upsample"] == "bilinear"
        else:
            assert (g["waves"], g["harmonics"], g["bond"], g["upsample"]) == (2, 3, True, "nearest")
            assert "regular texture: lattice 40.0 px" in r.stdout + r.stderr
        out = tmp_path / f"{name}.png"
        r = run_cli("synth", "--preset", name, "--size", "200x136", "-o", str(out), env=env)
        assert r.returncode == 0, r.stderr
        with Image.open(out) as im:
            assert im.size == (200, 136)


def test_boards_train_as_stripes_and_waves_keeps_the_one_wave(isolated_home, tmp_path):
    """Boards of uneven width: the CLI says they are stripes, and the preset's G reads the
    boards' phase (one wave vector, the boards', flagged as stripes); ``--lattice waves``
    keeps the one wave as before. The synthesis at any size tiles exactly."""
    from engine.presets import open_preset
    from engine.synth import Synthesizer
    from tests.support import boards
    Image.fromarray((np.clip(boards(256, 256), 0, 1) * 255).astype(np.uint8)).save(tmp_path / "boards.png")
    for name, extra in (("boards", []), ("boards-wave", ["--lattice", "waves"]), ("boards-hand", ["--boards", "36"])):
        r, g = _train_tiny(tmp_path / "boards.png", name, extra, isolated_home)
        assert (g["waves"], g["upsample"]) == (1, "nearest")
        if extra == ["--lattice", "waves"]:
            assert "stripes" not in g and "regular texture: lattice" in r.stdout + r.stderr
        else:
            assert g["stripes"] is True and "stripes: boards of" in r.stdout + r.stderr
    assert "boards of 36.0 px on average (set by hand)" in r.stdout + r.stderr
    for name, low, high in (("boards", 30, 90), ("boards-hand", 35.99, 36.01)):
        s = Synthesizer.load(open_preset(isolated_home / "presets" / name), device="cpu", precision="fp32")
        period = 1 / float(np.hypot(*s.generator.wave_vectors[0].tolist()))
        assert low < period < high, (name, period)  # the boards' period, not the grain's 14 px
        whole = s.synthesize((136, 200), seed=3, tile=1024)
        assert np.abs(whole - s.synthesize((136, 200), seed=3, tile=64)).max() < 1e-3
    # a photo with no direction to lay boards across: a clear error, and no preset
    from engine.noise import brown_noise
    noise = np.clip(brown_noise(0, (128, 128)).transpose(1, 2, 0) + 0.5, 0, 1)
    Image.fromarray((noise * 255).astype(np.uint8)).save(tmp_path / "noise.png")
    r = run_cli("train", str(tmp_path / "noise.png"), "--name", "noboards", "--steps", "2", "--boards", "40",
                env={"MGAN_HOME": str(isolated_home)})
    assert r.returncode == 2 and "no repeating direction" in r.stderr, r.stderr
    assert not (isolated_home / "presets" / "noboards").exists()


def test_layout_option_trains_a_preset_that_follows_its_map(isolated_home, tmp_path):
    """``--layout``: the 100x70 photo's 1/8 cells travel in the preset, G reads a map
    quilted from them, and the synthesis at any size is seamless; a style run refuses it."""
    from engine.presets import open_preset
    from engine.synth import Synthesizer
    with Image.open(skimage_image("coffee.png")) as im:
        Image.fromarray(np.asarray(im.convert("RGB"))[200:270, 250:350]).save(tmp_path / "small.png")
    env = {"MGAN_HOME": str(isolated_home)}
    r = run_cli("train", str(tmp_path / "small.png"), "--name", "laid", "--steps", "4", "--layout",
                "--checkpoint-every", "4", "--preview-every", "4", "-q", env=env)
    assert r.returncode == 0, r.stderr
    meta = json.loads((isolated_home / "presets" / "laid" / "preset.json").read_text())
    assert meta["generator"]["layout"] == [8, 12] and meta["training"]["layout"] is True
    s = Synthesizer.load(open_preset(isolated_home / "presets" / "laid"), device="cpu")
    with Image.open(isolated_home / "presets" / "laid" / "exemplar.png") as ex:
        cells = torch.from_numpy(np.asarray(ex, np.float32) / 255).permute(2, 0, 1)
    assert torch.allclose(s.generator.layout_source, torch.nn.functional.avg_pool2d(cells[None], 8)[0], atol=2e-3)
    tex = s.synthesize((136, 200), seed=3)
    wrap = (np.abs(tex[:, -1] - tex[:, 0]).mean() + np.abs(tex[-1] - tex[0]).mean()) / 2
    inner = (np.abs(np.diff(tex, axis=1)).mean() + np.abs(np.diff(tex, axis=0)).mean()) / 2
    assert tex.shape == (136, 200, 3) and wrap < 1.5 * inner   # no seam: the wrap is an ordinary step
    r = run_cli("train", "--style", str(tmp_path / "small.png"), "--content-dir", str(tmp_path), "--name", "st",
                "--layout", env=env)
    assert r.returncode == 2 and "--layout" in r.stderr


def test_repeat_option_trains_a_pattern_preset_that_lays_its_repeat_edge_to_edge(isolated_home, tmp_path):
    """``--repeat WxH``: a patterned photo's repeat, set by hand, travels in the preset (at
    the training scale), G follows that repeat laid edge to edge, the synthesis is seamless;
    a repeat larger than the photo and a malformed one are refused clearly (a style run:
    test_cli); ``--repeat auto`` reads it from the photo and says so."""
    from engine.presets import open_preset
    from engine.synth import Synthesizer
    rng = np.random.default_rng(0)
    unit = (rng.random((40, 24, 3)) * 255).astype(np.uint8)
    Image.fromarray(np.tile(unit, (3, 5, 1))[:100, :110]).save(tmp_path / "pattern.png")
    env = {"MGAN_HOME": str(isolated_home)}
    r = run_cli("train", str(tmp_path / "pattern.png"), "--name", "patterned", "--steps", "3", "--repeat", "24x40",
                "--checkpoint-every", "3", "--preview-every", "3", "-q", env=env)
    assert r.returncode == 0, r.stderr
    meta = json.loads((isolated_home / "presets" / "patterned" / "preset.json").read_text())
    assert meta["generator"]["repeat"] == [40, 24] and meta["generator"]["layout"] == [12, 13]
    assert meta["training"]["repeat"] == [40.0, 24.0]
    s = Synthesizer.load(open_preset(isolated_home / "presets" / "patterned"), device="cpu")
    # ... and reads the repeat at 1/4 too, from the same photo's 4 px cells: shrunk 2x, its 8 px cells
    assert meta["generator"]["fine"] is True
    fine, coarse = s.generator.layout_fine.float(), s.generator.layout_source.float()
    assert fine.shape == (3, 24, 26) and fine.std() > 1.5 * coarse.std()  # finer cells: more of the pixels' spread
    assert (torch.nn.functional.avg_pool2d(fine[None], 2)[0] - coarse).abs().max() < 0.01
    tex = s.synthesize((160, 96), seed=2)
    wrap = (np.abs(tex[:, -1] - tex[:, 0]).mean() + np.abs(tex[-1] - tex[0]).mean()) / 2
    inner = (np.abs(np.diff(tex, axis=1)).mean() + np.abs(np.diff(tex, axis=0)).mean()) / 2
    assert tex.shape == (160, 96, 3) and wrap < 1.5 * inner
    for repeat, says in (("200x40", "does not fit"), ("24-40", "WIDTHxHEIGHT"), ("24x4", "16..8192")):
        r = run_cli("train", str(tmp_path / "pattern.png"), "--name", "bad", "--steps", "2", "--repeat", repeat,
                    env=env)
        assert r.returncode == 2 and says in r.stderr, (repeat, r.stderr)
    assert not (isolated_home / "presets" / "bad").exists()
    # auto: the repeat read from a photo large enough to show it a few times over
    wide = (rng.random((40, 36, 3)) * 255).astype(np.uint8)
    Image.fromarray(np.tile(wide, (5, 6, 1))[:200, :192]).save(tmp_path / "wider.png")
    r = run_cli("train", str(tmp_path / "wider.png"), "--name", "found", "--steps", "2", "--repeat", "auto",
                "--checkpoint-every", "2", "--preview-every", "2", env=env)
    assert r.returncode == 0, r.stderr
    assert "repeat read from the photo: 36x40 px" in r.stdout + r.stderr
    assert "also reads as a regular lattice" in r.stdout + r.stderr  # a strict repeat: the lattice is offered
    meta = json.loads((isolated_home / "presets" / "found" / "preset.json").read_text())
    assert meta["generator"]["repeat"] == [40, 36] and meta["training"]["repeat"] == "auto"
