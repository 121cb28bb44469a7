"""Regular textures: the lattice found in a photo, the periodic inputs, and a regular
preset's exact tiling."""
import math

import numpy as np
import pytest

from engine.lattice import canvas_waves, detect_lattice, quantise, stretch, wave_inputs
from engine.synth import Synthesizer
from tests.support import residual_preset, running_bond


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
