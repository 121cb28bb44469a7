"""The benchmark's copy measure: verbatim copies of the photo are found, a fresh texture of
the same kind is not one, and on a photo of little contrast neither (bench/metrics.py)."""
import numpy as np
import pytest

from bench.metrics import COPY_RMSE, copy_fraction, copy_threshold
from engine.noise import brown_noise


def _field(seed: int, contrast: float) -> np.ndarray:
    """Periodic brown noise as a uint8 photo (160 px): a texture with no two parts alike."""
    return (np.clip(brown_noise(seed, (160, 160), contrast=contrast), 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8)


@pytest.mark.parametrize("contrast", [0.3, 0.03])
def test_copies_are_found_and_a_fresh_texture_of_the_same_kind_is_not_one(contrast):
    photo = _field(0, contrast=contrast)
    copy = photo[20:148, 30:158]  # a cut-out of the photo
    fresh = _field(1, contrast=contrast)[:128, :128]
    threshold = copy_threshold(photo)
    assert 0 < threshold <= COPY_RMSE
    assert copy_fraction(copy, photo) == 1.0
    assert copy_fraction(fresh, photo) == 0.0
    if contrast < 0.1:
        # (little contrast: the fixed threshold alone would call the fresh texture a copy)
        assert threshold < COPY_RMSE and copy_fraction(fresh, photo, threshold=COPY_RMSE) > 0.3
