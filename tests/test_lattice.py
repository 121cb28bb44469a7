"""Regular textures: the lattice found in a photo, the periodic inputs, and a regular
preset's exact tiling."""
import math

import numpy as np
import pytest

from engine.lattice import (STRIPE_SPREAD, canvas_inputs, canvas_stripes, canvas_waves, detect_lattice, quantise,
                            stretch, stripe_base, stripe_inputs, stripe_wave, wave_inputs)
from engine.synth import Synthesizer
from tests.support import boards, residual_preset, running_bond


def test_a_brick_wall_has_its_courses_found():
    waves = detect_lattice(running_bond())
    assert waves, "no lattice found in a regular brick wall"
    periods = sorted(1 / math.hypot(fy, fx) for fy, fx in waves)
    # the course height (40 px, vertical) is one of the wave vectors, to within 2%
    course = [k for k in waves if abs(1 / math.hypot(*k) - 40) < 0.8]
    assert course, periods
    fy, fx = course[0]
    assert abs(fx) < 0.1 * abs(fy)  # it points across the courses
    # and the other is the running bond itself, (1/(2 course), 1/brick), not the half-brick
    # stack (0, 2/brick) that a lattice of courses alone would give
    assert len(waves) == 2
    by, bx = [k for k in waves if k is not course[0]][0]
    assert abs(abs(by) - 1 / 80) < 0.1 / 80 and abs(abs(bx) - 1 / 84) < 0.1 / 84, (by, bx)


def test_noise_and_a_smooth_field_have_no_lattice():
    rng = np.random.default_rng(1)
    assert detect_lattice(rng.random((256, 256, 3))) == []
    from scipy.ndimage import gaussian_filter
    assert detect_lattice(gaussian_filter(rng.random((256, 256)), 6)) == []


def test_quantise_gives_whole_cycles_and_the_stretch_it_costs():
    waves = [(1 / 55.0, 0.0), (0.01, 1 / 30.0)]
    assert quantise(waves, (110, 120)) == [(2, 0), (1, 4)]
    # the first fits 110 px exactly; the second is off by 1/110 - 0.01 across
    assert stretch(waves, (110, 120)) == pytest.approx(abs(1 / 110 - 0.01) / math.hypot(0.01, 1 / 30), rel=1e-9)
    assert stretch([(1 / 55.0, 0.0)], (110, 110)) == pytest.approx(0, abs=1e-12)
    assert stretch([(1 / 55.0, 0.0)], (128, 128)) == pytest.approx(abs(2 / 128 - 1 / 55) * 55, rel=1e-9)


