r"""MDAN, the iterative method (paper section 3.1): optimise the image itself.

    x --VGG19--> relu3_1 --D--> one score per neural patch   (hinge: D says "style")
             \-> relu5_1  ~  relu5_1(content)                (MSE: keep the content)
    + total variation (smoothness)

D (training/discriminator.py, the same patch discriminator as MGAN training) is trained on
the fly, one update per step, on relu3_1 patches of the style image over the paper's
augmentation (rotations -10/0/+10 degrees, scales 1.1^-1/0/1, horizontal flip). x starts
from the content photo (guided synthesis, style transfer) or from brown noise (unguided
texture synthesis). One ``MDAN`` object keeps its D between images: the paper found that
a D trained on one image is a good start for the next, so later images need fewer steps.

Scales differ from the authors' Torch code (which fed [-1,1] images and summed TV): x here
is sRGB in [0,1] (Adam lr 0.01 is their 0.02 on [-1,1]), the content term is normalised
by the content's own relu5_1 energy and TV is a mean, so the weights below are ours.

A photo does not wrap around but VGG's convolutions do (engine/vgg.py), so a guided image
is mirror-padded by ``MARGIN`` px before VGG and the features of the margin are dropped.
An unguided canvas is periodic noise and stays periodic: its result tiles.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.noise import NoiseParams, noise_period
from engine.progress import Progress
from engine.synth import autocast_for, pick_device
from engine.vgg import get_vgg19

from .discriminator import PatchDiscriminator, hinge_d_loss, hinge_g_loss
from .exemplar import affine_variants, load_exemplar

MARGIN = 32          # px of mirror padding around a photo (8 relu3_1 cells, 2 relu5_1 cells)
REAL_WINDOW = 24     # relu3_1 cells per side of one real (style) window for D


@dataclass
class MDANConfig:
    steps: int = 125               # the authors' 5 epochs x 25 iterations
    size: int = 384                # the output's longest side (content scaled to it)
    style_size: int = 384          # the style image's longest side
    lr: float = 0.01               # Adam on the image, betas (0.5, 0.999)
    lr_d: float = 1e-3
    content_weight: float = 2.0
    tv_weight: float = 1.0
    contrast_sigma: float = 2.0    # clip each channel of the result to mean +- k sigma (0: off)
    augment: bool = True           # the paper's 18 rotations x scales x flips of the style
    real_windows: int = 4          # style windows per D update
    seed: int = 0
    precision: str = "auto"

    def validate(self) -> "MDANConfig":
        if self.steps < 1:
            raise ValueError(f"steps must be positive, got {self.steps}")
        for key in ("size", "style_size"):
            v = getattr(self, key)
            if not 64 <= v <= 4096:
                raise ValueError(f"{key} must be 64..4096 px, got {v}")
        if self.lr <= 0 or self.lr_d <= 0:
            raise ValueError("learning rates must be positive")
        if self.content_weight < 0 or self.tv_weight < 0 or self.contrast_sigma < 0:
            raise ValueError("weights and contrast_sigma must be >= 0")
        return self


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    return ((x[..., 1:, :] - x[..., :-1, :]) ** 2).mean() + ((x[..., :, 1:] - x[..., :, :-1]) ** 2).mean()


def clip_contrast(img: torch.Tensor, k: float) -> torch.Tensor:
    """Clip each channel to its mean +- k standard deviations (the authors' output step)."""
    if k <= 0:
        return img.clamp(0, 1)
    mean = img.mean((2, 3), keepdim=True)
    std = img.std((2, 3), keepdim=True)
    return torch.maximum(torch.minimum(img, mean + k * std), mean - k * std).clamp(0, 1)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))[None]


def fit_size(image: np.ndarray, longest: int) -> np.ndarray:
    """Scale (H,W,3) float so its longest side is ``longest``; sides become multiples of 8."""
    from PIL import Image

    h, w = image.shape[:2]
    s = longest / max(h, w)
    nw, nh = max(8, round(w * s / 8) * 8), max(8, round(h * s / 8) * 8)
    if (nh, nw) == (h, w):
        return image.astype(np.float32)
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32), mode="F")
                        .resize((nw, nh), Image.LANCZOS)) for c in range(3)]
    return np.clip(np.stack(chans, -1), 0, 1).astype(np.float32)


