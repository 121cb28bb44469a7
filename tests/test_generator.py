import pytest
import torch

from engine.generator import Generator, GeneratorConfig


@pytest.mark.parametrize("arch", ["upsample", "paper"])
def test_shape_and_wraparound(arch):
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(arch=arch, widths=(32, 16, 16))).eval()
    f = torch.randn(2, 512, 6, 5)
    with torch.no_grad():
        out = g(f)
        rolled = g(f.roll((2, 3), (2, 3)))
    assert out.shape == (2, 3, 48, 40)
    assert 0 <= out.min() and out.max() <= 1
    # G(roll(f)) == roll(G(f)): circular padding everywhere, transposed convs included.
    assert torch.allclose(rolled, out.roll((16, 24), (2, 3)), atol=1e-5)


def test_config_validation():
    with pytest.raises(ValueError, match="unknown generator arch"):
        GeneratorConfig.from_dict({"arch": "unet"})
    with pytest.raises(ValueError, match="widths"):
        GeneratorConfig.from_dict({"widths": [1, 2]})
    c = GeneratorConfig(arch="paper", widths=(8, 8, 8))
    assert GeneratorConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="upsample must be one of"):
        GeneratorConfig.from_dict({"arch": "residual", "upsample": "bicubic"})


def test_a_residual_config_saves_its_upsampling_and_old_presets_keep_nearest():
    """A residual generator says how it upsamples in the preset (bilinear by default, a
    nearest one loads as nearest); a preset saved before the key existed was trained with
    nearest neighbour and loads as such."""
    c = GeneratorConfig()
    assert c.upsample == "bilinear" and c.to_dict()["upsample"] == "bilinear"
    n = GeneratorConfig(upsample="nearest")
    assert GeneratorConfig.from_dict(n.to_dict()) == n and n.to_dict()["upsample"] == "nearest"
    old = {k: v for k, v in c.to_dict().items() if k != "upsample"}
    assert GeneratorConfig.from_dict(old).upsample == "nearest"


def test_init_output_starts_at_mean_colour():
    g = Generator(GeneratorConfig(arch="upsample", widths=(16, 16, 16)))
    g.init_output(torch.tensor([0.2, 0.5, 0.7]), gain=0.0)
    with torch.no_grad():
        out = g(torch.randn(1, 512, 2, 2))
    assert torch.allclose(out.mean((0, 2, 3)), torch.tensor([0.2, 0.5, 0.7]), atol=1e-4)


def _features(n, h, w):
    return {"relu4_1": torch.randn(n, 512, h, w), "relu3_1": torch.randn(n, 256, 2 * h, 2 * w),
            "relu2_1": torch.randn(n, 128, 4 * h, 4 * w)}


@pytest.mark.parametrize("upsample", ["nearest", "bilinear"])
def test_residual_shape_wraparound_and_side_inputs(upsample):
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(arch="residual", widths=(32, 16, 16, 8), blocks=2, upsample=upsample)).eval()
    f = _features(2, 6, 5)
    with torch.no_grad():
        out = g(f)
        rolled = g({k: v.roll((2 * v.shape[-2] // 6, 3 * v.shape[-1] // 5), (2, 3)) for k, v in f.items()})
        f2 = dict(f, relu2_1=torch.randn_like(f["relu2_1"]))
        out2 = g(f2)
    assert out.shape == (2, 3, 48, 40)
    assert torch.allclose(rolled, out.roll((16, 24), (2, 3)), atol=1e-5)
    assert not torch.allclose(out, out2, atol=1e-4)  # the finer taps reach the output
    with pytest.raises(ValueError, match="needs relu2_1"):
        g(f["relu4_1"])


@pytest.mark.parametrize("upsample", ["nearest", "bilinear"])
def test_residual_halo_bounds_its_reach(upsample):
    """A change of the input at one relu4_1 cell moves no output pixel farther than halo_px."""
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(arch="residual", widths=(16, 16, 8, 8), blocks=2, upsample=upsample)).eval()
    f = _features(1, 24, 24)
    poked = {k: v.clone() for k, v in f.items()}
    poked["relu4_1"][..., 12, 12] += 50.0
    with torch.no_grad():
        diff = (g(poked) - g(f)).abs().amax(1)[0]
    ys, xs = torch.nonzero(diff > 1e-6, as_tuple=True)
    reach = max(int((ys - 100).abs().max()), int((xs - 100).abs().max()))  # the cell spans px 96..103
    assert 0 < reach <= g.halo_px


@pytest.mark.parametrize("shape,p", [((2, 3, 5, 7), 1), ((1, 2, 4, 4), 2), ((2, 3, 3, 3), 3), ((1, 1, 1, 1), 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_circular_pad_backward_folds_the_border_onto_the_edges(shape, p, channels_last):
    """The hand-written backward (training's circular padding) equals autograd through the
    padding's slice assignments, and passes gradcheck, pads as wide as the image included."""
    from engine.circular import _pad_wrapped, circular_pad

    x = torch.randn(shape, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: circular_pad(t, p), (x,))
    weights = torch.randn(shape[0], shape[1], shape[2] + 2 * p, shape[3] + 2 * p, dtype=torch.float64)
    ours, = torch.autograd.grad((circular_pad(x, p) * weights).sum(), x)
    slices, = torch.autograd.grad((_pad_wrapped(x, p) * weights).sum(), x)
    assert torch.allclose(ours, slices, atol=1e-12)
    assert torch.equal(circular_pad(x, p), _pad_wrapped(x, p))
