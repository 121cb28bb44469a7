"""The benchmark's copy measure: verbatim copies of the photo are found, a fresh texture of
the same kind is not one, and on a photo of little contrast neither (bench/metrics.py)."""
import numpy as np
import pytest

from bench.metrics import COPY_RMSE, copy_fraction, copy_threshold


def _field(seed: int, size: int = 160, contrast: float = 0.25) -> np.ndarray:
    """Smooth random colour blobs (uint8): a texture with no two parts alike."""
    rng = np.random.default_rng(seed)
    f = np.fft.fft2(rng.standard_normal((size, size, 3)), axes=(0, 1))
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij"))
    f *= (1.0 / np.maximum(k, 1.0 / size) ** 1.5)[..., None]
    x = np.real(np.fft.ifft2(f, axes=(0, 1)))
    x = (x - x.mean()) / x.std()
    return np.clip(127.5 + 127.5 * contrast * x, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("contrast", [0.6, 0.1])
def test_copies_are_found_and_a_fresh_texture_of_the_same_kind_is_not_one(contrast):
    photo = _field(0, contrast=contrast)
    copy = photo[20:148, 30:158]  # a cut-out of the photo
    fresh = _field(1, contrast=contrast)[:128, :128]
    threshold = copy_threshold(photo)
    assert 0 < threshold <= COPY_RMSE
    assert copy_fraction(copy, photo) == 1.0
    assert copy_fraction(fresh, photo) == 0.0
    if contrast < 0.2:
        # (little contrast: the fixed threshold alone would call the fresh texture a copy)
        assert threshold < COPY_RMSE and copy_fraction(fresh, photo, threshold=COPY_RMSE) > 0.3
