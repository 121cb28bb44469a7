"""MGAN texture training: one exemplar -> a seamless texture preset.

    noise pool (periodic, through VGG19 once) --relu4_1--> G --> image --VGG19--> losses
                                                                   relu1_1..relu4_1: Gram loss
                                                                   relu3_1: hinge loss from D

What makes it train reliably on a small CPU machine (each measured, see NOTES/README):
- A Gram-matrix loss on relu1_1..relu4_1 next to the adversarial relu3_1 hinge term.
  Pure adversarial training lets D win within a few hundred steps and G collapses into a
  checkerboard; the Gram term keeps G on the exemplar's statistics, D adds structure.
- The hinge term's weight is re-balanced every ``balance_every`` steps so its gradient on
  the image is ``adv_ratio`` times the Gram gradient, whatever the exemplar's scale.
- G starts as a flat image of the exemplar's mean colour (scaled-down last layer), and its
  input is standardised by the relu4_1 statistics of its training noise (fixed, so tiling
  stays exact).
- A noise pool: periodic noise fields pushed through VGG19 once; each step draws fields
  and rolls them by whole relu4_1 cells (= 8 px rolls of the noise, exact under circular
  padding), so the encoder never runs on noise inside the loop.
- The exemplar's Gram matrices and relu3_1 features over its flips (and, optionally,
  90 degree rotations: wrong for bricks, fine for gravel) are computed once.
- bf16 autocast + channels_last where the CPU has native bf16; CUDA when present.

``TextureTask`` supplies the data and the losses to training/loop.py's ``Trainer``, which
owns the rest (G, D, the step, balancing, checkpoints, signals, budget, export):

    Trainer(TextureTask(exemplar, TrainConfig(minutes=5)), "gravel", run_dir).run()
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.generator import Generator, GeneratorConfig
from engine.noise import NoiseParams, noise_period
from engine.sequence import save_frame
from engine.synth import autocast_for, to_uint8

from .exemplar import augment, file_sha256, load_exemplar
from .loop import Critic, GeneratorStart, TaskContext

GRAM_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
AUGMENTS = ("flips", "dihedral", "none")


@dataclass
class TrainConfig:
    """The loop's settings (budget, learning rates, balancing, checkpoints, seed, precision)
    and the texture task's (canvas, exemplar, augmentation, noise pool, colour weight);
    training.style.StyleConfig extends it. Saved in checkpoints and presets."""
    steps: int | None = None        # stop after this many steps; None: after ``minutes``
    minutes: float = 5.0            # training time budget when steps is None (summed over resumes)
    batch: int = 4
    crop: int = 128                 # training canvas side (px), multiple of 8
    exemplar_size: int = 256        # exemplar's longest side after scaling
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    adv_ratio: float = 2.0          # hinge gradient / Gram gradient on the image
    balance_every: int = 50
    color_weight: float = 10.0      # per-channel mean/std of pixels against the exemplar
    augment: str = "flips"          # exemplar variants: "flips" keeps orientation (bricks), "dihedral" adds 90 deg rotations, "none"
    pool_size: int = 48
    pool_refresh_every: int = 4     # replace one pool field every N steps
    checkpoint_every: int = 100
    preview_every: int = 100
    seed: int = 0
    precision: str = "auto"
    generator: dict = field(default_factory=lambda: GeneratorConfig().to_dict())
    noise: dict = field(default_factory=lambda: NoiseParams().to_dict())

    def validate(self) -> "TrainConfig":
        if self.crop % 8 or not 32 <= self.crop <= 1024:
            raise ValueError(f"crop must be a multiple of 8 in 32..1024, got {self.crop}")
        if not 16 <= self.exemplar_size <= 4096:
            raise ValueError(f"exemplar_size must be 16..4096, got {self.exemplar_size}")
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")
        if (self.steps is not None and self.steps < 1) or self.batch < 1 or self.pool_size < 1:
            raise ValueError("steps, batch and pool_size must be positive")
        if not (math.isfinite(self.minutes) and self.minutes > 0):
            raise ValueError(f"minutes must be a positive number, got {self.minutes}")
        if self.checkpoint_every < 1 or self.preview_every < 1 or self.balance_every < 1:
            raise ValueError("checkpoint_every, preview_every and balance_every must be positive")
        GeneratorConfig.from_dict(self.generator)
        NoiseParams.from_dict(self.noise)
        return self


def gram(f: torch.Tensor) -> torch.Tensor:
    """(N,C,H,W) -> (N,C,C), normalised by the number of positions."""
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w).float()
    return flat @ flat.transpose(1, 2) / (h * w)


def _crop_border(f: torch.Tensor, tap: str) -> torch.Tensor:
    # The exemplar is not periodic: features within ~16 px of its border see wrapped pixels.
    m = max(1, 16 // {"relu1_1": 1, "relu2_1": 2, "relu3_1": 4, "relu4_1": 8}[tap])
    return f[..., m:-m, m:-m]



class TextureTask:
    """One exemplar -> a seamless texture: noise-pool batches, the Gram + colour loss next
    to D's hinge term, previews from fresh noise. Runs inside training.loop.Trainer."""

    main_name = "tex"
    feature_taps = GRAM_TAPS  # the taps the losses need from the generated batch
    adversarial_from = 0

    def __init__(self, exemplar: str | Path, config: TrainConfig, source: str = "", licence: str = ""):
        self.exemplar_path = Path(exemplar)
        self.config = config.validate()
        self.source, self.licence = source, licence

    # ---- set-up -------------------------------------------------------------------------
    def prepare(self, ctx: TaskContext) -> GeneratorStart:
        cfg, dev = self.config, ctx.device
        self.device, self.vgg, self.rng = dev, ctx.vgg, ctx.rng
        ex = load_exemplar(self.exemplar_path, cfg.exemplar_size).to(dev)
        self.exemplar = ex
        with torch.no_grad():
            grams = {t: [] for t in GRAM_TAPS}
            self.real = []  # relu3_1 of the exemplar's variants: D's real patches
            for v in augment(ex, cfg.augment):
                feats = self.vgg(v.contiguous(memory_format=torch.channels_last), GRAM_TAPS)
                for t in GRAM_TAPS:
                    grams[t].append(gram(_crop_border(feats[t], t)))
                self.real.append(_crop_border(feats["relu3_1"], "relu3_1").float())
            self.target_gram = {t: torch.cat(g).mean(0, keepdim=True) for t, g in grams.items()}
            self.mean_rgb = ex.mean((0, 2, 3))
            self.std_rgb = ex.std((0, 2, 3))
        patch = cfg.crop // 4
        if any(min(r.shape[-2:]) < patch for r in self.real):
            raise ValueError(f"exemplar too small for {cfg.crop}px crops at exemplar_size "
                             f"{cfg.exemplar_size}; lower --crop or raise --exemplar-size")
        self.noise_params = NoiseParams.from_dict(cfg.noise)
        self.pool_seed_next = 0
        self.pool = torch.cat([self._pool_field() for _ in range(cfg.pool_size)])
        # G's input is relu4_1 of noise: standardise it by the pool's statistics (fixed
        # buffers saved in the preset), so G starts with O(1) activations.
        return GeneratorStart(GeneratorConfig.from_dict(cfg.generator), self.pool.mean((0, 2, 3)),
                              self.pool.std((0, 2, 3)), self.mean_rgb)

    def _pool_field(self) -> torch.Tensor:
        """relu4_1 of one new periodic noise field (a pure function of the run seed and index)."""
        c = self.config.crop
        seed = (self.config.seed * 1_000_003 + self.pool_seed_next) % (2 ** 63)
        self.pool_seed_next += 1
        x = torch.from_numpy(noise_period(self.noise_params, seed, (c, c)))[None].to(self.device)
        with torch.no_grad(), autocast_for(self.device, self.config.precision):
            return self.vgg(x.contiguous(memory_format=torch.channels_last))["relu4_1"].float()

    # ---- data ---------------------------------------------------------------------------
    def sample_batch(self, step: int) -> torch.Tensor:
        """relu4_1 noise fields from the pool, each rolled by whole cells: (batch,512,crop/8,crop/8)."""
        cfg = self.config
        idx = torch.randint(0, self.pool.shape[0], (cfg.batch,), generator=self.rng)
        cells = cfg.crop // 8
        out = []
        for i in idx.tolist():
            dy, dx = torch.randint(0, cells, (2,), generator=self.rng).tolist()
            out.append(self.pool[i:i + 1].roll((dy, dx), (2, 3)))
        return torch.cat(out).contiguous(memory_format=torch.channels_last)

    def generate(self, G: Generator, batch: torch.Tensor) -> torch.Tensor:
        return G(batch).float()

    def real_relu3_1(self, batch) -> torch.Tensor:
        """Random (crop/4)^2 windows of the exemplar variants' relu3_1 features."""
        p = self.config.crop // 4
        out = []
        for _ in range(self.config.batch):
            k = int(torch.randint(0, len(self.real), (1,), generator=self.rng))
            r = self.real[k]
            y = int(torch.randint(0, r.shape[-2] - p + 1, (1,), generator=self.rng))
            x = int(torch.randint(0, r.shape[-1] - p + 1, (1,), generator=self.rng))
            out.append(r[..., y:y + p, x:x + p])
        return torch.cat(out)

    def after_step(self, step: int) -> None:
        if step % self.config.pool_refresh_every == 0:
            i = int(torch.randint(0, self.pool.shape[0], (1,), generator=self.rng))
            self.pool[i:i + 1] = self._pool_field()

    # ---- the losses ---------------------------------------------------------------------
    def losses(self, img: torch.Tensor, feats: dict[str, torch.Tensor], batch,
               critic: Critic) -> tuple[torch.Tensor, torch.Tensor]:
        """(Gram + colour loss, D's hinge loss) of a generated batch and its VGG19 features."""
        l_gram = img.new_zeros(())
        for t in GRAM_TAPS:
            target = self.target_gram[t]
            l_gram = l_gram + ((gram(feats[t]) - target) ** 2).mean() / (target ** 2).mean()
        mean, std = img.float().mean((2, 3)), img.float().std((2, 3))
        l_color = ((mean - self.mean_rgb) ** 2).mean() + ((std - self.std_rgb) ** 2).mean()
        return l_gram + self.config.color_weight * l_color, critic(feats)

    # ---- checkpoints, previews, export --------------------------------------------------
    def state(self) -> dict:
        return {"pool": self.pool, "pool_seed_next": self.pool_seed_next}

    def load_state(self, state: dict) -> None:
        self.pool = state["pool"].to(self.device)
        self.pool_seed_next = int(state["pool_seed_next"])

    def fingerprint(self) -> dict:
        return {"exemplar_sha256": file_sha256(self.exemplar_path)}

    def render(self, G: Generator, size: int = 256, seed: int = 1234) -> np.ndarray:
        """A (size,size,3) uint8 seamless tile from G."""
        x = torch.from_numpy(noise_period(self.noise_params, seed, (size, size)))[None].to(self.device)
        with torch.no_grad(), autocast_for(self.device, self.config.precision):
            img = G(self.vgg(x.contiguous(memory_format=torch.channels_last))["relu4_1"]).float()
        return to_uint8(img[0].permute(1, 2, 0).cpu().numpy())

    def meta(self) -> dict:
        return {"kind": "texture", "noise": self.noise_params.to_dict(),
                "exemplar": {"file": self.exemplar_path.name, "sha256": file_sha256(self.exemplar_path),
                             "source": self.source, "licence": self.licence}}

    def export_files(self, folder: Path) -> None:
        # The exemplar at training scale, for side-by-side views and quality benchmarks.
        save_frame(folder / "exemplar.png", to_uint8(self.exemplar[0].permute(1, 2, 0).cpu().numpy()))
