"""The coarse layout (engine/layout.py): a periodic map quilted from the photo's 1/8 cells,
or a patterned photo's repeat laid edge to edge, which a layout preset's G follows."""
import numpy as np
import pytest
import torch

from engine.generator import GeneratorConfig
from engine.layout import (CELL, FINE, find_repeat, layout_inputs, quilt, repeat_counts, repeat_map, repeat_stretch,
                           source_cells)
from engine.synth import Synthesizer
from tests.support import residual_preset


def _stripes(h=24, w=24, period=6):
    """(3,h,w) cells: horizontal bands, red then blue, ``period`` cells apart."""
    rows = (np.arange(h) // (period // 2)) % 2
    src = np.zeros((3, h, w), np.float32)
    src[0] = (rows == 0)[:, None]
    src[2] = (rows == 1)[:, None]
    return torch.from_numpy(src)


def test_source_cells_are_the_photo_shrunk_by_area():
    photo = torch.rand(1, 3, 70, 100)
    cells = source_cells(photo)
    assert cells.shape == (3, 70 // CELL, 100 // CELL)
    assert torch.allclose(cells[:, 1, 2], photo[0, :, 8:16, 16:24].mean((1, 2)), atol=1e-6)


def test_quilt_is_a_pure_function_of_its_seed_and_varies_with_it():
    src = torch.rand(3, 40, 40)
    a = quilt(src, (30, 50), seed=3)
    assert a.shape == (30, 50, 3) and a.dtype == np.float32
    assert np.array_equal(a, quilt(src, (30, 50), seed=3))
    assert np.abs(a - quilt(src, (30, 50), seed=4)).mean() > 0.05


def test_quilt_keeps_the_photos_structure_across_its_wrap_around():
    """Bands 6 cells apart stay bands: every row of the map is one colour (the blocks agree
    on their overlaps, and blending only ever mixes rows of the same phase), and the rows
    across the map's wrap-around step are as alike as rows inside it."""
    src = _stripes()
    m = quilt(src, (36, 30), seed=1)
    assert m.std(axis=1).max() < 0.05                          # each row one colour
    red = m[:, :, 0].mean(1)
    assert red.max() > 0.9 and red.min() < 0.1                  # both bands survive, unblurred
    steps = np.abs(np.diff(red, append=red[:1]))
    inside = np.sort(steps[:-1])
    assert steps[-1] <= inside[-1] + 1e-6                      # the wrap is no larger than the photo's edges


def test_quilt_copes_with_sources_and_canvases_smaller_than_a_block():
    src = torch.rand(3, 4, 3)
    m = quilt(src, (2, 5), seed=0)
    assert m.shape == (2, 5, 3) and np.isfinite(m).all()
    assert m.min() >= float(src.min()) - 1e-6 and m.max() <= float(src.max()) + 1e-6


def test_layout_windows_equal_the_whole_map_and_wrap_around():
    src = torch.rand(3, 20, 20)
    whole = layout_inputs(src, (160, 96), seed=2)(np.arange(160), np.arange(96))["layout8"]
    assert whole.shape == (1, 3, 20, 12)
    rows, cols = np.arange(-16, 48) % 160, np.arange(80, 112) % 96
    win = layout_inputs(src, (160, 96), seed=2)(rows, cols)["layout8"]
    assert torch.equal(win, whole[..., (rows[::8] // 8), :][..., (cols[::8] // 8)])


def test_a_layout_preset_tiles_exactly_follows_its_map_and_saves_its_cells(tmp_path):
    src = _stripes(32, 32, 8)
    preset = residual_preset(tmp_path / "laid", layout=src)
    s = Synthesizer.load(preset, device="cpu", precision="fp32")
    assert s.generator.config.layout == (32, 32)
    assert torch.equal(s.generator.layout_source, src)          # the cells travel in the preset
    whole = s.synthesize((320, 256), seed=1, tile=1024)
    assert np.abs(whole - s.synthesize((320, 256), seed=1, tile=96)).max() < 1e-3
    doubled = s.synthesize((640, 256), seed=1, period=(320, 256))
    assert np.abs(doubled[:320] - doubled[320:]).max() < 1e-4
    # the map reaches the output: another seed's map (same noise) changes it
    from engine.noise import noise_canvas
    canvas = torch.from_numpy(noise_canvas(s.preset.noise, 0, (128, 128)))[None]
    idx = np.arange(128)
    a = s.decode(canvas, waves=layout_inputs(src, (128, 128), 0)(idx, idx))
    b = s.decode(canvas, waves=layout_inputs(src, (128, 128), 5)(idx, idx))
    assert (a - b).abs().mean() > 1e-4


def test_layout_config_round_trips_and_bad_values_are_refused():
    cfg = GeneratorConfig(layout=(40, 64))
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    assert "layout" not in GeneratorConfig().to_dict()
    for bad in ([40], [1, 40], [40, 5000], ["a", 3]):
        with pytest.raises(ValueError, match="layout"):
            GeneratorConfig.from_dict({**cfg.to_dict(), "layout": bad})
    with pytest.raises(ValueError, match="layout"):
        GeneratorConfig(arch="upsample", widths=(256, 128, 64), layout=(8, 8))


def test_quilt_reads_half_precision_cells_as_a_preset_stores_them():
    src = torch.rand(3, 16, 16).half()
    assert np.array_equal(quilt(src, (12, 12), seed=1), quilt(src.float(), (12, 12), seed=1))


def test_a_layout_preset_stylises_a_photo_in_tiles_as_in_one_piece(tmp_path):
    """``mgan stylize --any-kind`` with a layout preset: one map for the whole photo, so
    the tiles agree with the untiled decode."""
    from engine.synth import stylize_image
    s = Synthesizer.load(residual_preset(tmp_path / "laid", layout=_stripes(32, 32, 8)), device="cpu", precision="fp32")
    photo = np.random.default_rng(0).random((150, 230, 3), dtype=np.float32)
    whole = stylize_image(s, photo, tile=1024)
    assert np.abs(whole - stylize_image(s, photo, tile=128)).max() < 1e-3


def _pattern(h=200, w=160, rh=48, rw=40, seed=0):
    """(1,3,h,w) photo of a pattern that repeats every ``rh`` x ``rw`` px, and its cells."""
    unit = torch.rand(3, rh, rw, generator=torch.Generator().manual_seed(seed))
    photo = unit.repeat(1, h // rh + 1, w // rw + 1)[None, :, :h, :w]
    return photo, source_cells(photo)


def test_a_repeat_map_is_the_photos_repeat_laid_edge_to_edge():
    """A canvas of two repeats a side holds the photo's 48x40 px repeat twice over: the map
    repeats every 6 and 5 cells, wraps around, and is the photo's cells where the repeat
    starts on a cell (a pure translation of the photo); another seed reads another phase."""
    photo, cells = _pattern()
    m = repeat_map(cells, (48, 40), (12, 10), seed=1)
    assert m.shape == (12, 10, 3) and m.dtype == np.float32
    assert np.allclose(m[:6], m[6:], atol=1e-5) and np.allclose(m[:, :5], m[:, 5:], atol=1e-5)
    # every map cell is the photo shifted by the repeat's (fractional) start: compare with
    # the photo's cells translated by whole cells, the nearest of which must be close
    whole = cells.numpy().transpose(1, 2, 0)
    best = min(np.abs(m[:6, :5] - whole[dy:dy + 6, dx:dx + 5]).mean() for dy in range(6) for dx in range(5))
    spread = np.abs(m[:6, :5] - whole[:6, :5].mean((0, 1))).mean()
    assert best < 0.6 * spread
    assert np.abs(m - repeat_map(cells, (48, 40), (12, 10), seed=2)).mean() > 0.02
    assert np.array_equal(m, repeat_map(cells, (48, 40), (12, 10), seed=1))


def test_a_repeat_map_fits_whole_repeats_to_any_canvas_and_keeps_the_scale_in_a_window():
    _, cells = _pattern()
    assert repeat_counts((48, 40), (104, 120)) == (2, 3) and repeat_stretch((48, 40), (104, 120)) == pytest.approx(1 / 12)
    assert repeat_counts((290, 226), (128, 128)) == (1, 1)
    # a training canvas (16 cells) smaller than three repeats: the photo's own scale, one
    # repeat every 6 cells, and no wrap-around
    m = repeat_map(cells, (48, 40), (16, 16), seed=3, fit=False)
    assert np.allclose(m[:10], m[6:], atol=1e-5) and np.allclose(m[:, :11], m[:, 5:], atol=1e-5)
    with pytest.raises(ValueError, match="does not fit"):
        repeat_map(cells, (200, 40), (16, 16), seed=0)


def test_a_repeat_preset_tiles_exactly_and_its_config_round_trips(tmp_path):
    _, cells = _pattern(128, 128, 48, 40)
    preset = residual_preset(tmp_path / "carpet", layout=cells, repeat=(48, 40))
    s = Synthesizer.load(preset, device="cpu", precision="fp32")
    assert s.generator.config.repeat == (48, 40)
    whole = s.synthesize((192, 160), seed=4, tile=1024)
    assert np.abs(whole - s.synthesize((192, 160), seed=4, tile=96)).max() < 1e-3
    cfg = GeneratorConfig(layout=(16, 16), repeat=(48, 40))
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    for bad, match in (({"repeat": [48]}, "repeat"), ({"repeat": [8, 40]}, "repeat"), ({"repeat": [48, 2.5]}, "repeat"),
                       ({"repeat": [128, 40]}, "does not fit"), ({"repeat": [48, 40], "layout": []}, "needs a layout")):
        with pytest.raises(ValueError, match=match):
            GeneratorConfig.from_dict({**cfg.to_dict(), **bad})


def test_a_repeats_finer_map_reads_the_same_place_at_twice_the_resolution():
    """The repeat's map at 1/4 (``FINE`` cells) is the same repeat, read at the same place
    for the same seed: shrunk 2x by area it is the 1/8 map, up to the two interpolations;
    a window's inputs carry both, each at its own resolution."""
    unit = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(3)),
                                           size=(48, 40), mode="bicubic", align_corners=False)[0]
    photo = unit.repeat(1, 5, 4)[None, :, :200, :160]  # smooth structure, repeating every 48x40 px
    cells, fine = source_cells(photo), source_cells(photo, FINE)
    assert fine.shape == (3, 2 * cells.shape[1], 2 * cells.shape[2])
    for fit, size in ((True, (12, 10)), (False, (16, 16))):
        coarse = repeat_map(cells, (48, 40), size, seed=5, fit=fit)
        m4 = repeat_map(fine, (48, 40), (2 * size[0], 2 * size[1]), seed=5, fit=fit, cell=FINE)
        shrunk = m4.reshape(size[0], 2, size[1], 2, 3).mean((1, 3))
        # read one cell off (8 px), the two would differ four times as much
        off = min(np.abs(np.roll(shrunk, d, axis) - coarse).mean() for d in (-1, 1) for axis in (0, 1))
        assert np.abs(shrunk - coarse).mean() < 0.4 * off, fit
    inputs = layout_inputs(cells, (96, 80), 5, (48, 40), fine)
    rows, cols = np.arange(16, 64), np.arange(72, 112) % 80  # a window that wraps across the right edge
    got = inputs(rows, cols)
    assert got["layout8"].shape == (1, 3, 6, 5) and got["layout4"].shape == (1, 3, 12, 10)
    whole = inputs(np.arange(96), np.arange(80))["layout4"][0].numpy()
    assert np.array_equal(got["layout4"][0].numpy(), whole[:, 4:16][:, :, (cols[::FINE] // FINE)])


def test_a_fine_repeat_preset_tiles_exactly_and_its_config_round_trips(tmp_path):
    photo, cells = _pattern(128, 128, 48, 40)
    preset = residual_preset(tmp_path / "carpet", layout=cells, repeat=(48, 40), fine=source_cells(photo, FINE))
    s = Synthesizer.load(preset, device="cpu", precision="fp32")
    assert s.generator.config.fine
    whole = s.synthesize((192, 160), seed=4, tile=1024)
    tiled = np.abs(whole - s.synthesize((192, 160), seed=4, tile=96))
    assert tiled.max() < 1e-3 and tiled.mean() < 1e-6
    # the finer map reaches the output (random weights: a faint change, far above float error)
    s.generator.layout_fine.copy_(source_cells(_pattern(128, 128, 48, 40, seed=9)[0], FINE))
    assert np.abs(whole - s.synthesize((192, 160), seed=4)).mean() > 1e-4
    cfg = GeneratorConfig(layout=(16, 16), repeat=(48, 40), fine=True)
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    assert "fine" not in GeneratorConfig(layout=(16, 16), repeat=(48, 40)).to_dict()  # older presets unchanged
    for bad in ({"fine": 1}, {"fine": True, "repeat": []}):
        with pytest.raises(ValueError, match="fine"):
            GeneratorConfig.from_dict({**cfg.to_dict(), **bad})


def test_find_repeat_reads_a_patterns_repeat_and_refuses_a_photo_without_one():
    """A 40x36 px unit repeated, shifted and noisy, is read as its repeat (not a multiple
    of it); brown noise, which does not repeat, is a clear error."""
    from engine.noise import brown_noise
    rng = np.random.default_rng(1)
    unit = rng.random((40, 36, 3))
    photo = np.tile(unit, (6, 6, 1))[:224, :200]
    photo = np.clip(np.roll(photo, 2, axis=1) * 0.9 + 0.1 * rng.random(photo.shape), 0, 1)
    (h, w), (down, across) = find_repeat(photo)
    assert (h, w) == (40, 36) and down > 0.5 and across > 0.5
    # a photo over 512 px is searched at 1/2 (here) by area: its repeat to within 2 px
    (h3, w3), _ = find_repeat(np.repeat(np.repeat(photo, 3, 0), 3, 1))
    assert abs(h3 - 120) <= 2 and abs(w3 - 108) <= 2
    noise = np.clip(brown_noise(0, (192, 192)).transpose(1, 2, 0) + 0.5, 0, 1)
    with pytest.raises(ValueError, match="no repeat found"):
        find_repeat(noise)
