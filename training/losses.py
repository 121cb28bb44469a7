"""Texture losses: sliced Wasserstein distances between VGG19 feature distributions, at
several scales of the image.

- ``sliced_wasserstein``: project every feature vector of a layer on as many random unit
  directions as it has channels (drawn anew each call), sort, and compare with the
  exemplar's sorted projections (Heitz, Vanhoey, Chambon and Belcour, CVPR 2021). It
  matches the whole distribution of each layer's features, where a Gram matrix matches
  only their second moments: contrast and rare features (bright stars, mortar lines) stay.
- ``ExemplarStatistics`` holds the exemplar's feature vectors at scales 1, 1/2, 1/4 of the
  image (Snelgrove 2017): at 1/4, relu4_1 sees 4x as far (about 270 px of the original),
  which constrains structure larger than VGG's receptive field, such as a brick bond.
  Pixels join as a 3-channel layer: the colour distribution directly.

Sorting runs in fp32; per image at most ``max_points`` positions of a layer take part
(a random subset each call, 1,024 by default), which bounds the cost of the sorts at the
fine layers: they were a third of a training step at 4,096.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.vgg import TAP_STRIDE

SW_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
DEEP_TAP = "relu5_1"   # optional (TrainConfig.relu5): a 156 px receptive field, against relu4_1's 68
BORDER_PX = 16   # exemplar features this close to its border see its wrapped-around other side


def border_cells(tap: str, border_px: int = BORDER_PX) -> int:
    """Cells of a tap dropped at the (non-periodic) exemplar's border: ``border_px`` (16 px;
    8 px on photos of 32-39 px a side, which would keep nothing), and 48 px at relu5_1,
    whose wider reach would otherwise see much of the wrapped-around other side."""
    return max(1, (48 if tap == DEEP_TAP else border_px) // TAP_STRIDE[tap])


def border_px_for(side: int) -> int:
    """The border ring (px) dropped from an exemplar whose shorter side is ``side``: 16 px,
    or 8 px where 16 would leave less than one relu4_1 cell (sides of 32-39 px)."""
    return BORDER_PX if side >= 2 * BORDER_PX + 8 else BORDER_PX // 2


def sliced_wasserstein(gen: torch.Tensor, target: torch.Tensor, max_points: int = 4096,
                       pooled: bool = False) -> torch.Tensor:
    """Squared sliced Wasserstein-2 distance, per image of ``gen`` (N,C,h,w), to the
    distribution of the rows of ``target`` (M,C); averaged over images and directions.
    ``pooled``: of the N images' positions together, as one set (N*max_points of them), so
    that the batch as a whole must match the target, not each image on its own.

    Per image, k = min(h*w, max_points) random positions take part. The target is a random
    subset of k rows (all of them, when M = k: then identical sets score exactly 0); a
    target with fewer rows has its sorted projections interpolated to k quantiles."""
    if pooled:
        n, c, h, w = gen.shape
        gen, max_points = gen.permute(1, 0, 2, 3).reshape(1, c, n * h, w), n * max_points
    n, c, h, w = gen.shape
    g = gen.float().permute(0, 2, 3, 1).reshape(n, h * w, c)          # (N, hw, C)
    k = min(h * w, max_points)
    if k < h * w:
        g = g[:, torch.randperm(h * w, device=gen.device)[:k]]
    d = torch.randn(c, c, device=gen.device)
    d = d / d.norm(dim=0, keepdim=True)
    m = target.shape[0]
    # k of the exemplar's rows. From many (a million at relu1_1), drawn with replacement: a
    # permutation of all M cost more than the sort it feeds, and repeats are rare (k/M <= 1/16)
    if m <= k:
        rows = target
    elif m > 16 * k:
        rows = target[torch.randint(0, m, (k,), device=target.device)]
    else:
        rows = target[torch.randperm(m, device=target.device)[:k]]
    # the projections in fp32 also under autocast, which would round them to bf16
    with torch.autocast(gen.device.type, enabled=False):
        proj_gen = _sorted((g @ d).transpose(1, 2))                      # (N, C dirs, k)
        proj_target = _sorted((rows.float() @ d).T)                      # (C dirs, min(m, k))
    if proj_target.shape[-1] != k:
        proj_target = F.interpolate(proj_target[None], size=k, mode="linear", align_corners=True)[0]
    return ((proj_gen - proj_target[None]) ** 2).mean()


def _sorted(x: torch.Tensor) -> torch.Tensor:
    """``x.sort(dim=-1).values``. On the CPU the order comes from numpy's vectorised sorts
    (2.5x torch's there for argsort, 6x for a plain sort; the sorts were over a quarter of a
    training step), and the values keep their gradient through ``gather``."""
    if x.device.type != "cpu":
        return x.sort(dim=-1).values
    a = x.detach().contiguous().numpy()
    if not x.requires_grad:
        return torch.from_numpy(np.sort(a, axis=-1))
    return x.gather(-1, torch.from_numpy(np.argsort(a, axis=-1)))


GRID_PERIODS = (2, 4, 8)   # the generator's upsampling lattice: full, 1/2 and 1/4 resolution cells
_RING = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if max(abs(dy), abs(dx)) == 2]


def _luminance(img: torch.Tensor, window: bool) -> torch.Tensor:
    """(N,3,H,W) -> (N,H,W) luminance less its mean; ``window``: Hann-windowed (a photo's
    crop, not periodic), scaled by the window's RMS so that its power compares alike."""
    lum = img.float().mean(1)
    lum = lum - lum.mean((-2, -1), keepdim=True)
    if window:
        win = torch.outer(*(torch.hann_window(n, periodic=False, device=lum.device) for n in lum.shape[-2:]))
        lum = lum * win / win.pow(2).mean().sqrt()
    return lum


