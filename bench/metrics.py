"""Texture-statistics distances used by the benchmarks (and nowhere in the product).

- ``gram_distance``: VGG19 Gram matrices on relu1_1..relu4_1, relative squared error
  averaged over layers (what Gatys' method optimises: a VGG-side view).
- ``patch_swd``: sliced Wasserstein distance between the distributions of 8x8 RGB pixel
  patches (no VGG: a pixel-side view of local structure and colour).
- ``pattern_match``: for a patterned photo with a repeat, how faithfully a texture draws its
  motifs in place (the distances above compare patches wherever they lie).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.lattice import luma
from engine.layout import box_sums, highpass
from engine.vgg import get_vgg19
from training.losses import mesh_band, smoothed_log_power
from training.texture import gram

TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H,W,3) float [0,1] or uint8 -> (1,3,H,W) float."""
    a = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


@torch.no_grad()
def grams(img: np.ndarray) -> dict[str, torch.Tensor]:
    vgg = get_vgg19("relu4_1")
    feats = vgg(to_tensor(img), TAPS)
    # The training loss's own Gram (training.texture.gram), on features without the
    # wrapped border ring.
    return {t: gram(f[..., 1:-1, 1:-1])[0] for t, f in feats.items()}


def gram_distance(img: np.ndarray, target: dict[str, torch.Tensor]) -> float:
    g = grams(img)
    return float(np.mean([((g[t] - target[t]) ** 2).sum() / (target[t] ** 2).sum() for t in TAPS]))


def _patches(img: np.ndarray, size: int = 8, stride: int = 2) -> np.ndarray:
    a = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    win = np.lib.stride_tricks.sliding_window_view(a, (size, size, 3))[::stride, ::stride, 0]
    return win.reshape(-1, size * size * 3)


def patch_swd(img: np.ndarray, reference: np.ndarray, n_proj: int = 256, seed: int = 0,
              max_patches: int = 8192) -> float:
    """Sliced Wasserstein-1 distance between 8x8 patch distributions (x100 for legibility)."""
    rng = np.random.default_rng(seed)
    a, b = _patches(img), _patches(reference)
    a = a[rng.permutation(len(a))[:max_patches]]
    b = b[rng.permutation(len(b))[:max_patches]]
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    dirs = rng.standard_normal((a.shape[1], n_proj)).astype(np.float32)
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    pa, pb = np.sort(a @ dirs, axis=0), np.sort(b @ dirs, axis=0)
    return float(np.abs(pa - pb).mean() * 100)


# ---- VGG-free measures of a texture against its exemplar (bench/quality.py) ----------------
_BINOMIAL5 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor) -> torch.Tensor:
    k = _BINOMIAL5.view(1, 1, 1, 5).repeat(x.shape[1], 1, 1, 1)
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="reflect"), k, groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, 2, 2), mode="reflect"), k.transpose(2, 3), groups=x.shape[1])


def laplacian_pyramid(img: np.ndarray, levels: int = 4) -> list[torch.Tensor]:
    """(H,W,3) -> [(1,3,h,w)] finest first; the last level is the low-pass residual
    (5-tap binomial filter, as Karras et al. 2018)."""
    x = to_tensor(img)
    out = []
    for _ in range(levels - 1):
        low = _blur(x)[..., ::2, ::2]
        out.append(x - F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False))
        x = low
    out.append(x)
    return out


