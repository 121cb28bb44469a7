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


def test_init_output_starts_at_mean_colour():
    g = Generator(GeneratorConfig(widths=(16, 16, 16)))
    g.init_output(torch.tensor([0.2, 0.5, 0.7]), gain=0.0)
    with torch.no_grad():
        out = g(torch.randn(1, 512, 2, 2))
    assert torch.allclose(out.mean((0, 2, 3)), torch.tensor([0.2, 0.5, 0.7]), atol=1e-4)
