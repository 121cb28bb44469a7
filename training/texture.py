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
  input is standardised by the exemplar's relu4_1 statistics (fixed, so tiling stays exact).
- A noise pool: periodic noise fields pushed through VGG19 once; each step draws fields
  and rolls them by whole relu4_1 cells (= 8 px rolls of the noise, exact under circular
  padding), so the encoder never runs on noise inside the loop.
- The exemplar's Gram matrices and relu3_1 features over its flips (and, optionally,
  90 degree rotations: wrong for bricks, fine for gravel) are computed once.
- bf16 autocast + channels_last where the CPU has native bf16; CUDA when present.

Checkpoints (``checkpoint.pt``: tensors, ints, strings only; loaded with
``weights_only=True``) are written atomically every ``checkpoint_every`` steps and on
Ctrl-C; a killed run loses at most the steps since the last one and ``resume`` continues.
"""
from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.generator import Generator, GeneratorConfig
from engine.noise import NoiseParams, noise_period
from engine.presets import check_name, user_dir, write_preset
from engine.progress import Progress
from engine.synth import autocast_for, pick_device, to_uint8
from engine.vgg import get_vgg19

from .discriminator import PatchDiscriminator, hinge_d_loss, hinge_g_loss
from .exemplar import augment, file_sha256, load_exemplar

GRAM_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CHECKPOINT_VERSION = 1
AUGMENTS = ("flips", "dihedral", "none")


@dataclass
class TrainConfig:
    steps: int = 1200
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
        if self.steps < 1 or self.batch < 1 or self.pool_size < 1:
            raise ValueError("steps, batch and pool_size must be positive")
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


class _Interrupted(Exception):
    pass


class TextureTrainer:
    """One training run in ``run_dir``; ``run()`` trains to ``config.steps`` and exports."""

    def __init__(self, exemplar: str | Path, name: str, run_dir: Path, config: TrainConfig,
                 preset_dir: Path | None = None, source: str = "", licence: str = "",
                 device: str | None = None, log=print, show_progress: bool = True):
        self.exemplar_path = Path(exemplar)
        self.name = check_name(name)
        self.run_dir = Path(run_dir)
        self.config = config.validate()
        self.preset_dir = Path(preset_dir) if preset_dir else user_dir()
        self.source, self.licence = source, licence
        self.device = pick_device(device)
        self.log = log
        self.show_progress = show_progress

    # ---- set-up -------------------------------------------------------------------------
    def _prepare(self) -> None:
        cfg, dev = self.config, self.device
        torch.manual_seed(cfg.seed)
        self.rng = torch.Generator().manual_seed(cfg.seed)
        self.vgg = get_vgg19("relu4_1", dev)
        ex = load_exemplar(self.exemplar_path, cfg.exemplar_size).to(dev)
        self.exemplar = ex
        with torch.no_grad():
            grams = {t: [] for t in GRAM_TAPS}
            self.real_relu3_1 = []
            for v in augment(ex, cfg.augment):
                feats = self.vgg(v.contiguous(memory_format=torch.channels_last), GRAM_TAPS)
                for t in GRAM_TAPS:
                    grams[t].append(gram(_crop_border(feats[t], t)))
                self.real_relu3_1.append(_crop_border(feats["relu3_1"], "relu3_1").float())
            self.target_gram = {t: torch.cat(g).mean(0, keepdim=True) for t, g in grams.items()}
            self.mean_rgb = ex.mean((0, 2, 3))
            self.std_rgb = ex.std((0, 2, 3))
        patch = cfg.crop // 4
        small = [r for r in self.real_relu3_1 if min(r.shape[-2:]) < patch]
        if small:
            raise ValueError(f"exemplar too small for {cfg.crop}px crops at exemplar_size "
                             f"{cfg.exemplar_size}; lower --crop or raise --exemplar-size")
        self.noise_params = NoiseParams.from_dict(cfg.noise)
        self.pool_seed_next = 0
        self.pool = torch.cat([self._pool_field() for _ in range(cfg.pool_size)])
        # G's input is relu4_1 of noise: standardise it by the pool's statistics (fixed
        # buffers saved in the preset), so G starts with O(1) activations.
        self._build_models(self.pool.mean((0, 2, 3)), self.pool.std((0, 2, 3)), self.mean_rgb)

    def _build_models(self, feat_mean: torch.Tensor, feat_std: torch.Tensor, mean_rgb: torch.Tensor) -> None:
        """G (input standardised by fixed statistics, starting flat at ``mean_rgb``), D and
        their optimisers; shared with style training."""
        cfg, dev = self.config, self.device
        self.G = Generator(GeneratorConfig.from_dict(cfg.generator)).to(dev)
        self.G.set_feature_stats(feat_mean, feat_std)
        self.G.init_output(mean_rgb)
        self.G = self.G.to(memory_format=torch.channels_last)
        self.D = PatchDiscriminator().to(dev)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))
        self.adv_weight = torch.tensor(0.0)
        self.step = 0
        self.elapsed = 0.0  # training seconds, summed over resumed sessions

    def _pool_field(self) -> torch.Tensor:
        """relu4_1 of one new periodic noise field (a pure function of the run seed and index)."""
        c = self.config.crop
        seed = (self.config.seed * 1_000_003 + self.pool_seed_next) % (2 ** 63)
        self.pool_seed_next += 1
        x = torch.from_numpy(noise_period(self.noise_params, seed, (c, c)))[None].to(self.device)
        with torch.no_grad(), autocast_for(self.device, self.config.precision):
            return self.vgg(x.contiguous(memory_format=torch.channels_last))["relu4_1"].float()

    def _sample_noise(self) -> torch.Tensor:
        cfg = self.config
        idx = torch.randint(0, self.pool.shape[0], (cfg.batch,), generator=self.rng)
        cells = cfg.crop // 8
        out = []
        for i in idx.tolist():
            dy, dx = torch.randint(0, cells, (2,), generator=self.rng).tolist()
            out.append(self.pool[i:i + 1].roll((dy, dx), (2, 3)))
        return torch.cat(out).contiguous(memory_format=torch.channels_last)

    def _sample_real(self) -> torch.Tensor:
        p = self.config.crop // 4
        out = []
        for _ in range(self.config.batch):
            k = int(torch.randint(0, len(self.real_relu3_1), (1,), generator=self.rng))
            r = self.real_relu3_1[k]
            y = int(torch.randint(0, r.shape[-2] - p + 1, (1,), generator=self.rng))
            x = int(torch.randint(0, r.shape[-1] - p + 1, (1,), generator=self.rng))
            out.append(r[..., y:y + p, x:x + p])
        return torch.cat(out)

    # ---- losses -------------------------------------------------------------------------
    feature_taps = GRAM_TAPS  # the taps the losses need from the generated batch

    def _features(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.vgg(img.contiguous(memory_format=torch.channels_last), self.feature_taps)

    def _texture_losses(self, img: torch.Tensor, feats: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(Gram + colour loss, hinge loss from D as it is now) of a batch and its features."""
        l_gram = img.new_zeros(())
        for t in GRAM_TAPS:
            target = self.target_gram[t]
            l_gram = l_gram + ((gram(feats[t]) - target) ** 2).mean() / (target ** 2).mean()
        mean, std = img.float().mean((2, 3)), img.float().std((2, 3))
        l_color = ((mean - self.mean_rgb) ** 2).mean() + ((std - self.std_rgb) ** 2).mean()
        l_adv = hinge_g_loss(self.D(feats["relu3_1"].float()))
        return l_gram + self.config.color_weight * l_color, l_adv

    # ---- the step, shared with style training (training/style.py overrides the hooks) ----
    main_name = "tex"   # the name of the main loss in progress figures

    def _sample_batch(self):
        return self._sample_noise()

    def _generate(self, batch) -> torch.Tensor:
        return self.G(batch).float()

    def _real_relu3_1(self, batch) -> torch.Tensor:
        return self._sample_real()

    def _losses(self, img, feats, batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self._texture_losses(img, feats)

    def _rebalance(self, batch) -> None:
        """Set the hinge weight so its image gradient is adv_ratio x the main loss's gradient."""
        with autocast_for(self.device, self.config.precision):
            img = self._generate(batch).detach().requires_grad_(True)
            l_main, l_adv = self._losses(img, self._features(img), batch)
        g_main, = torch.autograd.grad(l_main, img, retain_graph=True)
        g_adv, = torch.autograd.grad(l_adv, img)
        ratio = g_main.norm() / g_adv.norm().clamp_min(1e-12)
        target = self.config.adv_ratio * ratio.detach().cpu()
        self.adv_weight = target if self.adv_weight == 0 else 0.7 * self.adv_weight + 0.3 * target

    def train_step(self) -> dict[str, float]:
        cfg = self.config
        batch = self._sample_batch()
        if self.step % cfg.balance_every == 0:
            self._rebalance(batch)
        # One forward of G and VGG serves both steps: D sees the batch detached, then G's
        # losses use the same features with the just-updated D.
        with autocast_for(self.device, cfg.precision):
            img = self._generate(batch)
            feats = self._features(img)
            l_d = hinge_d_loss(self.D(self._real_relu3_1(batch)), self.D(feats["relu3_1"].detach().float()))
        self.opt_d.zero_grad(set_to_none=True)
        l_d.backward()
        self.opt_d.step()
        with autocast_for(self.device, cfg.precision):
            l_main, l_adv = self._losses(img, feats, batch)
            loss = l_main + self.adv_weight.to(self.device) * l_adv
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.step += 1
        self._after_step()
        return {self.main_name: l_main.item(), "adv": l_adv.item(), "d": l_d.item(), "w_adv": float(self.adv_weight)}

    def _after_step(self) -> None:
        if self.step % self.config.pool_refresh_every == 0:
            i = int(torch.randint(0, self.pool.shape[0], (1,), generator=self.rng))
            self.pool[i:i + 1] = self._pool_field()

    # ---- checkpoints --------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    def _fingerprint(self) -> dict:
        return {"exemplar_sha256": file_sha256(self.exemplar_path), "name": self.name,
                "config": json.dumps(asdict(self.config), sort_keys=True)}

    def save_checkpoint(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "version": CHECKPOINT_VERSION, "step": self.step, **self._fingerprint(),
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "adv_weight": self.adv_weight, "rng": self.rng.get_state(),
            "torch_rng": torch.get_rng_state(), "elapsed": self.elapsed, **self._extra_state(),
        }
        tmp = self.checkpoint_path.with_suffix(f".tmp{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)  # atomic: a kill never leaves a half file

    def _extra_state(self) -> dict:
        return {"pool": self.pool, "pool_seed_next": self.pool_seed_next}

    def _load_extra_state(self, state: dict) -> None:
        self.pool = state["pool"].to(self.device)
        self.pool_seed_next = int(state["pool_seed_next"])

    def load_checkpoint(self) -> None:
        try:
            state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
        except Exception as exc:
            raise RuntimeError(f"checkpoint {self.checkpoint_path} is unreadable ({exc}); "
                               "start over with --fresh") from None
        if state.get("version") != CHECKPOINT_VERSION:
            raise RuntimeError(f"checkpoint {self.checkpoint_path} has version {state.get('version')}, "
                               f"expected {CHECKPOINT_VERSION}; start over with --fresh")
        mine = self._fingerprint()
        for key in ("exemplar_sha256", "name", "config"):
            if state.get(key) != mine[key]:
                raise RuntimeError(f"checkpoint {self.checkpoint_path} belongs to a different run "
                                   f"({key} differs); use the same image and options, or --fresh")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.adv_weight = state["adv_weight"].cpu()
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self._load_extra_state(state)
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))

    # ---- previews and export ------------------------------------------------------------
    def render(self, size: int = 256, seed: int = 1234) -> np.ndarray:
        """A (size,size,3) uint8 seamless tile from the current G."""
        x = torch.from_numpy(noise_period(self.noise_params, seed, (size, size)))[None].to(self.device)
        was = self.G.training
        self.G.eval()
        with torch.no_grad(), autocast_for(self.device, self.config.precision):
            img = self.G(self.vgg(x.contiguous(memory_format=torch.channels_last))["relu4_1"]).float()
        self.G.train(was)
        return to_uint8(img[0].permute(1, 2, 0).cpu().numpy())

    def write_preview(self) -> Path:
        from PIL import Image

        folder = self.run_dir / "previews"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"step_{self.step:06d}.png"
        Image.fromarray(self.render()).save(path)
        return path

    def _meta(self) -> dict:
        """What the preset records besides its name and training figures."""
        return {"kind": "texture", "noise": self.noise_params.to_dict(),
                "exemplar": {"file": self.exemplar_path.name, "sha256": file_sha256(self.exemplar_path),
                             "source": self.source, "licence": self.licence}}

    def export(self) -> Path:
        from PIL import Image

        meta = {
            "name": self.name, **self._meta(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "training": {**asdict(self.config), "steps_done": self.step, "device": str(self.device),
                         "train_seconds": round(self.elapsed, 1), "torch": torch.__version__},
        }
        thumb = Image.fromarray(self.render(128))
        G = self.G.to(memory_format=torch.contiguous_format)
        folder = write_preset(self.preset_dir / self.name, meta, G, thumbnail=thumb)
        # The exemplar at training scale, for side-by-side views and quality benchmarks.
        Image.fromarray(to_uint8(self.exemplar[0].permute(1, 2, 0).cpu().numpy())).save(folder / "exemplar.png")
        return folder

    # ---- the loop -----------------------------------------------------------------------
    def run(self, resume: bool = False, fresh: bool = False, stop_after: int | None = None,
            on_step=None, should_stop=None) -> Path | None:
        """Train to ``config.steps`` (or ``stop_after`` steps this call) and export the preset.

        ``on_step(step, total, figures)`` is called after every step (progress events);
        ``should_stop()`` returning True checkpoints and raises KeyboardInterrupt (cancel).
        Returns the preset folder, or None when stopped early (``stop_after``)."""
        self._prepare()
        if self.checkpoint_path.exists():
            if resume:
                self.load_checkpoint()
                self.log(f"resumed {self.name} from step {self.step} ({self.checkpoint_path})")
            elif not fresh:
                raise RuntimeError(f"run {self.run_dir} already has a checkpoint; pass --resume to "
                                   "continue it or --fresh to start over")
        elif resume:
            self.log(f"no checkpoint in {self.run_dir}; starting from step 0")
        cfg = self.config
        bar = Progress(cfg.steps, f"train {self.name}", start=self.step, enabled=self.show_progress)
        target = cfg.steps if stop_after is None else min(cfg.steps, self.step + stop_after)

        def on_term(signum, frame):  # a polite kill checkpoints like Ctrl-C does
            raise _Interrupted()

        old = signal.signal(signal.SIGTERM, on_term) if _main_thread() else None
        try:
            while self.step < target:
                t0 = time.perf_counter()
                figures = self.train_step()
                self.elapsed += time.perf_counter() - t0
                bar.update(self.step, **figures)
                if on_step is not None:
                    on_step(self.step, cfg.steps, figures)
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    self.save_checkpoint()
                if self.step % cfg.preview_every == 0:
                    self.write_preview()
                if should_stop is not None and should_stop():
                    raise _Interrupted()
        except (KeyboardInterrupt, _Interrupted):
            bar.close()
            self.save_checkpoint()
            self.log(f"interrupted: checkpoint saved at step {self.step}; continue with --resume")
            raise KeyboardInterrupt from None
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)
        bar.close()
        if self.step < cfg.steps:
            self.save_checkpoint()
            return None
        folder = self.export()
        self.log(f"preset {self.name!r} written to {folder}")
        return folder


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()