def pyramid_swd(img: np.ndarray, reference: np.ndarray, levels: int = 4, n_dirs: int = 512,
                max_patches: int = 4096, seed: int = 0, first: int = 0, last: int | None = None) -> float:
    """Sliced Wasserstein-1 distance of 7x7 Laplacian-pyramid patches (Karras et al. 2018,
    metrics/sliced_wasserstein.py), averaged over the levels ``first``..``last`` (default:
    all), x1000. One change: both patch sets are normalised by the *reference's* statistics
    (Karras normalises each set by its own), so a texture with the wrong contrast is not
    forgiven."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    q = torch.linspace(0, 1, 257)
    out = []
    pairs = list(zip(laplacian_pyramid(img, levels), laplacian_pyramid(reference, levels)))
    for a, b in pairs[first:last]:
        if min(a.shape[-2:]) < 7 or min(b.shape[-2:]) < 7:
            continue
        pa, pb = (F.unfold(lv, 7)[0].T for lv in (a, b))  # (L, 147)
        pa, pb = (p[torch.from_numpy(rng.choice(len(p), max_patches, replace=False))] if len(p) > max_patches else p
                  for p in (pa, pb))
        mu, sd = pb.mean(0), pb.std(0).mean() + 1e-8
        pa, pb = (pa - mu) / sd, (pb - mu) / sd
        d = torch.randn(pa.shape[1], n_dirs, generator=gen)
        d /= d.norm(dim=0, keepdim=True)
        # The sets differ in size: compare their quantiles.
        qa, qb = torch.quantile(pa @ d, q, dim=0), torch.quantile(pb @ d, q, dim=0)
        out.append(float((qa - qb).abs().mean()) * 1000)
    return float(np.mean(out))


def structure_swd(img: np.ndarray, reference: np.ndarray, seed: int = 0) -> float:
    """Large structure: ``pyramid_swd`` on the band-pass levels at 1/8 and 1/16 of a
    six-level pyramid only, whose 7x7 patches span 56 and 112 px of the image (the 4-level
    ``pyramid_swd`` sees at most 56 px, and those through a low-pass). Needs a reference
    of at least 112 px a side; raw (x1000), lower is better: a 256 px half of a 512 px
    built-in photo scores 39-78 against the whole."""
    return pyramid_swd(img, reference, levels=6, seed=seed, first=3, last=5)


def _luma_highpass(img: np.ndarray) -> np.ndarray:
    """(H,W,3) -> the luma less its 25 px box mean (engine/layout.py ``highpass``)."""
    return highpass(luma(img))


def best_correlation(window: np.ndarray, image: np.ndarray) -> float:
    """The highest normalised correlation of ``window`` with any same-sized part of
    ``image`` (2-D float arrays; every placement inside it), by FFT."""
    h, w = window.shape
    H, W = image.shape
    if h > H or w > W:
        raise ValueError(f"a {w}x{h} window does not fit in a {W}x{H} image")
    a = window - window.mean()
    size = (H + h, W + w)
    corr = np.fft.irfft2(np.fft.rfft2(image, size) * np.fft.rfft2(a[::-1, ::-1], size), size)[h - 1:H, w - 1:W]
    var = np.maximum(box_sums(image ** 2, h, w) - box_sums(image, h, w) ** 2 / (h * w), 1e-12)
    return float((corr / (np.sqrt((a * a).sum()) * np.sqrt(var) + 1e-12)).max())


def pattern_match(texture: np.ndarray, reference: np.ndarray, repeat: tuple[int, int]) -> float:
    """How faithfully a texture draws a patterned photo's motifs: windows of half a repeat
    ((h, w) px) on a 3x3 grid of the texture, each matched at its best placement in the
    photo (``best_correlation`` of the high-passed luma), mean over the windows; 1 = the
    photo's own pattern, 0 = nothing of it. A texture of a repeat preset draws the repeat
    at a place drawn from its seed, so a faithful one matches somewhere. The photo's own
    level (``pattern_floor``) is below 1 where its repeats differ (hand-made carpets)."""
    t, p = _luma_highpass(texture), _luma_highpass(reference)
    h, w = (int(r) // 2 for r in repeat)
    ys = np.linspace(0, t.shape[0] - h, 3).astype(int)
    xs = np.linspace(0, t.shape[1] - w, 3).astype(int)
    return float(np.mean([best_correlation(t[y:y + h, x:x + w], p) for y in ys for x in xs]))


def pattern_floor(reference: np.ndarray, repeat: tuple[int, int]) -> float:
    """The photo against itself, as ``pattern_match`` sees it: a half-repeat window at
    its top left, matched in the rows below it (past the window and 8 px), where the
    pattern repeats but is not the same pixels."""
    p = _luma_highpass(reference)
    h, w = (int(r) // 2 for r in repeat)
    return best_correlation(p[:h, :w], p[h + 8:])


def color_distance(img: np.ndarray, reference: np.ndarray, n_dirs: int = 64, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance of the RGB pixel distributions, in 1/255 units."""
    gen = torch.Generator().manual_seed(seed)
    a, b = (to_tensor(x)[0].reshape(3, -1).T for x in (img, reference))
    d = torch.randn(3, n_dirs, generator=gen)
    d /= d.norm(dim=0, keepdim=True)
    q = torch.linspace(0, 1, 257)
    return float((torch.quantile(a @ d, q, dim=0) - torch.quantile(b @ d, q, dim=0)).abs().mean()) * 255