def grid_peaks(img: torch.Tensor, window: bool = False) -> torch.Tensor:
    """(N,3,H,W) periodic images, sides multiples of 8 -> (N, 12) log of the luminance's
    power at each grid frequency (periods 2, 4 and 8, in that order; each along either axis
    and both diagonals) over the mean power of the 16 frequencies two bins around it. About
    0 where nothing repeats with that period; fine lines printed on the lattice stand out by
    several units. ``window``: Hann-windowed first, so that a photo's crop (not periodic)
    compares alike (bench/checkerboard.py measures its outputs and photos so)."""
    lum = _luminance(img, window)
    with torch.autocast(img.device.type, enabled=False):
        p = torch.fft.fft2(lum).abs() ** 2 + 1e-12
    h, w = lum.shape[-2:]
    out = []
    for period in GRID_PERIODS:
        ky, kx = h // period, w // period
        for a, b in ((ky, 0), (0, kx), (ky, kx), (ky, -kx)):
            ring = torch.stack([p[:, (a + dy) % h, (b + dx) % w] for dy, dx in _RING], -1).mean(-1)
            out.append(torch.log(p[:, a % h, b % w] / ring))
    return torch.stack(out, -1)


def grid_loss(img: torch.Tensor, allowed: float = 8.0) -> torch.Tensor:
    """How far the grid frequencies' peaks rise above ``allowed`` times their surroundings
    (in log units, summed over the frequencies, averaged over images): 0 for a texture with
    no lattice-locked lines. A photo's peaks there are 1.5-4x (bench/checkerboard.py); one
    frequency's power of a random texture is exponentially distributed around its
    surroundings', so 8x happens by chance at 1 frequency in 3,000."""
    return torch.relu(grid_peaks(img) - float(np.log(allowed))).sum(-1).mean()


MESH_RADIUS = 0.125   # cycles per px: periods under 8 px, G's upsampling lattice and finer


def mesh_band(side: int, device=None) -> torch.Tensor:
    """(side, side) bool: the frequencies of a side x side spectrum with periods under 8 px."""
    f = torch.fft.fftfreq(side, device=device)
    return torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2) >= MESH_RADIUS


