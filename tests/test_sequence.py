"""Frame sequences: ordering of inputs, nothing overwritten, per-frame determinism, and the
motion-gated temporal filter lowering flicker without freezing what moves."""
import numpy as np
import pytest
from PIL import Image

from engine.sequence import collect_frames, flicker, stylize_frames, temporal_blend


def _save(path, arr):
    Image.fromarray((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def test_collect_frames_orders_naturally_and_fails_clearly(tmp_path):
    for i in (1, 2, 10):
        _save(tmp_path / f"frame_{i}.png", np.zeros((8, 8, 3)))
    (tmp_path / "notes.txt").write_text("x")
    names = [p.name for p in collect_frames([str(tmp_path)])]
    assert names == ["frame_1.png", "frame_2.png", "frame_10.png"]
    assert [p.name for p in collect_frames([str(tmp_path / "frame_*.png")])] == names
    # A file given twice (directly and through its folder) is stylised once.
    assert len(collect_frames([str(tmp_path / "frame_2.png"), str(tmp_path)])) == 3
    with pytest.raises(FileNotFoundError, match="no files match"):
        collect_frames([str(tmp_path / "*.jpg")])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        collect_frames([str(tmp_path / "missing.png")])
    with pytest.raises(FileNotFoundError, match="holds no images"):
        (tmp_path / "empty").mkdir()
        collect_frames([str(tmp_path / "empty")])


def test_flicker_figure():
    rng = np.random.default_rng(0)
    src = [rng.random((16, 16, 3)).astype(np.float32) for _ in range(4)]
    assert flicker(src, src) == pytest.approx(1.0)
    assert flicker([np.zeros((16, 16, 3))] * 4, src) == 0.0
    assert flicker([2 * s for s in src], src) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        flicker(src[:1], src[:1])


def _moving_square_sequence(n=6, size=96, noise=0.01, seed=0):
    """A static textured background with sensor-like noise and a square moving 6 px a frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    base = np.stack([0.5 + 0.3 * np.sin(9 * xx), 0.4 + 0.3 * np.cos(7 * yy), 0.5 + 0.2 * np.sin(5 * (xx + yy))], -1)
    frames = []
    for t in range(n):
        f = base + noise * rng.standard_normal(base.shape)
        f[30:50, 10 + 6 * t:30 + 6 * t] = (0.9, 0.2, 0.1)
        frames.append(np.clip(f, 0, 1).astype(np.float32))
    return frames


def test_stylize_frames_sequence(tmp_path, tiny_preset):
    from engine.synth import Synthesizer, stylize_image, to_uint8

    synth = Synthesizer.load(tiny_preset)
    src_dir = tmp_path / "frames"
    src_dir.mkdir()
    seq = _moving_square_sequence(size=160)  # room for still background beyond the motion radius
    for i, f in enumerate(seq):
        _save(src_dir / f"f_{i + 1:03d}.png", f)
    frames = collect_frames([str(src_dir)])
    sources = [np.asarray(Image.open(p), np.float32) / 255 for p in frames]

    out_dir = tmp_path / "out"
    written, plain = stylize_frames(synth, frames, out_dir, progress=False, keep=True)
    assert [p.name for p in written] == [p.name for p in frames]
    # Per frame it is the single-image pipeline, byte for byte.
    assert np.array_equal(np.asarray(Image.open(written[2])), to_uint8(stylize_image(synth, sources[2])))

    # Nothing is replaced without --overwrite, and an input is never an output.
    with pytest.raises(FileExistsError):
        stylize_frames(synth, frames, out_dir, progress=False)
    with pytest.raises(ValueError, match="overwrite an input"):
        stylize_frames(synth, frames, src_dir, progress=False, overwrite=True)
    with pytest.raises(ValueError, match="temporal"):
        stylize_frames(synth, frames, tmp_path / "o3", progress=False, temporal=1.5)

    _, smooth = stylize_frames(synth, frames, tmp_path / "out2", progress=False, keep=True, temporal=0.8)
    f_plain, f_smooth = flicker(plain, sources), flicker(smooth, sources)
    assert f_smooth < 0.8 * f_plain, (f_smooth, f_plain)
    # The moving square is not frozen: where it arrives, the output follows the new frame.
    new = (slice(30, 50), slice(10 + 6 * 5 + 14, 30 + 6 * 5))
    assert np.abs(smooth[5][new] - plain[5][new]).mean() < 0.2 * np.abs(plain[5][new] - plain[4][new]).mean()


def test_temporal_blend_is_off_without_history():
    a = np.random.default_rng(1).random((8, 8, 3)).astype(np.float32)
    assert temporal_blend(a, a, None, None, 0.9) is a
    assert temporal_blend(a, a, np.zeros_like(a), a, 0.0) is a
    # Unchanged source: keep `strength` of the previous output.
    np.testing.assert_allclose(temporal_blend(a, a, np.zeros_like(a), a, 0.5), 0.5 * a, rtol=1e-6)


def test_temporal_blend_leaves_no_trail_next_to_motion():
    """Still source pixels near a moving object follow the new frame (G's halo around the
    object moves with it); far from it the previous frame is kept; render-noise-sized
    changes alone do not count as motion."""
    from engine.sequence import MOTION_RADIUS

    rng = np.random.default_rng(2)
    prev_src = np.full((96, 96, 3), 0.5, np.float32) + rng.normal(0, 0.005, (96, 96, 3)).astype(np.float32)
    src = prev_src + rng.normal(0, 0.005, (96, 96, 3)).astype(np.float32)   # only noise changes...
    src[40:56, 40:56] = 0.9                                                   # ...and a square appears
    prev_out, out = np.zeros((96, 96, 3), np.float32), np.ones((96, 96, 3), np.float32)
    blended = temporal_blend(out, src, prev_out, prev_src, 0.8)
    near = (slice(40 - MOTION_RADIUS + 2, 40 - 2), slice(44, 52))   # still source, within the radius
    far = (slice(0, 10), slice(0, 10))
    assert np.array_equal(blended[near], out[near])                  # follows the new frame
    assert blended[far].mean() < 0.35                                # keeps most of the previous one
    trail = temporal_blend(out, src, prev_out, prev_src, 0.8, radius=0)
    assert trail[near].mean() < 0.5                                  # without the radius: a trail


def test_a_transparent_render_stays_transparent(tmp_path, tiny_preset):
    """A frame rendered over a transparent film (RGBA PNG) is stylised in its colours and
    keeps its alpha byte for byte, so it still composites; an RGB frame stays RGB."""
    from engine.synth import Synthesizer, stylize_image, to_uint8

    synth = Synthesizer.load(tiny_preset)
    rng = np.random.default_rng(0)
    rgba = np.zeros((64, 80, 4), np.uint8)
    rgba[16:48, 20:60, :3] = rng.integers(0, 256, (32, 40, 3))
    rgba[16:48, 20:60, 3] = 255
    rgba[15, 20:60, 3] = 128                                  # a soft edge
    (tmp_path / "in").mkdir()
    Image.fromarray(rgba).save(tmp_path / "in" / "f_001.png")
    _save(tmp_path / "in" / "f_002.png", rgba[..., :3] / 255)
    written = stylize_frames(synth, collect_frames([str(tmp_path / "in")]), tmp_path / "out", progress=False)
    with Image.open(written[0]) as im:
        assert im.mode == "RGBA"
        out = np.asarray(im)
    assert np.array_equal(out[..., 3], rgba[..., 3])
    assert np.array_equal(out[..., :3], to_uint8(stylize_image(synth, rgba[..., :3].astype(np.float32) / 255)))
    with Image.open(written[1]) as im:
        assert im.mode == "RGB"