def radial_spectrum(img: np.ndarray, size: int = 128, n: int = 8, seed: int = 0) -> np.ndarray:
    """Radially averaged log power spectrum of the luminance, over ``n`` Hann-windowed crops."""
    rng = np.random.default_rng(seed)
    lum = to_tensor(img)[0].mean(0)
    h, w = lum.shape
    size = min(size, h, w)
    win = torch.hann_window(size, periodic=False)
    win = win[:, None] * win[None]
    fy = torch.fft.fftfreq(size)[:, None]
    fx = torch.fft.fftfreq(size)[None]
    radius = (torch.sqrt(fy ** 2 + fx ** 2) * size).round().long().clamp(max=size // 2)
    power = torch.zeros(size, size)
    for y, x in zip(rng.integers(0, h - size + 1, n), rng.integers(0, w - size + 1, n)):
        c = lum[y:y + size, x:x + size]
        power += torch.fft.fft2((c - c.mean()) * win).abs() ** 2
    radial = torch.zeros(size // 2 + 1).index_add_(0, radius.flatten(), power.flatten())
    counts = torch.zeros(size // 2 + 1).index_add_(0, radius.flatten(), torch.ones(size * size))
    return np.log10(radial[1:].numpy() / counts[1:].numpy() / n + 1e-12)


def _mean_smoothed_power(img: np.ndarray, size: int, n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    x = to_tensor(img)
    h, w = x.shape[-2:]
    crops = [x[..., y:y + size, x0:x0 + size] for y, x0 in zip(rng.integers(0, h - size + 1, n), rng.integers(0, w - size + 1, n))]
    return torch.cat([smoothed_log_power(c, window=True).exp() for c in crops]).mean(0)


def mesh_excess(img: np.ndarray, reference: np.ndarray, size: int = 128, seed: int = 0) -> float:
    """The largest ratio, at periods under 8 px, of the image's luminance power to the
    reference's (Hann-windowed crops of ``size`` px, 9 of the image and 16 of the reference,
    averaged; each frequency with its 8 neighbours): 2.6-4.8 for a 256 px part of a bench
    photo against the whole; higher where a fine mesh shows that the photo does not have."""
    size = min(size, *img.shape[:2], *reference.shape[:2])
    ratio = _mean_smoothed_power(img, size, 9, seed) / _mean_smoothed_power(reference, size, 16, seed + 1)
    return float(ratio[mesh_band(size)].max())


def spectrum_distance(img: np.ndarray, reference: np.ndarray) -> float:
    """Mean absolute difference of the radially averaged log10 power spectra (1 = a factor
    of 10 in power on average), over the frequencies both images have."""
    size = min(128, *img.shape[:2], *reference.shape[:2])
    return float(np.abs(radial_spectrum(img, size) - radial_spectrum(reference, size)).mean())


def seam_ratio(texture: np.ndarray) -> float:
    """The wrap-around step (last row/column to the first) over the mean interior step:
    about 1 for a texture that tiles, well above 1 where a seam shows."""
    a = texture.astype(np.float32)
    wrap = (np.abs(a[:, -1] - a[:, 0]).mean() + np.abs(a[-1] - a[0]).mean()) / 2
    inner = (np.abs(np.diff(a, axis=1)).mean() + np.abs(np.diff(a, axis=0)).mean()) / 2
    return float(wrap / max(inner, 1e-8))


def seed_diversity(a: np.ndarray, b: np.ndarray, reference: np.ndarray, seed: int = 0) -> float:
    """Mean |a - b| between textures of two seeds, over the same between two random crops of
    the exemplar: about 1 when seeds differ as much as two places of the photo do."""
    rng = np.random.default_rng(seed)
    # Windows small enough that two places of the photo differ (half its side, at most 128).
    h = w = max(8, min(128, a.shape[0], a.shape[1], reference.shape[0] // 2, reference.shape[1] // 2))
    diffs = []
    for _ in range(8):
        y0, x0, y1, x1 = (int(rng.integers(0, reference.shape[0] - h + 1)), int(rng.integers(0, reference.shape[1] - w + 1)),
                          int(rng.integers(0, reference.shape[0] - h + 1)), int(rng.integers(0, reference.shape[1] - w + 1)))
        diffs.append(np.abs(reference[y0:y0 + h, x0:x0 + w].astype(np.float32) - reference[y1:y1 + h, x1:x1 + w]).mean())
    ours = [np.abs(a[y:y + h, x:x + w].astype(np.float32) - b[y:y + h, x:x + w]).mean()
            for y in range(0, a.shape[0] - h + 1, h) for x in range(0, a.shape[1] - w + 1, w)]
    return float(np.mean(ours) / max(np.mean(diffs), 1e-8))


COPY_RMSE = 0.04  # a verbatim copy: this close (RMSE in [0,1] units) to a photo patch ...
COPY_CONTRAST = 0.28  # ... or this share of the photo's pixel std, where that is less (copy_threshold)


def copy_threshold(reference: np.ndarray) -> float:
    """The RMSE under which a texture's patch counts as a copy of the photo (uint8):
    ``COPY_RMSE``, scaled down for photos of less contrast than the bricks photo's (pixel
    std 0.143). A photo of little contrast (wood: std 0.068) holds patches a median 0.032
    from the nearest part of it they do not overlap, so a fixed 0.04 called most of any
    texture of it a copy."""
    return min(COPY_RMSE, COPY_CONTRAST * float(np.asarray(reference, np.float32).std() / 255.0))


@torch.no_grad()
def copy_fraction(texture: np.ndarray, reference: np.ndarray, patch: int = 32,
                  threshold: float | None = None) -> float:
    """Fraction of the texture's 32x32 patches (stride 16) whose nearest exemplar patch
    (stride 2, RMSE in [0,1] units) is closer than ``threshold`` (default:
    ``copy_threshold`` of the exemplar): verbatim copies."""
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if threshold is None:
        threshold = copy_threshold(reference)
    t, r = to_tensor(texture).to(dev), to_tensor(reference).to(dev)
    pt = F.unfold(t, patch, stride=patch // 2)[0].T
    pr = F.unfold(r, patch, stride=2)[0].T
    best = torch.full((len(pt),), float("inf"), device=dev)
    for i in range(0, len(pr), 4096):
        best = torch.minimum(best, torch.cdist(pt, pr[i:i + 4096]).min(1).values)
    rmse = best.cpu() / np.sqrt(pt.shape[1])
    return float((rmse < threshold).float().mean())
