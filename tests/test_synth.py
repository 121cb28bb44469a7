import numpy as np
import pytest
import torch

from engine.noise import NoiseParams
from engine.presets import list_presets
from engine.synth import Synthesizer, parse_size, tile_2x2, to_uint8
from tests.conftest import skimage_image
from tests.support import residual_preset
from tests.test_noise import seam_ratio


@pytest.fixture
def synth(tiny_preset):
    return Synthesizer.load(tiny_preset, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def builtin_texture():
    textures = [p for p in list_presets() if p.kind == "texture"]
    assert textures, "no built-in texture preset found in presets/"
    return Synthesizer.load(textures[0], device="cpu")


def test_canvas_twice_the_period_has_four_identical_quadrants(synth):
    img = synth.synthesize((256, 192), seed=3, period=(128, 96))
    q = [img[:128, :96], img[:128, 96:], img[128:, :96], img[128:, 96:]]
    for other in q[1:]:
        assert np.abs(q[0] - other).max() < 1e-4


def mean_seam_ratio(synth, size, seeds=24) -> float:
    """The seam statistic averaged over seeds: one column pair is a noisy sample for a
    structured texture (a mortar line may sit right on the seam), its mean is not."""
    return float(np.mean([seam_ratio(synth.synthesize(size, seed=k).transpose(2, 0, 1)) for k in range(seeds)]))


def test_generated_seam_is_invisible_and_a_photo_seam_is_not(builtin_texture):
    from PIL import Image

    generated = mean_seam_ratio(builtin_texture, (128, 128))
    photo = np.asarray(Image.open(skimage_image("gravel.png")).convert("RGB"), np.float32).transpose(2, 0, 1) / 255
    naive = seam_ratio(photo)
    assert 0.8 < generated < 1.2, generated
    assert naive > 2.0, naive  # the failing case: a photo tiled as it is shows its seam


def test_tiled_equals_untiled_fp32(synth):
    whole = synth.synthesize((320, 256), seed=5, tile=1024)
    tiled = synth.synthesize((320, 256), seed=5, tile=96)
    assert np.abs(whole - tiled).max() < 1e-3


def test_tiled_equals_untiled_with_the_paper_generator(tmp_path):
    """The transposed-conv generator reaches further; the halo must still cover it."""
    from engine.generator import Generator, GeneratorConfig
    from engine.presets import open_preset, write_preset

    g = Generator(GeneratorConfig(arch="paper", widths=(32, 16, 16)))
    g.set_feature_stats(torch.full((512,), 100.0), torch.full((512,), 200.0))
    folder = write_preset(tmp_path / "paper", {"name": "paper", "kind": "texture",
                                               "noise": NoiseParams().to_dict()}, g)
    s = Synthesizer.load(open_preset(folder), device="cpu", precision="fp32")
    assert np.abs(s.synthesize((256, 256), seed=1, tile=1024) - s.synthesize((256, 256), seed=1, tile=64)).max() < 1e-3



def test_residual_generator_tiled_equals_untiled_and_wraps(tmp_path):
    """The residual G reaches further than the upsample G: its own halo must cover it."""
    s = Synthesizer.load(residual_preset(tmp_path / "residual"), device="cpu", precision="fp32")
    assert s.generator.tile_halo > 64
    whole = s.synthesize((320, 256), seed=1, tile=1024)
    assert np.abs(whole - s.synthesize((320, 256), seed=1, tile=96)).max() < 1e-3
    assert np.abs(whole - s.synthesize((320, 256), seed=1, tile=64)).max() < 1e-3
    # Exactly periodic: a canvas of twice the period repeats it.
    doubled = s.synthesize((640, 256), seed=1, period=(320, 256))
    assert np.abs(doubled[:320] - doubled[320:]).max() < 1e-4
    assert mean_seam_ratio(s, (128, 128), seeds=8) < 1.3

@pytest.mark.parametrize("size", [(600, 1000), (603, 1001), (8, 8), (17, 250)])
def test_exact_size_any_size(synth, size):
    img = synth.synthesize(size, seed=0)
    assert img.shape == (*size, 3)
    assert 0.0 <= img.min() and img.max() <= 1.0


def test_non_multiple_of_8_is_still_seamless(builtin_texture):
    assert 0.8 < mean_seam_ratio(builtin_texture, (123, 181)) < 1.2


def test_same_seed_same_bytes_different_seed_different_texture(builtin_texture):
    a = to_uint8(builtin_texture.synthesize((128, 128), seed=7))
    b = to_uint8(builtin_texture.synthesize((128, 128), seed=7))
    c = to_uint8(builtin_texture.synthesize((128, 128), seed=8))
    assert np.array_equal(a, b)
    diff = np.abs(a.astype(int) - c.astype(int)).mean()
    assert diff > 5.0, diff  # mean absolute difference in 0..255 levels


def test_perlin_noise_option(synth):
    img = synth.synthesize((128, 128), seed=1, noise=NoiseParams(kind="perlin", scale=32))
    assert img.shape == (128, 128, 3) and seam_ratio(img.transpose(2, 0, 1)) < 1.3


@pytest.mark.parametrize("text", ["0x10", "100000x100", "axb", "10", "-8x8"])
def test_absurd_sizes_rejected(text):
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_size_is_width_by_height():
    assert parse_size("4096x2048") == (2048, 4096)


def test_period_must_be_multiple_of_8(synth):
    with pytest.raises(ValueError, match="multiple of 8"):
        synth.synthesize((64, 64), period=(20, 20))


def test_tile_2x2():
    a = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    t = tile_2x2(a)
    assert t.shape == (4, 4, 3) and np.array_equal(t[2:, 2:], a)


def test_stylize_any_size_photo_tiled_equals_untiled(synth):
    """A photo (not periodic, sides not multiples of 8) decoded in small tiles equals one
    window: the mirror margin plus the halo give every tile the context it would have."""
    from PIL import Image

    from engine.synth import stylize_image

    photo = np.asarray(Image.open(skimage_image("chelsea.png")).convert("RGB"), np.float32)[:203, :301] / 255
    whole = stylize_image(synth, photo, tile=1024)
    tiled = stylize_image(synth, photo, tile=96)
    assert whole.shape == tiled.shape == (203, 301, 3)
    assert np.abs(whole - tiled).max() < 1e-3
    assert whole.std() > 0.01  # a real image came out, not a flat fill


@pytest.mark.parametrize("size, tile", [((160, 128), 64), ((100, 60), 1024), ((64, 64), 1024)])
def test_uint8_synthesis_equals_quantised_float(synth, size, tile):
    """dtype=uint8 quantises tile by tile (no float canvas kept) to the same bytes."""
    as_bytes = synth.synthesize(size, seed=2, tile=tile, dtype=np.uint8)
    assert as_bytes.dtype == np.uint8 and as_bytes.shape == (*size, 3)
    assert np.array_equal(as_bytes, to_uint8(synth.synthesize(size, seed=2, tile=tile)))