def test_wave_windows_equal_the_whole_and_wrap_around():
    cycles, phase = canvas_waves([(1 / 30.0, 0.01), (0.0, 1 / 48.0)], (96, 144), seed=3)
    idx_r, idx_c = np.arange(96), np.arange(144)
    whole = wave_inputs(cycles, phase, idx_r, idx_c, (96, 144))
    rows = np.arange(40 - 16, 40 + 32 + 16) % 96          # a window that wraps: 24..87
    cols = np.arange(-24, 56) % 144                        # starts on the other side
    part = wave_inputs(cycles, phase, rows, cols, (96, 144))
    for s in (8, 4, 2):
        w, p = whole[f"wave{s}"], part[f"wave{s}"]
        assert w.shape == (1, 4, 96 // s, 144 // s)
        np.testing.assert_array_equal(p.numpy(), w.numpy()[:, :, (rows[::s] // s)][:, :, :, cols[::s] // s])
    # harmonics: per wave, sin and cos of m times its phase, m = 1..3; m = 1 as without
    three = wave_inputs(cycles, phase, idx_r, idx_c, (96, 144), harmonics=3)["wave4"].numpy()
    assert three.shape == (1, 12, 24, 36)
    np.testing.assert_allclose(three[:, [0, 1, 6, 7]], whole["wave4"].numpy(), atol=1e-6)
    t = np.arctan2(three[:, 0], three[:, 1])
    np.testing.assert_allclose(three[:, 4], np.sin(3 * t), atol=1e-4)
    # seeds move the lattice; the same seed does not
    assert canvas_waves([(1 / 30.0, 0.0)], (96, 96), 3) == canvas_waves([(1 / 30.0, 0.0)], (96, 96), 3)
    assert canvas_waves([(1 / 30.0, 0.0)], (96, 96), 3)[1] != canvas_waves([(1 / 30.0, 0.0)], (96, 96), 4)[1]


def test_the_bond_coordinate_makes_square_joints_offset_by_half_a_brick():
    """A running bond (courses 40 px, bricks 84 px): within a course the bond coordinate u
    changes only along the course (its iso-lines, the joints, are vertical), and from one
    course to the next it jumps by half a cycle."""
    period = (320, 336)                       # 8 courses, 4 bricks: the waves fit exactly
    cycles = quantise([(1 / 40, 0.0), (1 / 80, 1 / 84)], period)
    assert cycles == [(8, 0), (4, 4)]
    rows, cols = np.arange(320), np.arange(336)
    w = wave_inputs(cycles, [0.0, 0.0], rows, cols, period, harmonics=1, bond=True)["wave2"].numpy()[0]
    plain = wave_inputs(cycles, [0.0, 0.0], rows, cols, period, harmonics=1)["wave2"].numpy()[0]
    assert w.shape == plain.shape == (4, 160, 168)
    np.testing.assert_array_equal(w[:2], plain[:2])     # the courses' wave as it was
    u = np.arctan2(w[2], w[3]) / (2 * np.pi)           # turns, in (-1/2, 1/2]
    r = (np.arange(160) * 2 + 0.5)                     # the rows' pixel centres
    course = np.floor(r / 40).astype(int)
    for k in range(8):
        rows_k = np.nonzero(course == k)[0]
        spread = np.abs(np.angle(np.exp(2j * np.pi * (u[rows_k] - u[rows_k[0]])))).max()
        assert spread < 1e-6, f"course {k}: the joints are not square to the course"
    step = np.angle(np.exp(2j * np.pi * (u[np.nonzero(course == 1)[0][0]] - u[0]))) / (2 * np.pi)
    np.testing.assert_allclose(np.abs(step), 0.5, atol=1e-6)
    # without the bond coordinate the second wave's own iso-lines run diagonally
    w2 = np.arctan2(plain[2], plain[3]) / (2 * np.pi)
    assert np.abs(np.angle(np.exp(2j * np.pi * (w2[1] - w2[0])))).max() > 1e-3


def test_bond_quantisation_keeps_a_half_brick_a_half():
    """Rounding each wave alone puts 9 courses on 512 px and the bond's offset at 4/9, so the
    joints drift; with ``bond`` the courses are an even number and the offset stays 1/2."""
    from engine.lattice import bond_offset
    wall = [(1 / 58.5, 0.0), (1 / 117, -1 / 110)]        # courses 58.5 px, bricks 110 px
    assert bond_offset(wall) == pytest.approx(0.5)
    alone = quantise(wall, (512, 512))
    kept = quantise(wall, (512, 512), bond=True)
    assert alone == [(9, 0), (4, -5)] and bond_offset([(a / 512, b / 512) for a, b in alone]) == pytest.approx(4 / 9)
    assert kept[0][0] % 2 == 0 and kept[0][1] == 0
    assert bond_offset([(a / 512, b / 512) for a, b in kept]) == pytest.approx(0.5)
    assert stretch(wall, (512, 512), bond=True) < 0.1
    # an offset far from any simple fraction is rounded as before
    odd = [(1 / 40, 0.0), (0.4 / 40 + 0.0, 1 / 90)]          # offset 0.4: not within 0.05 of 1/3 or 1/2
    assert quantise(odd, (400, 360), bond=True) == quantise(odd, (400, 360))


def test_regular_preset_tiles_exactly_and_seeds_differ(tmp_path):
    s = Synthesizer.load(residual_preset(tmp_path / "regular", wave_vectors=[(1 / 40.0, 0.0), (1 / 80, 1 / 84)],
                                         harmonics=3, bond=True), device="cpu", precision="fp32")
    assert (s.generator.config.waves, s.generator.config.harmonics, s.generator.config.bond) == (2, 3, True)
    whole = s.synthesize((320, 256), seed=1, tile=1024)
    assert np.abs(whole - s.synthesize((320, 256), seed=1, tile=96)).max() < 1e-3
    assert np.abs(whole - s.synthesize((320, 256), seed=1, tile=64)).max() < 1e-3
    doubled = s.synthesize((640, 256), seed=1, period=(320, 256))
    assert np.abs(doubled[:320] - doubled[320:]).max() < 1e-4
    assert np.abs(whole - s.synthesize((320, 256), seed=2, tile=1024)).mean() > 1e-3


def test_the_waves_reach_the_output(tmp_path):
    """The periodic inputs are not ignored: shifting the lattice's phase changes the output."""
    s = Synthesizer.load(residual_preset(tmp_path / "regular", wave_vectors=[(1 / 40.0, 0.0)]),
                         device="cpu", precision="fp32")
    import torch
    from engine.noise import noise_canvas
    canvas = torch.from_numpy(noise_canvas(s.preset.noise, 0, (128, 128)))[None]
    idx = np.arange(128)
    a = s.decode(canvas, waves=wave_inputs([(3, 0)], [0.0], idx, idx, (128, 128)))
    b = s.decode(canvas, waves=wave_inputs([(3, 0)], [0.5], idx, idx, (128, 128)))
    assert (a - b).abs().mean() > 1e-4


def test_the_built_in_photos_lattices_bricks_bond_and_wood_grain_alone():
    """Real photos: the brick wall's courses and its running bond (a weak peak confirmed
    by two others); the wood's grain, but not a lattice of its knots (one weak peak
    confirmed by one other, which set the knots on a diagonal grid)."""
    from PIL import Image

    from tests.conftest import ROOT

    def lattice(name):
        return detect_lattice(np.asarray(Image.open(ROOT / "presets" / name / "exemplar.png").convert("RGB")))
    bricks = lattice("bricks")
    assert len(bricks) == 2
    assert 1 / math.hypot(*bricks[0]) == pytest.approx(58.5, abs=1.0)  # the courses
    assert 1 / math.hypot(*bricks[1]) == pytest.approx(79.4, abs=2.0)  # the bond, diagonal
    wood = lattice("wood")
    assert len(wood) == 1 and 1 / math.hypot(*wood[0]) == pytest.approx(14.0, abs=0.5)
    # wood's grain is stripes (several unrelated periods along one direction), its boards
    # 59 px apart on average; the bricks' courses are a lattice
    boards = stripe_wave(np.asarray(Image.open(ROOT / "presets" / "wood" / "exemplar.png").convert("RGB")), wood)
    assert boards and 1 / math.hypot(*boards) == pytest.approx(58.9, abs=1.5)
    assert abs(boards[0]) < 0.05 * abs(boards[1])  # across the boards: vertical boards, a horizontal wave
    assert stripe_wave(np.asarray(Image.open(ROOT / "presets" / "bricks" / "exemplar.png").convert("RGB")),
                       bricks[:1]) is None


def test_stripes_are_told_from_a_lattice():
    """Boards of uneven width: a wave is found across them, and they are stripes (several
    periods along one direction), whose boards' wave is the lowest of them. One period with
    its harmonics alone (corrugated sheet) is a lattice; so is a brick wall (two waves)."""
    img = boards()
    waves = detect_lattice(img)
    assert len(waves) == 1 and abs(waves[0][0]) < 0.1 * abs(waves[0][1]), waves  # across the boards
    wave = stripe_wave(img, waves)
    assert wave is not None and abs(wave[0]) < 0.1 * abs(wave[1])
    assert 30 < 1 / math.hypot(*wave) < 90  # the boards (24..70 px), not the 14 px grain
    cols = np.arange(256)
    ridges = np.tanh(3 * np.sin(2 * np.pi * cols / 32.0))[None, :].repeat(256, 0)  # harmonics 3, 5, ...
    sheet = 0.5 + 0.2 * ridges + 0.03 * np.random.default_rng(0).standard_normal((256, 256))
    sheet = np.repeat(sheet[..., None], 3, axis=2)
    sw = detect_lattice(sheet)
    assert len(sw) == 1 and stripe_wave(sheet, sw) is None
    wall = running_bond()
    assert stripe_wave(wall, detect_lattice(wall)) is None


def test_stripe_phase_climbs_a_turn_per_board_wraps_and_windows_equal_the_whole():
    period = (96, 144)
    assert stripe_base((0.001, -0.07), period) == (0, 1)       # vertical boards: one cycle across
    assert stripe_base((0.07, 0.0005), period) == (1, 0)
    base, edges, shift = canvas_stripes((0.0, 1 / 24.0), period, seed=3)
    assert base == (0, 1) and len(edges) == 7                   # 144 px / 24 px: six boards
    widths = np.diff(edges) * 144
    assert edges[0] == 0 and edges[-1] == 1 and np.all(widths > 0)
    assert widths.min() >= 24 * (1 - STRIPE_SPREAD) * 0.6 and widths.std() > 1.0  # uneven, none vanishing
    idx_r, idx_c = np.arange(96), np.arange(144)
    whole = stripe_inputs(base, edges, shift, idx_r, idx_c, period, harmonics=3)
    rows = np.arange(40 - 16, 40 + 32 + 16) % 96
    cols = np.arange(-24, 56) % 144
    part = stripe_inputs(base, edges, shift, rows, cols, period, harmonics=3)
    for s in (8, 4, 2):
        w, p = whole[f"wave{s}"].numpy(), part[f"wave{s}"].numpy()
        assert w.shape == (1, 6, 96 // s, 144 // s)
        np.testing.assert_array_equal(p, w[:, :, (rows[::s] // s)][:, :, :, cols[::s] // s])
        assert np.abs(w - w[:, :, :1]).max() == 0                # constant along the boards
    # at 1/2: the phase (from the first harmonic's sin and cos) climbs one turn per board,
    # and the column after the last is the first again
    t = np.unwrap(np.arctan2(whole["wave2"][0, 0, 0].numpy(), whole["wave2"][0, 1, 0].numpy()))
    assert np.all(np.diff(t) > 0) and (t[-1] - t[0]) / (2 * np.pi) == pytest.approx(6, abs=0.5)
    wrap = stripe_inputs(base, edges, shift, idx_r, np.arange(144, 288), period, harmonics=3)["wave2"].numpy()
    np.testing.assert_array_equal(wrap, whole["wave2"].numpy())
    # harmonics: sin and cos of m t
    np.testing.assert_allclose(np.arctan2(whole["wave2"][0, 2].numpy(), whole["wave2"][0, 3].numpy()) % (2 * np.pi),
                               (2 * np.arctan2(whole["wave2"][0, 0].numpy(), whole["wave2"][0, 1].numpy())) % (2 * np.pi),
                               atol=1e-4)
    # new boards per seed
    other = canvas_inputs([(0.0, 1 / 24.0)], period, seed=4, harmonics=3, stripes=True)(idx_r, idx_c)
    assert np.abs(other["wave2"].numpy() - whole["wave2"].numpy()).mean() > 0.3


def test_a_striped_preset_tiles_exactly_and_seeds_differ(tmp_path):
    s = Synthesizer.load(residual_preset(tmp_path / "boards", wave_vectors=[(0.0, 1 / 40.0)], harmonics=3,
                                         stripes=True), device="cpu", precision="fp32")
    assert (s.generator.config.waves, s.generator.config.stripes) == (1, True)
    whole = s.synthesize((320, 256), seed=1, tile=1024)
    assert np.abs(whole - s.synthesize((320, 256), seed=1, tile=96)).max() < 1e-3
    doubled = s.synthesize((640, 256), seed=1, period=(320, 256))
    assert np.abs(doubled[:320] - doubled[320:]).max() < 1e-4
    assert np.abs(whole - s.synthesize((320, 256), seed=2, tile=1024)).mean() > 1e-3


def test_stripes_config_is_checked():
    from engine.generator import GeneratorConfig
    with pytest.raises(ValueError, match="stripes"):
        GeneratorConfig(waves=2, harmonics=3, stripes=True)
    with pytest.raises(ValueError, match="stripes"):
        GeneratorConfig(waves=0, stripes=True)
    with pytest.raises(ValueError, match="stripes"):
        GeneratorConfig.from_dict({"arch": "residual", "waves": 1, "harmonics": 3, "stripes": "yes"})
    c = GeneratorConfig(waves=1, harmonics=3, stripes=True)
    assert GeneratorConfig.from_dict(c.to_dict()) == c


def _prepared(tmp_path, img, **cfg):
    """A texture trainer prepared on ``img`` (no step taken), its log lines collected."""
    from PIL import Image as PILImage

    from training.loop import Trainer
    from training.texture import TextureTask, TrainConfig

    path = tmp_path / "photo.png"
    PILImage.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)
    lines = []
    t = Trainer(TextureTask(path, TrainConfig(steps=2, batch=1, start_from="off", **cfg)), "photo",
                tmp_path / "run", preset_dir=tmp_path, show_progress=False, log=lines.append)
    t.prepare()
    return t.task, "\n".join(map(str, lines))


def test_boards_set_by_hand_keep_the_direction_found_and_take_the_width_given(tmp_path):
    """``boards``: the boards' mean width by hand, in the photo's own px, across the
    direction the spectrum found; scaled with the photo; said in the log."""
    img = boards()
    found = stripe_wave(img, detect_lattice(img))
    task, log = _prepared(tmp_path, img, boards=40.0)
    assert task.g_config.stripes and len(task.wave_vectors) == 1
    k = task.wave_vectors[0]
    assert 1 / math.hypot(*k) == pytest.approx(40.0, rel=1e-6)
    cos = (k[0] * found[0] + k[1] * found[1]) / (math.hypot(*k) * math.hypot(*found))
    assert cos > 1 - 1e-9  # the same direction and sense
    assert "boards of 40.0 px on average (set by hand)" in log
    task, log = _prepared(tmp_path, img, boards=40.0, scale=0.5)  # the photo trained at half size
    assert 1 / math.hypot(*task.wave_vectors[0]) == pytest.approx(20.0, rel=1e-6)
    task, log = _prepared(tmp_path, img)
    assert "from the spectrum; --boards PX sets them" in log
    assert 1 / math.hypot(*task.wave_vectors[0]) == pytest.approx(1 / math.hypot(*found), rel=1e-3)  # (8-bit PNG)


def test_boards_by_hand_turn_one_even_wave_into_boards_and_refuse_photos_without_a_direction(tmp_path):
    cols = np.arange(256)
    even = 0.5 + 0.2 * np.sin(2 * np.pi * cols / 16.0)[None, :].repeat(256, 0)
    even = np.repeat((even + 0.03 * np.random.default_rng(0).standard_normal((256, 256)))[..., None], 3, axis=2)
    assert len(detect_lattice(even)) == 1 and stripe_wave(even, detect_lattice(even)) is None
    task, _ = _prepared(tmp_path, even, boards=64.0)
    assert task.g_config.stripes and 1 / math.hypot(*task.wave_vectors[0]) == pytest.approx(64.0, rel=1e-6)
    assert abs(task.wave_vectors[0][0]) < 0.05 * abs(task.wave_vectors[0][1])  # across the even stripes
    with pytest.raises(ValueError, match="two-wave lattice"):
        _prepared(tmp_path, running_bond(), boards=64.0)
    from engine.noise import brown_noise
    noise = brown_noise(0, (256, 256)).transpose(1, 2, 0).astype(np.float64) + 0.5  # (3,h,w) around 0 -> photo
    assert not detect_lattice(noise)
    with pytest.raises(ValueError, match="no repeating direction"):
        _prepared(tmp_path, noise, boards=64.0)


@pytest.mark.parametrize("settings, message", [
    (dict(boards=4.0), "boards must be a width"),
    (dict(boards=float("nan")), "boards must be a width"),
    (dict(boards=40.0, lattice="off"), "boards needs lattice 'auto'"),
    (dict(boards=40.0, lattice="waves"), "boards needs lattice 'auto'"),
])
def test_boards_settings_are_checked(settings, message):
    from training.texture import TrainConfig

    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings).validate()
