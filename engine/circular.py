"""Wrap-around (circular) convolution, and CPU inference's fast path for it.

``nn.Conv2d(padding_mode="circular")`` pads through a generic path that copies between
memory layouts; on channels_last bf16 tensors it took 60% of a 512x512 synthesis.
``circular_pad`` makes one channels-last copy instead.

A tile of a large canvas is decoded from a window that already carries a halo of real
neighbours wider than the network's reach, so what a convolution puts beyond the
window's edge never reaches the pixels that are kept. There ``halo_padding()`` makes every
CircularConv2d pad with zeros inside the convolution itself, which copies nothing.

CPU inference (no autograd) takes a fused path, where a 2-core Xeon spent 40% of a tile
outside the convolutions and the rest waited on memory:
- each convolution is one oneDNN kernel with its activation and addition fused, its input
  standardisation folded into 1x1 weights and a x2 nearest upsampling folded into four
  phase kernels at the low resolution;
- a whole canvas wraps around without a padded copy: the convolution pads with zeros and
  its one-pixel ring of outputs is recomputed from thin wrapped strips;
- ``in_strips`` runs the full-resolution parts of the network on strips of rows, which
  bounds their memory and keeps each layer's input in the cache.
Training keeps the step-by-step path (the same arithmetic, which autograd differentiates);
tests/test_fused.py holds the two equal.
"""
from __future__ import annotations

import contextlib
import contextvars

import torch
import torch.nn.functional as F
from torch import nn

# Per thread / task, not global: the engine's worker and a test can decode side by side.
_WRAP = contextvars.ContextVar("mgan_wrap_padding", default=True)


@contextlib.contextmanager
def halo_padding():
    """Inside: convolutions pad with zeros (the input is a window with a halo), not by
    wrapping around (the input is a whole periodic canvas)."""
    token = _WRAP.set(False)
    try:
        yield
    finally:
        _WRAP.reset(token)


LEAKY_SLOPE = 0.2
ACTS = (None, "relu", "leaky_relu")
# oneDNN's fused convolution (conv + add + activation in one pass over memory), the kernel
# torch.compile itself emits on CPUs. Without it, the activations, the additions and the
# input standardisation each cost a pass of their own: 40% of a 1216 px tile on a 2-core
# Xeon, where the convolutions ran at about 80% of the same run's bf16 matmul.
_POINTWISE = getattr(torch.ops.mkldnn, "_convolution_pointwise", None) if torch.backends.mkldnn.is_available() else None


_FUSE = contextvars.ContextVar("mgan_fused_inference", default=True)


def fused_inference(x: torch.Tensor) -> bool:
    """The fused kernels serve CPU inference; training (autograd), CUDA and ``step_by_step()``
    take the step-by-step path."""
    return _POINTWISE is not None and x.device.type == "cpu" and not torch.is_grad_enabled() and _FUSE.get()


@contextlib.contextmanager
def step_by_step():
    """Inside: inference computes step by step, as training does (a damaged preset's
    1/std overflows there, where folded into a weight it may stay finite)."""
    token = _FUSE.set(False)
    try:
        yield
    finally:
        _FUSE.reset(token)


STRIP_BYTES = 2 ** 27