def smoothed_log_power(img: torch.Tensor, window: bool = False) -> torch.Tensor:
    """(N,3,S,S) -> (N,S,S) log of the luminance's 2-D power spectrum, each frequency
    averaged with its 8 neighbours (wrapping around): one periodogram bin of a random texture
    scatters exponentially around its expectation, nine of them within about a third."""
    lum = _luminance(img, window)
    with torch.autocast(img.device.type, enabled=False):
        p = torch.fft.fft2(lum).abs() ** 2 / lum[0].numel()
    p = F.avg_pool2d(F.pad(p[:, None], (1, 1, 1, 1), mode="circular"), 3, stride=1)[:, 0]
    return torch.log(p + 1e-10)


def mesh_target(variants: list[torch.Tensor], side: int, crops: int = 64, seed: int = 0) -> torch.Tensor:
    """(side, side) the exemplar's smoothed log power at ``side`` px, over random
    Hann-windowed crops of its variants."""
    power = [smoothed_log_power(c, window=True).exp() for c in _random_crops(variants, side, crops, seed)]
    return torch.log(torch.cat(power).mean(0))


def _random_crops(variants: list[torch.Tensor], side: int, crops: int, seed: int) -> list[torch.Tensor]:
    """``crops`` random side x side crops of the variants, taken from each in turn."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(crops):
        v = variants[i % len(variants)]
        h, w = v.shape[-2:]
        y = int(torch.randint(0, h - side + 1, (1,), generator=g))
        x = int(torch.randint(0, w - side + 1, (1,), generator=g))
        out.append(v[..., y:y + side, x:x + side])
    return out


def mesh_loss(img: torch.Tensor, target: torch.Tensor, allowed: float = 4.0) -> torch.Tensor:
    """How far the (periodic) images' smoothed power at periods under 8 px rises above
    ``allowed`` times the exemplar's (in log units, summed over frequencies, averaged over
    images): 0 where G adds no fine mesh the photo does not have. The grid penalty sees only
    the exact 2/4/8 px lattice frequencies; G also printed meshes between them (periods of
    2.6-4.3 px, 4-11x the photo's power there: docs/MEASURED.md)."""
    excess = torch.relu(smoothed_log_power(img) - target - float(np.log(allowed)))
    return (excess * mesh_band(img.shape[-1], img.device)).sum((-2, -1)).mean()


def radial_log_power(img: torch.Tensor, window: bool = False) -> torch.Tensor:
    """(N,3,S,S) -> (N, S//2) log of the luminance's mean power in each ring of integer
    radius 1..S/2 of the 2-D spectrum. ``window``: Hann-windowed first (a photo's crop, not
    periodic), so both compare alike."""
    lum = _luminance(img, window)
    s = lum.shape[-1]
    f = torch.fft.fftfreq(s, 1 / s, device=lum.device)
    ring = torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2).round().long().flatten()
    with torch.autocast(img.device.type, enabled=False):
        p = (torch.fft.fft2(lum).abs() ** 2).flatten(1) / s ** 2
    keep = (ring >= 1) & (ring <= s // 2)
    sums = torch.zeros(p.shape[0], s // 2 + 1, device=p.device).index_add_(1, ring[keep], p[:, keep])
    counts = torch.bincount(ring[keep], minlength=s // 2 + 1).clamp_min(1)
    return torch.log((sums / counts)[:, 1:] + 1e-10)


def spectrum_target(variants: list[torch.Tensor], side: int, crops: int = 64, seed: int = 0) -> torch.Tensor:
    """(side//2,) the exemplar's radial log power at ``side`` px: the log of the mean power
    over random Hann-windowed crops of its variants (Liu, Gousseau and Xia 2016 match the
    whole Fourier magnitude; the radial profile leaves the phases and the directions free)."""
    power = [radial_log_power(c, window=True).exp() for c in _random_crops(variants, side, crops, seed)]
    return torch.log(torch.cat(power).mean(0))


def spectrum_loss(img: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the (periodic) images' radial log power to ``target``."""
    return ((radial_log_power(img) - target) ** 2).mean()


def coarse_band(side: int, device=None) -> torch.Tensor:
    """(side, side) bool: the frequencies of a side x side spectrum with periods of 8 px and
    more, less the mean (the mesh band's complement): where large structure and its
    directions live."""
    band = ~mesh_band(side, device)
    band[0, 0] = False
    return band


def spectrum2d_loss(img: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference, over the periods of 8 px and more, of the log of the batch's
    mean smoothed 2-D power to ``target`` (losses.mesh_target of the photo at the canvas
    size): the Fourier magnitude of Liu, Gousseau and Xia (2016), directions included, so
    horizontal strata stay horizontal; the batch's mean, so that one canvas's phases may
    differ from another's."""
    p = smoothed_log_power(img).exp().mean(0)
    return ((torch.log(p) - target)[coarse_band(img.shape[-1], img.device)] ** 2).mean()


def downscale(img: torch.Tensor, factor: int) -> torch.Tensor:
    return F.avg_pool2d(img, factor) if factor > 1 else img


class ExemplarStatistics:
    """The exemplar's VGG19 feature vectors (and pixels) at each scale, over its variants."""

    def __init__(self, variants: list[torch.Tensor], vgg, scales: tuple[int, ...] = (1, 2, 4),
                 min_side: int = 32, taps: tuple[str, ...] = SW_TAPS):
        self.targets: dict[tuple[int, str], torch.Tensor] = {}
        self.norms: dict[tuple[int, str], torch.Tensor] = {}
        self.scales = []
        with torch.no_grad():
            for s in scales:
                rows: dict[str, list[torch.Tensor]] = {t: [] for t in ("pixels", *taps)}
                for v in variants:
                    x = downscale(v, s)
                    border = border_px_for(min(x.shape[-2:]))
                    if min(x.shape[-2:]) < max(min_side, 2 * border + 8):
                        continue
                    feats = vgg(x.contiguous(memory_format=torch.channels_last), taps)
                    rows["pixels"].append(x.permute(0, 2, 3, 1).reshape(-1, 3))
                    for t in taps:
                        m = border_cells(t, border)
                        f = feats[t][..., m:-m, m:-m].float()
                        if f.numel():   # relu5_1 of a photo under ~112 px a side: nothing
                            rows[t].append(f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]))
                if not rows["pixels"]:
                    continue
                self.scales.append(s)
                for t, r in rows.items():
                    if not r:
                        continue
                    flat = torch.cat(r)
                    self.targets[(s, t)] = flat
                    # Each layer's distance relative to its own spread, so all count alike.
                    self.norms[(s, t)] = flat.var(0).mean().clamp_min(1e-6)

    def usable_scales(self, side: int, min_side: int = 32) -> tuple[int, ...]:
        """The scales at which a generated crop of ``side`` px is still large enough."""
        return tuple(s for s in self.scales if side // s >= min_side)

    def loss(self, img: torch.Tensor, feats: dict[int, dict[str, torch.Tensor]],
             max_points: int = 1024, pooled: bool = False) -> torch.Tensor:
        """Sum over scales and layers (pixels included) of the normalised SW distance;
        ``feats[s]`` are VGG19 features of ``downscale(img, s)``; ``pooled``: the batch's
        images as one set (``sliced_wasserstein``)."""
        total = img.new_zeros((), dtype=torch.float32)
        for s, f in feats.items():
            x = downscale(img, s)
            total = total + sliced_wasserstein(x, self.targets[(s, "pixels")], max_points, pooled) / self.norms[(s, "pixels")]
            for t in f:
                if (s, t) in self.targets:
                    total = total + (sliced_wasserstein(f[t], self.targets[(s, t)], max_points, pooled)
                                     / self.norms[(s, t)])
        return total
