"""CPU inference's fused path (engine/circular.py): the same numbers as the step-by-step
path that training differentiates, whole canvases and windows, in strips or not."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import engine.circular as circular
from engine.circular import CircularConv2d, halo_padding, in_strips
from engine.generator import Generator, GeneratorConfig
from engine.synth import Synthesizer, _split, take_window
from engine.vgg import get_vgg19
from tests.support import residual_preset

pytestmark = pytest.mark.skipif(circular._POINTWISE is None, reason="this torch has no oneDNN fused convolution")


def _both(fn):
    """fn() on the step-by-step path (autograd on) and on the fused one (inference)."""
    with torch.enable_grad():
        eager = fn().detach()
    with torch.inference_mode():
        fused = fn()
    return eager, fused


@pytest.mark.parametrize("window", [False, True])
@pytest.mark.parametrize("up2,act,add", [(False, None, False), (False, "relu", True), (False, "leaky_relu", True),
                                         (True, "leaky_relu", False), (True, "leaky_relu", True),
                                         ("bilinear", "leaky_relu", False), ("bilinear", None, True)])
def test_a_fused_convolution_equals_the_step_by_step_one(window, up2, act, add):
    torch.manual_seed(0)
    conv = CircularConv2d(8, 6, 3)
    x = torch.randn(1, 8, 24, 40).contiguous(memory_format=torch.channels_last)  # not square
    scale = 2 if up2 else 1
    extra = torch.randn(1, 6, 24 * scale, 40 * scale) if add else None
    with halo_padding() if window else torch.enable_grad():
        eager, fused = _both(lambda: conv(x, add=extra, act=act, up2=up2))
    assert fused.shape == eager.shape == (1, 6, 24 * scale, 40 * scale)
    assert torch.allclose(fused, eager, atol=1e-5), (fused - eager).abs().max()
    if not window and not up2:  # and both wrap around: a rolled input gives the rolled output
        with torch.inference_mode():
            rolled = conv(x.roll((5, -7), (-2, -1)), add=None if extra is None else extra.roll((5, -7), (-2, -1)), act=act)
        assert torch.allclose(rolled, fused.roll((5, -7), (-2, -1)), atol=1e-5)


@pytest.mark.parametrize("fused", [False, True])
def test_the_upsampling_fold_is_nearest_neighbour_then_the_convolution(fused):
    """Both paths (training's and inference's) fold the upsampling into phase kernels;
    F.interpolate then a plain convolution is the reference, in a window and wrapped."""
    torch.manual_seed(1)
    conv = CircularConv2d(4, 3, 3)
    x = torch.randn(1, 4, 16, 16)
    with torch.inference_mode() if fused else torch.enable_grad():
        with halo_padding():
            window = conv(x, up2=True).detach()
        whole = conv(x, up2="nearest").detach()
    with torch.no_grad():
        up = F.interpolate(x, scale_factor=2, mode="nearest")
        assert torch.allclose(window, F.conv2d(up, conv.weight, conv.bias, padding=1), atol=1e-5)
        assert torch.allclose(whole, F.conv2d(F.pad(up, (1, 1, 1, 1), mode="circular"), conv.weight, conv.bias), atol=1e-5)


@pytest.mark.parametrize("fused", [False, True])
def test_the_bilinear_fold_is_periodic_bilinear_upsampling_then_the_convolution(fused):
    """A whole canvas: the canvas repeated 3x3, upsampled by F.interpolate, its middle cut
    out (bilinear upsampling of a periodic image), then a wrapped-around convolution."""
    torch.manual_seed(1)
    conv = CircularConv2d(4, 3, 3)
    x = torch.randn(1, 4, 12, 20)
    with torch.inference_mode() if fused else torch.enable_grad():
        out = conv(x, up2="bilinear").detach()
    with torch.no_grad():
        up = F.interpolate(x.repeat(1, 1, 3, 3), scale_factor=2, mode="bilinear", align_corners=False)[..., 24:48, 40:80]
        direct = F.conv2d(F.pad(up, (1, 1, 1, 1), mode="circular"), conv.weight, conv.bias)
    assert torch.allclose(out, direct, atol=1e-5), (out - direct).abs().max()
    with pytest.raises(ValueError, match="unknown upsampling"):
        conv(x, up2="bicubic")


def test_a_standardisation_folds_into_a_1x1_convolution_and_follows_its_buffers():
    torch.manual_seed(2)
    conv = CircularConv2d(5, 4, 1)
    mean, std = torch.randn(1, 5, 1, 1), torch.rand(1, 5, 1, 1) + 0.5
    x = torch.randn(1, 5, 8, 8)
    eager, fused = _both(lambda: conv(x, standardise=(mean, std)))
    assert torch.allclose(fused, eager, atol=1e-5)
    std.mul_(2)  # a preset's statistics set in place: the cached fold must not go stale
    with torch.no_grad():
        conv.weight.add_(1.0)
    eager, fused = _both(lambda: conv(x, standardise=(mean, std)))
    assert torch.allclose(fused, eager, atol=1e-5)
    with pytest.raises(ValueError, match="1x1"):
        CircularConv2d(5, 4, 3)(x, standardise=(mean, std))


def test_tiny_canvases_wrap_around_too():
    """Below 4 px a side the edge strips overlap; the conv pads a wrapped copy instead."""
    torch.manual_seed(3)
    conv = CircularConv2d(3, 3, 3)
    for shape in ((1, 3, 1, 1), (1, 3, 2, 5), (1, 3, 3, 3)):
        x = torch.randn(shape)
        eager, fused = _both(lambda: conv(x, act="relu"))
        assert torch.allclose(fused, eager, atol=1e-5), shape


@pytest.fixture(scope="module")
def regular(tmp_path_factory):
    info = residual_preset(tmp_path_factory.mktemp("p") / "regular", wave_vectors=((1 / 24, 0.0), (-1 / 48, 1 / 32)),
                           harmonics=2, bond=True)
    return Synthesizer.load(info, device="cpu", precision="fp32")


@pytest.mark.parametrize("window", [False, True])
def test_the_generator_and_encoder_fused_equal_step_by_step(regular, window):
    x = torch.rand(1, 3, 96, 136)
    waves = regular.waves_for((96, 136), 3)(np.arange(96), np.arange(136))
    vgg = get_vgg19("relu4_1")

    def run():
        with halo_padding() if window else torch.enable_grad():
            feats = vgg(x.contiguous(memory_format=torch.channels_last), regular.generator.taps)
            feats.update(waves)
            return regular.generator(feats)
    eager, fused = _both(run)
    assert torch.allclose(fused, eager, atol=1e-4), (fused - eager).abs().max()


@pytest.mark.parametrize("window", [False, True])
def test_strips_equal_the_whole_decode(regular, monkeypatch, window):
    """Strips of 8 rows (the least) against one pass: block 1 of the encoder and the last
    two stages of G each take many strips here, with wrap-around or window edges."""
    x = torch.rand(1, 3, 208, 96)
    waves = regular.waves_for((208, 96), 1)(np.arange(208), np.arange(96))
    whole = regular.decode(x, window=window, waves=dict(waves))
    calls = []
    real = circular.in_strips

    def counted(*args, **kw):
        calls.append(1)
        return real(*args, **kw)
    monkeypatch.setattr(circular, "STRIP_BYTES", 1)
    monkeypatch.setattr("engine.vgg.in_strips", counted)
    monkeypatch.setattr("engine.generator.in_strips", counted)
    strips = regular.decode(x, window=window, waves=dict(waves))
    assert len(calls) == 2
    assert torch.allclose(strips, whole, atol=1e-5), (strips - whole).abs().max()


def test_in_strips_keeps_the_scales_of_several_inputs():
    """A 2-input part at two resolutions, upsampling x4: strips equal the whole."""
    torch.manual_seed(4)
    a, b = CircularConv2d(4, 4, 3), CircularConv2d(2, 4, 3)

    def part(x, fine):
        y = a(x, act="leaky_relu", up2=True)
        return a(y, add=b(fine), up2=True)
    x, fine = torch.randn(1, 4, 40, 24), torch.randn(1, 2, 160, 96)
    with torch.inference_mode():
        for window in (False, True):
            with halo_padding() if window else torch.inference_mode():
                ref = part(x, fine)
                circular.STRIP_BYTES, saved = 1, circular.STRIP_BYTES
                try:
                    strips = in_strips(part, [(x, 1), (fine, 4)], halo=2, scale=4, px_bytes=1)
                finally:
                    circular.STRIP_BYTES = saved
            assert strips.shape == (1, 4, 160, 96)
            assert torch.allclose(strips, ref, atol=1e-5), window


def test_windows_are_block_copies_of_the_canvas_and_tiles_split_evenly():
    canvas = np.random.default_rng(0).random((3, 40, 56), np.float32)
    for y0, x0, n in ((0, 0, 20), (-30, -10, 100), (16, 40, 60)):
        rows, cols = np.arange(y0, y0 + n) % 40, np.arange(x0, x0 + n + 8) % 56
        assert np.array_equal(take_window(canvas, rows, cols), canvas[:, rows][:, :, cols])
    assert _split(2100, 2048) == [(0, 1056), (1056, 1044)]
    assert _split(8192, 2048) == [(0, 2048), (2048, 2048), (4096, 2048), (6144, 2048)]
    assert _split(2048, 2048) == [(0, 2048)]
    for side, tile in ((1000, 96), (8, 8), (4104, 2048)):
        parts = _split(side, tile)
        assert sum(n for _, n in parts) == side and all(n <= tile and y % 8 == 0 for y, n in parts)


def test_training_still_differentiates_the_generator():
    """Training runs with autograd on: the step-by-step path, with gradients everywhere."""
    g = Generator(GeneratorConfig(arch="residual", widths=(16, 16, 8, 8), blocks=1))
    feats = {"relu4_1": torch.randn(1, 512, 4, 4), "relu3_1": torch.randn(1, 256, 8, 8),
             "relu2_1": torch.randn(1, 128, 16, 16)}
    g(feats).mean().backward()
    assert all(p.grad is not None for p in g.parameters())