def in_strips(fn, inputs, halo: int, scale: float, px_bytes: int) -> torch.Tensor:
    """``fn(*inputs)`` for a part of a network made of 'same' convolutions (and x2 pooling or
    upsampling) that reaches ``halo`` rows of its first input, evaluated on strips of rows,
    each with ``halo`` rows of context. ``inputs``: (tensor, s) pairs, s rows of that tensor
    per row of the first (s = 1 for the first, 2 for one at twice its resolution); ``scale``:
    output rows per row of the first input; ``px_bytes``: the part's bytes per pixel of the
    first input, which sizes the strips to about STRIP_BYTES. ``fn`` may return a tuple,
    and ``scale`` is then a tuple of each output's.

    Two gains: its intermediate tensors are a strip's size, not the whole input's (full
    resolution layers set a large canvas's peak memory), and each layer reads the previous
    one's output while it is still in the CPU's cache (profiled on a 2-core Xeon: VGG19's
    second 64-channel convolution ran at ~1,200 GFLOP/s over a whole 2048 px canvas and
    ~1,900 in strips; over a whole canvas it waits on memory). Whole canvases wrap around; windows keep their zero
    padding at their edges. The result equals ``fn(*inputs)``: every kept pixel saw only
    real context."""
    x = inputs[0][0]
    n, _, h, w = x.shape
    rows = max(8, STRIP_BYTES // max(1, px_bytes * w) // 8 * 8)
    if h <= rows + 2 * halo:
        return fn(*(t for t, _ in inputs))
    if isinstance(scale, tuple):  # several outputs, each at its own scale
        return _in_strips(fn, inputs, halo, scale, rows)
    return _in_strips(lambda *a: (fn(*a),), inputs, halo, (scale,), rows)[0]


def _in_strips(fn, inputs, halo: int, scales: tuple, rows: int) -> tuple:
    n, _, h, w = inputs[0][0].shape
    wrap = _WRAP.get()
    outs = [None] * len(scales)
    with halo_padding():
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            if wrap:
                top, left = halo, halo
                strips = [_wrapped(t, (r0 - halo) * k, (r1 + halo) * k, halo * k) for t, k in inputs]
            else:
                a = max(0, r0 - halo)
                top, left = r0 - a, 0
                strips = [t[..., a * k:min(h, r1 + halo) * k, :] for t, k in inputs]
            for i, (y, scale) in enumerate(zip(fn(*strips), scales)):
                y = y[..., int(top * scale):int((top + r1 - r0) * scale), int(left * scale):int((left + w) * scale)]
                if outs[i] is None:
                    outs[i] = torch.empty((n, y.shape[1], int(h * scale), int(w * scale)), dtype=y.dtype,
                                          device=y.device, memory_format=torch.channels_last)
                outs[i][..., int(r0 * scale):int(r1 * scale), :] = y
    return tuple(outs)


def _wrapped(x: torch.Tensor, r0: int, r1: int, p: int) -> torch.Tensor:
    """Rows r0..r1 (indices modulo the height) of x, with p wrapped-around columns on each
    side: one channels-last copy."""
    n, c, h, w = x.shape
    out = torch.empty((n, c, r1 - r0, w + 2 * p), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    at = 0
    while at < r1 - r0:
        src = (r0 + at) % h
        k = min(h - src, r1 - r0 - at)
        out[..., at:at + k, p:p + w] = x[..., src:src + k, :]
        at += k
    if p:
        out[..., :p] = out[..., w:w + p]
        out[..., p + w:] = out[..., p:2 * p]
    return out


def circular_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Pad the last two dims of (N,C,H,W) by ``p`` (at most H and W) on each side with
    wrapped-around values."""
    if p == 0:
        return x
    if x.requires_grad:
        return _CircularPad.apply(x, p)
    return _pad_wrapped(x, p)


class _CircularPad(torch.autograd.Function):
    """circular_pad with a backward that folds the border's gradient back onto the edges.
    Autograd through the five slice assignments cloned the whole padded gradient once per
    assignment: in training that was a quarter of a CPU step."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: int) -> torch.Tensor:
        ctx.p = p
        return _pad_wrapped(x, p)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        p = ctx.p
        h, w = g.shape[-2] - 2 * p, g.shape[-1] - 2 * p
        cols = g[..., p:p + w].clone()
        cols[..., :p] += g[..., p + w:]
        cols[..., w - p:] += g[..., :p]
        gx = cols[..., p:p + h, :].clone()
        gx[..., :p, :] += cols[..., p + h:, :]
        gx[..., h - p:, :] += cols[..., :p, :]
        return gx, None


def _pad_wrapped(x: torch.Tensor, p: int) -> torch.Tensor:
    n, c, h, w = x.shape
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    out = torch.empty((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype, device=x.device, memory_format=layout)
    # one copy of x (two concatenations made two); rows wrap first, then whole columns
    out[..., p:p + h, p:p + w] = x
    out[..., :p, p:p + w] = x[..., -p:, :]
    out[..., p + h:, p:p + w] = x[..., :p, :]
    out[..., :p] = out[..., w:w + p]
    out[..., p + w:] = out[..., p:2 * p]
    return out


# A x2 upsampling then a 3x3 convolution equals, for each of the four output phases (row
# parity a, column parity b), a 3x3 convolution of the low-resolution input whose taps are
# weighted sums of the original ones. _PHASE[mode][a][low tap, original tap] gives the weights:
# - nearest: upsampled row 2i+a+d (d = -1, 0, 1) is low-res row i + floor((a+d)/2);
# - bilinear (half-pixel centres, as F.interpolate with align_corners=False): upsampled row
#   2i is 1/4 of row i-1 and 3/4 of row i, row 2i+1 is 3/4 of row i and 1/4 of row i+1.
#   Nearest neighbour's 2x2 blocks leak a period-2 (and, two stages up, period-4) pattern
#   wherever the image varies; bilinear's ramps do not (bench/checkerboard.py).
_PHASE = {
    "nearest": torch.tensor([[[1, 0, 0], [0, 1, 1], [0, 0, 0]],
                             [[0, 0, 0], [1, 1, 0], [0, 0, 1]]], dtype=torch.float32),
    "bilinear": torch.tensor([[[0.75, 0.25, 0], [0.25, 0.75, 0.75], [0, 0, 0.25]],
                              [[0.25, 0, 0], [0.75, 0.75, 0.25], [0, 0.25, 0.75]]], dtype=torch.float32),
}
UPSAMPLING = tuple(_PHASE)


class CircularConv2d(nn.Conv2d):
    """A stride-1 'same' convolution that wraps around; its parameters are a plain Conv2d's
    (``weight``, ``bias``), so saved weights load either way.

    ``forward(x, add=, act=, standardise=, up2=)`` computes act(conv(u) + add), where u is
    x, or (x - mean) / std with ``standardise`` = (mean, std) buffers (1x1 convolutions
    only), or with ``up2`` ("nearest" or "bilinear"; True: nearest) x upsampled x2 (3x3
    only, wrapping around like the convolution); ``act`` is one of
    ACTS. In CPU inference this is one fused oneDNN kernel: the standardisation folded into
    the weights, the upsampling into four phase kernels at the low resolution whose outputs
    are interleaved (no upsampled copy of the input, and 4x the output channels, which AMX
    runs faster). Folded weights are cached per dtype until a weight changes. Otherwise it
    is the same arithmetic step by step, which autograd and autocast see."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, padding=0, bias=bias)
        self.pad = kernel_size // 2
        self._folded = None

    def forward(self, x: torch.Tensor, add: torch.Tensor | None = None, act: str | None = None,
                standardise: tuple[torch.Tensor, torch.Tensor] | None = None, up2: bool | str = False) -> torch.Tensor:
        up2 = "nearest" if up2 is True else (up2 or None)
        if act not in ACTS:
            raise ValueError(f"unknown activation {act!r}; known: {ACTS}")
        if standardise is not None and self.pad:
            raise ValueError("only a 1x1 convolution folds an input standardisation")
        if up2 and self.kernel_size != (3, 3):
            raise ValueError("only a 3x3 convolution folds a x2 upsampling")
        if up2 not in (None,) + UPSAMPLING:
            raise ValueError(f"unknown upsampling {up2!r}; known: {UPSAMPLING}")
        if fused_inference(x):
            return self._fused(x, add, act, standardise, up2)
        if standardise is not None:
            x = (x - standardise[0]) / standardise[1]
        if up2:
            # the four phase kernels at the low resolution, their outputs interleaved: the
            # fused path's arithmetic, differentiable (a quarter of the input pixels, and
            # no upsampled copy for autograd to keep)
            w, b = _phase_weights(self.weight, self.bias, up2)
            p = circular_pad(x, 1) if _WRAP.get() else F.pad(x, (1, 1, 1, 1))
            y = _interleave(F.conv2d(p, w, b))
        elif _WRAP.get():
            y = F.conv2d(circular_pad(x, self.pad), self.weight, self.bias)
        else:
            y = F.conv2d(x, self.weight, self.bias, padding=self.pad)
        if add is not None:
            y = y + add
        if act == "relu":
            y = F.relu(y)
        elif act == "leaky_relu":
            y = F.leaky_relu(y, LEAKY_SLOPE)
        return y

    def _weights(self, dtype: torch.dtype, standardise, up2: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Weight and bias in ``dtype``, the standardisation folded in (W/std, b - W.(mean/std)),
        or the upsampling (output channel (2a + b) * C + c: phase (a, b) of channel c)."""
        tensors = (self.weight, self.bias) + (tuple(standardise) if standardise is not None else ())
        key = (dtype, up2) + tuple((t.data_ptr(), t._version) for t in tensors if t is not None)
        if self._folded is None or self._folded[0] != key:
            w, b = self.weight.detach().float(), None if self.bias is None else self.bias.detach().float()
            if standardise is not None:
                mean, std = (t.detach().float().reshape(1, -1, 1, 1) for t in standardise)
                shift = (w * (mean / std)).sum(dim=(1, 2, 3))
                w = w / std
                b = -shift if b is None else b - shift
            if up2:
                w, b = _phase_weights(w, b, up2)
            w = w.to(dtype).contiguous(memory_format=torch.channels_last)
            self._folded = (key, w, None if b is None else b.to(dtype))
        return self._folded[1], self._folded[2]

    def _fused(self, x, add, act, standardise, up2) -> torch.Tensor:
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
        w, b = self._weights(dtype, standardise, up2)
        x = x.to(dtype).contiguous(memory_format=torch.channels_last)
        if add is not None:
            want = (x.shape[-2] * (2 if up2 else 1), x.shape[-1] * (2 if up2 else 1))
            if tuple(add.shape[-2:]) != want:
                raise ValueError(f"the addition is {tuple(add.shape[-2:])}, the convolution's output {want}")
            add = add.to(dtype).contiguous(memory_format=torch.channels_last)
            if up2:
                add = _phases(add)
        y = self._fused_same(x, w, b, add, act)
        return _interleave(y) if up2 else y

    def _fused_same(self, x, w, b, add, act) -> torch.Tensor:
        p = self.pad
        h, wd = x.shape[-2:]
        if not _WRAP.get() or p == 0:
            return _fused_conv(x, w, b, p, add, act)
        if min(h, wd) < 4 * p:
            return _fused_conv(circular_pad(x, p), w, b, 0, add, act)
        # A whole periodic canvas: zero padding inside the kernel (no padded copy of the
        # input, which cost as much as a 64-channel convolution), then the p-wide ring of
        # outputs that saw the zeros is recomputed from thin wrapped-around strips.
        y = _fused_conv(x, w, b, p, add, act)
        ring = torch.cat((x[..., -2 * p:, :], x[..., :2 * p, :]), dim=-2)  # rows H-2p..H+2p, wrapped
        ring = torch.cat([ring[..., -p:], ring, ring[..., :p]], dim=-1)
        edge = None if add is None else torch.cat([add[..., -p:, :], add[..., :p, :]], dim=-2)
        out = _fused_conv(ring, w, b, 0, edge, act)     # output rows H-p..H+p
        y[..., -p:, :], y[..., :p, :] = out[..., :p, :], out[..., p:, :]
        cols = torch.cat([x[..., -2 * p:], x[..., :2 * p]], dim=-1)
        cols = torch.cat([cols[..., -p:, :], cols, cols[..., :p, :]], dim=-2)
        edge = None if add is None else torch.cat([add[..., -p:], add[..., :p]], dim=-1)
        out = _fused_conv(cols, w, b, 0, edge, act)      # output columns W-p..W+p
        y[..., -p:], y[..., :p] = out[..., :p], out[..., p:]
        return y


def _phase_weights(w: torch.Tensor, b: torch.Tensor | None, up2: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A 3x3 convolution after a x2 upsampling -> the four phase kernels at the low
    resolution (output channel (2a + b) * C + c: phase (a, b) of channel c), and the bias."""
    ph = _PHASE[up2].to(w.device, w.dtype)
    w = torch.einsum("ayk,bxl,oikl->aboiyx", ph, ph, w).reshape(-1, *w.shape[1:])
    return w, None if b is None else b.repeat(4)


def _phases(x: torch.Tensor) -> torch.Tensor:
    """(N,C,2h,2w) -> (N,4C,h,w), channel (2a + b) * C + c = x[c, 2i + a, 2j + b]; channels-last."""
    n, c, h2, w2 = x.shape
    y = x.permute(0, 2, 3, 1).reshape(n, h2 // 2, 2, w2 // 2, 2, c).permute(0, 1, 3, 2, 4, 5)
    return y.reshape(n, h2 // 2, w2 // 2, 4 * c).permute(0, 3, 1, 2)


def _interleave(y: torch.Tensor) -> torch.Tensor:
    """The inverse of ``_phases``: (N,4C,h,w) -> (N,C,2h,2w), channels-last."""
    n, c4, h, w = y.shape
    z = y.permute(0, 2, 3, 1).reshape(n, h, w, 2, 2, c4 // 4).permute(0, 1, 3, 2, 4, 5)
    return z.reshape(n, 2 * h, 2 * w, c4 // 4).permute(0, 3, 1, 2)


def _fused_conv(x, w, b, pad, add, act) -> torch.Tensor:
    """act(conv(x) + add) with zero padding ``pad``, one oneDNN kernel (channels-last)."""
    x = x.contiguous(memory_format=torch.channels_last)
    scalars = [LEAKY_SLOPE] if act == "leaky_relu" else []
    if add is None:
        return _POINTWISE(x, w, b, [pad, pad], [1, 1], [1, 1], 1, act or "none", scalars, "")
    add = add.contiguous(memory_format=torch.channels_last)
    # oneDNN fuses an addition with relu but not with leaky relu: that one runs in place
    y = _POINTWISE.binary(x, add, w, b, [pad, pad], [1, 1], [1, 1], 1, "add", 1.0,
                          act if act == "relu" else None, [], "")
    return F.leaky_relu_(y, LEAKY_SLOPE) if act == "leaky_relu" else y
