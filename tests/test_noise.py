import numpy as np
import pytest

from engine.noise import NoiseParams, brown_noise, noise_canvas, noise_period, perlin_noise


def seam_ratio(img: np.ndarray) -> float:
    """Mean absolute step across the wrap-around seams divided by the mean step between
    neighbouring pixels inside the image: ~1.0 when the seam is invisible. img: (..., H, W)."""
    a = np.asarray(img, np.float64)
    seam = np.concatenate([np.abs(a[..., :, 0] - a[..., :, -1]).ravel(),
                           np.abs(a[..., 0, :] - a[..., -1, :]).ravel()]).mean()
    inner = np.concatenate([np.abs(np.diff(a, axis=-1)).ravel(), np.abs(np.diff(a, axis=-2)).ravel()]).mean()
    return float(seam / inner)


@pytest.mark.parametrize("kind", ["brown", "perlin"])
def test_pure_function_of_seed_size_params(kind):
    p = NoiseParams(kind=kind, scale=16)
    a = noise_period(p, 7, (64, 96))
    b = noise_period(p, 7, (64, 96))
    c = noise_period(p, 8, (64, 96))
    assert a.shape == (3, 64, 96) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert np.abs(a - c).mean() > 0.05  # another seed is another field
    assert 0.0 <= a.min() and a.max() <= 1.0


@pytest.mark.parametrize("kind", ["brown", "perlin"])
def test_periodic(kind):
    p = NoiseParams(kind=kind, scale=16)
    field = noise_period(p, 3, (64, 80))
    assert 0.8 < seam_ratio(field) < 1.25
    canvas = noise_canvas(p, 3, (128, 160), period=(64, 80))
    assert np.array_equal(canvas[:, :64, :80], canvas[:, 64:, 80:])
    assert np.array_equal(canvas[:, :64, :80], field)


def test_brown_statistics_do_not_depend_on_canvas_size():
    small = brown_noise(1, (64, 64))
    large = brown_noise(1, (512, 512))
    assert abs(small.std() - large.std()) < 0.02
    step = lambda a: np.abs(np.diff(a, axis=-1)).mean()
    assert abs(step(small) - step(large)) / step(large) < 0.1


def test_perlin_uses_lattice_that_wraps():
    """The wrap-around seam lies on a lattice line; it must look like the interior lattice
    lines (Perlin noise is calmer there than between them, so compare like with like)."""
    a = perlin_noise(0, (96, 96), scale=32, octaves=1).astype(np.float64)
    seam = np.abs(a[..., :, 0] - a[..., :, -1]).mean() + np.abs(a[..., 0, :] - a[..., -1, :]).mean()
    inner = np.mean([np.abs(a[..., :, k] - a[..., :, k - 1]).mean() + np.abs(a[..., k, :] - a[..., k - 1, :]).mean()
                     for k in (32, 64)])
    assert 0.6 < seam / inner < 1.6, seam / inner
    # A field with no wrap (repeat larger than the canvas) fails the same measure.
    import noise as noise_lib
    xs = np.arange(96) / 32
    plain = np.array([[noise_lib.pnoise2(x, y, repeatx=1024, repeaty=1024) for x in xs] for y in xs])
    bad = (np.abs(plain[:, 0] - plain[:, -1]).mean() + np.abs(plain[0] - plain[-1]).mean()) / (
        np.mean([np.abs(plain[:, k] - plain[:, k - 1]).mean() + np.abs(plain[k] - plain[k - 1]).mean() for k in (32, 64)]))
    assert bad > 2.0, bad


@pytest.mark.parametrize("bad", [dict(kind="pink"), dict(beta=-1), dict(scale=0.5), dict(octaves=0),
                                 dict(contrast=0)])
def test_bad_params_rejected(bad):
    with pytest.raises(ValueError):
        NoiseParams(**bad).validate()
    with pytest.raises(ValueError, match="unknown noise parameters"):
        NoiseParams.from_dict({"colour": 1})


def test_absurd_period_rejected():
    with pytest.raises(ValueError, match="period"):
        noise_period(NoiseParams(), 0, (0, 10))