class MDAN:
    """Style (or texture) statistics of one style image plus a discriminator that learns."""

    def __init__(self, style, config: MDANConfig | None = None, device: str | None = None):
        self.config = (config or MDANConfig()).validate()
        self.device = pick_device(device)
        cfg, dev = self.config, self.device
        torch.manual_seed(cfg.seed)
        self.rng = torch.Generator().manual_seed(cfg.seed)
        if isinstance(style, np.ndarray):
            style_img = fit_size(style, cfg.style_size)
        else:
            style_img = load_exemplar(style, cfg.style_size)[0].permute(1, 2, 0).numpy()
        self.style = style_img
        self.vgg = get_vgg19("relu5_1", dev)
        variants = affine_variants([style_img]) if cfg.augment else [[style_img]]
        self.real: list[torch.Tensor] = []
        with torch.no_grad(), autocast_for(dev, cfg.precision):
            for (v,) in variants:
                f = self._features(to_tensor(v).to(dev), taps=("relu3_1",), periodic=False)["relu3_1"]
                self.real.append(f.float())
        self.min_real_side = min(min(r.shape[-2:]) for r in self.real)
        if self.min_real_side < 8:
            raise ValueError("style image too small for MDAN; raise style_size")
        self.D = PatchDiscriminator().to(dev)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))
        self.images_done = 0

    # ---- features ----------------------------------------------------------------------
    def _features(self, x: torch.Tensor, taps=("relu3_1", "relu5_1"), periodic: bool = False):
        if periodic:
            return self.vgg(x.contiguous(memory_format=torch.channels_last), taps)
        m = MARGIN
        mode = "reflect" if min(x.shape[-2:]) > m else "replicate"
        feats = self.vgg(F.pad(x, (m, m, m, m), mode=mode).contiguous(memory_format=torch.channels_last), taps)
        out = {}
        for t, f in feats.items():
            c = m // {"relu3_1": 4, "relu5_1": 16}[t]
            out[t] = f[..., c:f.shape[-2] - c, c:f.shape[-1] - c]
        return out

    def _sample_real(self, like: torch.Tensor) -> torch.Tensor:
        win = min(REAL_WINDOW, *like.shape[-2:], self.min_real_side)
        out = []
        for _ in range(self.config.real_windows):
            r = self.real[int(torch.randint(0, len(self.real), (1,), generator=self.rng))]
            y = int(torch.randint(0, r.shape[-2] - win + 1, (1,), generator=self.rng))
            x = int(torch.randint(0, r.shape[-1] - win + 1, (1,), generator=self.rng))
            out.append(r[..., y:y + win, x:x + win])
        return torch.cat(out)

    def style_distance(self, image: torch.Tensor) -> float:
        """A D-independent figure of style: relative relu3_1 Gram distance to the style."""
        from .texture import gram

        with torch.no_grad(), autocast_for(self.device, self.config.precision):
            f = self._features(image.to(self.device), taps=("relu3_1",))["relu3_1"].float()
        target = torch.stack([gram(r)[0] for r in self.real]).mean(0)
        return float(((gram(f)[0] - target) ** 2).mean() / (target ** 2).mean())

    # ---- one image -----------------------------------------------------------------------
    def run(self, content: np.ndarray | None = None, size: tuple[int, int] | None = None,
            steps: int | None = None, init: np.ndarray | None = None, seed: int | None = None,
            progress: bool = False, on_step=None, desc: str = "mdan",
            snapshots: tuple[int, ...] = ()) -> tuple[np.ndarray, list[dict]]:
        """Stylise ``content`` ((H,W,3) float [0,1], scaled to ``config.size``), or, without
        content, synthesise a periodic texture of ``size`` = (H, W) from brown noise.
        ``init`` (same size as the scaled content) replaces the starting image, e.g. the
        previous frame's result. Returns the (H,W,3) float result and per-step figures; the
        figures of the steps named in ``snapshots`` also hold the image then ("image")."""
        cfg, dev = self.config, self.device
        steps = cfg.steps if steps is None else steps
        periodic = content is None
        if content is not None:
            c = to_tensor(fit_size(content, cfg.size)).to(dev)
            with torch.no_grad(), autocast_for(dev, cfg.precision):
                c5 = self._features(c, taps=("relu5_1",))["relu5_1"].float()
            start = c
        else:
            h, w = size or (cfg.size, cfg.size)
            if h % 16 or w % 16:
                raise ValueError(f"unguided MDAN needs sides that are multiples of 16, got {w}x{h}")
            s = cfg.seed if seed is None else seed
            start = torch.from_numpy(noise_period(NoiseParams(contrast=0.15), s, (h, w)))[None].to(dev)
            c5 = None
        if init is not None:
            start = to_tensor(init).to(dev)
            if start.shape != (c if content is not None else start).shape:
                raise ValueError("init must have the size of the scaled content")
        x = start.clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=cfg.lr, betas=(0.5, 0.999))
        bar = Progress(steps, desc, enabled=progress)
        history = []
        for i in range(steps):
            with autocast_for(dev, cfg.precision):
                img = x.clamp(0, 1)
                taps = ("relu3_1",) if c5 is None else ("relu3_1", "relu5_1")
                feats = self._features(img, taps=taps, periodic=periodic)
                f3 = feats["relu3_1"].float()
                l_d = hinge_d_loss(self.D(self._sample_real(f3)), self.D(f3.detach()))
            self.opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            self.opt_d.step()
            with autocast_for(dev, cfg.precision):
                l_style = hinge_g_loss(self.D(f3))
                l_content = (((feats["relu5_1"].float() - c5) ** 2).mean() / (c5 ** 2).mean()
                             if c5 is not None else img.new_zeros(()))
                l_tv = tv_loss(img) if not periodic else tv_loss(torch.cat([img, img[..., :1, :]], 2))
                loss = l_style + cfg.content_weight * l_content + cfg.tv_weight * l_tv
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            figures = {"loss": loss.item(), "style": l_style.item(), "content": l_content.item(),
                       "tv": l_tv.item(), "d": l_d.item()}
            history.append(figures)
            if i + 1 in snapshots:
                figures["image"] = x.detach().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
            bar.update(i + 1, loss=figures["loss"], d=figures["d"])
            if on_step is not None:
                on_step(i + 1, steps, figures)
        bar.close()
        self.images_done += 1
        with torch.no_grad():
            out = clip_contrast(x.detach().clamp(0, 1), cfg.contrast_sigma)
        return out[0].permute(1, 2, 0).cpu().numpy(), history

    def score(self, image: np.ndarray) -> float:
        """The current D's hinge loss for ``image`` as generated (lower = more like the style)."""
        with torch.no_grad(), autocast_for(self.device, self.config.precision):
            f3 = self._features(to_tensor(image).to(self.device), taps=("relu3_1",))["relu3_1"]
            return float(hinge_g_loss(self.D(f3.float())))

    # ---- D across runs ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"D": self.D.state_dict(), "opt_d": self.opt_d.state_dict(),
                "rng": self.rng.get_state(), "images_done": self.images_done}

    def load_state_dict(self, state: dict) -> None:
        self.D.load_state_dict(state["D"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.rng.set_state(state["rng"])
        self.images_done = int(state["images_done"])

    def save_state(self, path) -> None:
        """Write D's state to ``path`` atomically (a kill never leaves half a file)."""
        import os

        tmp = path.with_suffix(".tmp")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def load_state(self, path, log=print) -> bool:
        """Continue from the D saved at ``path``, if there is one. A damaged file is reported
        through ``log`` and D starts afresh: the state is never worth losing the run for.
        Loaded with weights_only=True: nothing is unpickled."""
        if not path.is_file():
            return False
        try:
            self.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))
            return True
        except Exception as exc:
            log(f"MDAN discriminator state {path} unreadable ({exc}); D starts afresh")
            return False

    def describe(self) -> dict:
        return asdict(self.config)
