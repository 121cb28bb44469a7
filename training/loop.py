"""The one MGAN training loop. A ``Trainer`` runs a *task* to a budget and exports a preset.

The loop owns everything that does not depend on what is learnt: seeding, G and D and
their optimisers, the step (D's hinge update, then G's, from one shared forward of G and
VGG19), the re-balancing of the adversarial weight, checkpoints, Ctrl-C/SIGTERM/cancel,
previews, the progress bar, the budget (steps, or minutes of training time), going back
from a collapsed or diverged step (G's output saturated, or a loss not finite), and export.
The task (``TextureTask`` in training/texture.py, ``StyleTask`` in training/style.py)
supplies the data, G's input statistics, the losses and what its preset records; it never
touches D, the optimisers or the files of the run.

    batch = task.sample_batch(step)
    img   = task.generate(G, batch)               VGG19 taps: task.feature_taps
    D     <- hinge(D(task.real_features(batch)), D(relu3_1(img), relu2_1(img)))
    G     <- main + adv_weight * adv, where (main, adv) = task.losses(img, feats, batch, critic)

Checkpoints (``checkpoint.pt``: tensors, ints, strings only; loaded with
``weights_only=True``) are written atomically every ``checkpoint_every`` steps, when the
budget is spent and on Ctrl-C/SIGTERM/cancel; a killed run loses at most the steps since
the last one and ``resume`` continues. A checkpoint records what made it (inputs' hashes,
preset name, the whole config as JSON) and is refused by a run that differs.
"""
from __future__ import annotations

import copy
import json
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch

from engine.generator import Generator, GeneratorConfig
from engine.presets import check_name, user_dir, write_preset
from engine.progress import Progress
from engine.synth import autocast_for, pick_device
from engine.vgg import get_vgg19

from .discriminator import PatchDiscriminator, hinge_d_loss, hinge_g_loss

# 2: the config gained ``minutes`` (and ``steps`` may be null); 3: ``track_balance``; 4:
# ``relu5``; 5: ``mesh_weight`` and ``mesh_allowed``; 6: ``lr_decay``; 7: ``layout``,
# ``layout_weight`` and ``layout_scale``; 8: ``sw_pooled``; 9: ``d_global`` (on: D has
# a global head, training/discriminator.py); 10: ``d_fine`` (off: its fine head); 11:
# ``mesh_regular`` (the mesh penalty also on regular photos); 12: ``stripe_penalties``; 13:
# ``boards``; 14: ``spectrum_kind``; 15: ``repeat``; 16: ``repeat_fine``. Older checkpoints'
# config fingerprints cannot match, so they are refused by version, clearly.
CHECKPOINT_VERSION = 16
D_TAP = "relu3_1"   # the VGG19 layer whose patches D judges
FINE_TAP = "relu2_1"  # ... and its fine head (``d_fine``)
# Steps in a row with G's output saturated before a run counts as collapsed: no loss can
# move G's weights from there. Seen where D won the first steps at a high learning rate
# (docs/MEASURED.md). A collapsed run goes back to its last state from before the collapse
# and halves G's learning rate, up to RECOVERIES times. Saturated: at least SATURATED_SHARE
# of the output's values (or half of what the exemplar leaves, if it is itself clipped) are
# ones that 8 bits write as 0 or 255. Not only exactly 0 or 1: a collapsed rug of
# saturated yellow and white went through with 99.9995% of its values at 0 or 255, its
# float values a hair inside (docs/MEASURED.md).
COLLAPSE_STEPS = 20
RECOVERIES = 3
SATURATED_SHARE = 0.75
LR_FLOOR = 0.1  # ``lr_decay``: the rates' share left at the budget's end


def saturated_share(img: torch.Tensor) -> float:
    """The share of an image's [0, 1] values that 8 bits write as 0 or 255."""
    return float(((img <= 0.5 / 255) | (img >= 254.5 / 255)).float().mean())


def saturation_limit(exemplar_share: float = 0.0) -> float:
    """G's output counts as saturated from this share of 0s and 255s on (SATURATED_SHARE);
    never where the exemplar is all 0s and 255s (a white wall, black and white line art),
    whose faithful texture is so too."""
    if exemplar_share >= 1.0:
        return math.inf
    return max(SATURATED_SHARE, (1.0 + exemplar_share) / 2)


class TrainingCollapsed(RuntimeError):
    """G's output stayed saturated, and going back with a lower learning rate did not help."""

Critic = Callable[[dict[str, torch.Tensor]], torch.Tensor]


@dataclass
class TaskContext:
    """What the loop lends a task while it prepares (and keeps for its sampling)."""
    device: torch.device
    vgg: torch.nn.Module            # VGG19 to relu4_1, frozen
    rng: torch.Generator            # the run's sampling generator (saved in checkpoints)
    run_dir: Path
    log: Callable[[str], Any]
    show_progress: bool
    should_stop: Callable[[], bool] | None


@dataclass
class GeneratorStart:
    """How G starts: its config, the fixed statistics that standardise its relu4_1 input
    (saved in the preset, so tiling stays exact) and the flat colour it first outputs."""
    config: GeneratorConfig
    feat_mean: torch.Tensor
    feat_std: torch.Tensor
    mean_rgb: torch.Tensor
    side_stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # finer taps G reads
    # more of G's fixed buffers, by name: a regular texture's wave vectors, a layout's cells
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    # G's parameters to start from (a trained preset's, training/warm_start.py); None: from scratch
    weights: dict[str, torch.Tensor] | None = None


class TrainingTask(Protocol):
    """What a task supplies to the ``Trainer``."""
    config: Any                         # a training.texture.TrainConfig (or a subclass)
    main_name: str                      # the main loss's name in progress figures
    feature_taps: tuple[str, ...]       # VGG19 taps of generated images the losses need (D_TAP among them)

    @property
    def adversarial_from(self) -> int:
        """The step from which G gets the adversarial term (before it: none)."""

    def prepare(self, ctx: TaskContext) -> GeneratorStart:
        """Load and precompute the data; say how G starts."""

    def sample_batch(self, step: int) -> Any: ...

    def generate(self, G: Generator, batch) -> torch.Tensor:
        """G's image for a batch, float, aligned with what the losses compare it to."""

    def real_features(self, batch) -> dict[str, torch.Tensor]:
        """D's real patches for this step: {"relu3_1": float features}, and "relu2_1"
        where D has a fine head."""

    def losses(self, img: torch.Tensor, feats: dict[str, torch.Tensor], batch,
               critic: Critic, penalties: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(main loss, adversarial loss); ``critic(feats)`` is the hinge loss from D as it is now.
        ``penalties=False``: the main loss without its penalty terms, which is what the hinge
        term is balanced against (a penalty's gradient must not raise D's weight)."""

    def after_step(self, step: int) -> None: ...

    def state(self) -> dict:
        """The task's own checkpoint entries (tensors, ints, strings)."""

    def load_state(self, state: dict) -> None: ...

    def fingerprint(self) -> dict:
        """What identifies the task's inputs (``exemplar_sha256``) in a checkpoint."""

    def meta(self) -> dict:
        """What the preset records besides its name and training figures."""

    def export_files(self, folder: Path) -> None:
        """Extra files of the preset folder (the exemplar at training scale, examples)."""

    def render(self, G: Generator, size: int | None = None) -> np.ndarray:
        """A (H,W,3) uint8 picture of what G makes now (G is in eval mode)."""


class _Interrupted(Exception):
    pass


class Trainer:
    """One training run of ``task`` in ``run_dir``; ``run()`` trains to the budget
    (``config.steps`` steps, or ``config.minutes`` of training time when steps is None)
    and exports the preset ``name``."""

    def __init__(self, task: TrainingTask, name: str, run_dir: Path, preset_dir: Path | None = None,
                 device: str | None = None, log=print, show_progress: bool = True):
        if D_TAP not in task.feature_taps:
            raise ValueError(f"a task's feature_taps must include {D_TAP} (D's input)")
        if task.config.d_fine and FINE_TAP not in task.feature_taps:
            raise ValueError(f"a task with D's fine head needs {FINE_TAP} among its feature_taps")
        self.task = task
        self.config = task.config.validate()
        self.name = check_name(name)
        self.run_dir = Path(run_dir)
        self.preset_dir = Path(preset_dir) if preset_dir else user_dir()
        self.device = pick_device(device)
        self.log = log
        self.show_progress = show_progress

    # ---- set-up -------------------------------------------------------------------------
    def prepare(self, should_stop: Callable[[], bool] | None = None) -> None:
        """Seed, let the task prepare its data, build G, D and their optimisers."""
        cfg, dev = self.config, self.device
        torch.manual_seed(cfg.seed)
        self.rng = torch.Generator().manual_seed(cfg.seed)
        self.vgg = get_vgg19("relu4_1", dev)
        start = self.task.prepare(TaskContext(dev, self.vgg, self.rng, self.run_dir, self.log,
                                              self.show_progress, should_stop))
        self.G = Generator(start.config).to(dev)
        self.G.set_feature_stats(start.feat_mean, start.feat_std)
        for tap, (mean, std) in start.side_stats.items():
            self.G.set_feature_stats(mean, std, tap)
        self.G.init_output(start.mean_rgb)
        with torch.no_grad():
            for name, value in start.buffers.items():
                getattr(self.G, name).copy_(value.view_as(getattr(self.G, name)))
            if start.weights:
                params = dict(self.G.named_parameters())
                for name, value in start.weights.items():
                    params[name].copy_(value.view_as(params[name]))
                self.G.init_output(start.mean_rgb, gain=1.0)  # the trained last layer, re-centred on this photo's colour
        self.G = self.G.to(memory_format=torch.channels_last)
        # An exponential moving average of G's weights is what previews and the preset use
        # (with ``config.ema`` > 0): a GAN's G can spike in its last steps, and a time
        # budget stops wherever it is; the average carries the last ~1/(1-ema) steps.
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if cfg.ema else None
        self.D = PatchDiscriminator(global_head=cfg.d_global, fine_head=cfg.d_fine).to(dev)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))
        self.adv_weight = torch.tensor(0.0)
        self.saturated = 0  # steps in a row with G's output saturated (COLLAPSE_STEPS)
        self.saturation_limit = saturation_limit(getattr(self.task, "saturated_share", 0.0))  # (the exemplar's, where known)
        self.snapshots: list[dict] = []  # the last two states to go back to after a collapse
        self.recoveries = 0  # collapses gone back from, each halving G's learning rate
        self.returned_to: int | None = None  # the step of the snapshot last gone back to
        self.step = 0
        self.elapsed = 0.0  # training seconds, summed over resumed sessions

    # ---- the step -----------------------------------------------------------------------
    def _features(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.vgg(img.contiguous(memory_format=torch.channels_last), self.task.feature_taps)

    def _scores(self, feats: dict[str, torch.Tensor], detach: bool = False):
        """D's scores of a feature dict: relu3_1, and relu2_1 for a fine head."""
        taps = (D_TAP, FINE_TAP) if self.D.fine is not None else (D_TAP,)
        return self.D(*((feats[t].detach() if detach else feats[t]).float() for t in taps))

    def adversarial_loss(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        """The hinge loss G gets from D as it is now (the tasks' ``critic``)."""
        return hinge_g_loss(self._scores(feats))

    def _rebalance(self, batch) -> None:
        """Set the hinge weight so its image gradient is adv_ratio x the main loss's gradient
        (without penalty terms: while a penalty is far from met its gradient is large, and a
        hinge term scaled to it overpowers the texture loss and washes the texture out)."""
        if self.step < self.task.adversarial_from:
            self.adv_weight = torch.tensor(0.0)
            return
        with autocast_for(self.device, self.config.precision):
            img = self.task.generate(self.G, batch).detach().requires_grad_(True)
            l_main, l_adv = self.task.losses(img, self._features(img), batch, self.adversarial_loss,
                                             penalties=False)
        g_main, = torch.autograd.grad(l_main, img, retain_graph=True)
        g_adv, = torch.autograd.grad(l_adv, img)
        ratio = g_main.norm() / g_adv.norm().clamp_min(1e-12)
        target = self.config.adv_ratio * ratio.detach().cpu()
        if self.config.track_balance or self.adv_weight == 0:
            self.adv_weight = target
        else:  # (the recipe before 2026-11-27: smoothed, every balance_every steps only)
            self.adv_weight = 0.7 * self.adv_weight + 0.3 * target

    def _balance_due(self) -> bool:
        """Whether this step re-balances the hinge weight: every ``balance_every`` steps, and
        with ``track_balance`` also at steps 1, 2, 4, 8, ... and every 10th of the hinge term's
        first 2 x balance_every steps, while D learns fastest. (A weight set once at its first
        step let the hinge gradient reach 2-5x adv_ratio within 10-20 steps: docs/MEASURED.md.)"""
        cfg = self.config
        if self.step % cfg.balance_every == 0:
            return True
        k = self.step - self.task.adversarial_from
        return cfg.track_balance and 0 < k < 2 * cfg.balance_every and (k & (k - 1) == 0 or k % 10 == 0)

    def train_step(self) -> dict[str, float]:
        cfg, task = self.config, self.task
        self._set_rates()
        if self.step == task.adversarial_from and self.step % cfg.balance_every:
            self._rebalance(task.sample_batch(self.step))  # switch the hinge term on right away
        batch = task.sample_batch(self.step)
        if self.step % cfg.balance_every == 0 and not self.saturated and self.step != self.returned_to:
            # (not again at the step just gone back to: the same state twice would push out
            # the earlier one that a collapse coming back right away needs)
            self.snapshots = [*self.snapshots[-1:], self._snapshot()]
        if self._balance_due():
            self._rebalance(batch)
        # One forward of G and VGG serves both steps: D sees the batch detached, then G's
        # losses use the same features with the just-updated D.
        with autocast_for(self.device, cfg.precision):
            img = task.generate(self.G, batch)
            feats = self._features(img)
            l_d = hinge_d_loss(self._scores(task.real_features(batch)), self._scores(feats, detach=True))
        self.opt_d.zero_grad(set_to_none=True)
        l_d.backward()
        self.opt_d.step()
        with autocast_for(self.device, cfg.precision):
            l_main, l_adv = task.losses(img, feats, batch, self.adversarial_loss)
            loss = l_main + self.adv_weight.to(self.device) * l_adv
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        if self.G_ema is not None:
            with torch.no_grad():
                for avg, now in zip(self.G_ema.parameters(), self.G.parameters()):
                    avg.lerp_(now, 1.0 - cfg.ema)
        figures = {task.main_name: l_main.item(), "adv": l_adv.item(), "d": l_d.item(), "w_adv": float(self.adv_weight)}
        self.saturated = self.saturated + 1 if saturated_share(img.detach()) >= self.saturation_limit else 0
        self.step += 1
        if not all(math.isfinite(figures[k]) for k in (task.main_name, "adv", "d")):
            # (this step's update has carried the NaN or inf into G's or D's weights)
            self._recover("a loss was not a finite number, so G's and D's weights are lost")
        elif self.saturated >= COLLAPSE_STEPS:
            self._recover()
        task.after_step(self.step)
        return figures

    def _snapshot(self) -> dict:
        """What going back to this step needs (in memory; taken every ``balance_every`` steps)."""
        keep = {"G": self.G, "D": self.D, "opt_g": self.opt_g, "opt_d": self.opt_d,
                **({"G_ema": self.G_ema} if self.G_ema is not None else {})}
        return {"step": self.step, "adv_weight": self.adv_weight.clone(),
                **{k: copy.deepcopy(v.state_dict()) for k, v in keep.items()}}

    def _recover(self, why: str | None = None) -> None:
        """G's output has been saturated for COLLAPSE_STEPS steps (or since a step near the
        end of the budget), or a loss was not finite (``why``): go back to the last snapshot
        from before that, with G's learning rate halved; or stop, clearly."""
        start = self.step - self.saturated
        before = [s for s in self.snapshots if s["step"] < start]  # (the state G had before a step)
        where = (f"training collapsed at step {self.step}: " +
                 (why or f"G's output was saturated (0 or 255) for {self.saturated} steps, so it no longer learns"))
        if not before or self.recoveries >= RECOVERIES:
            tried = (f"going back {self.recoveries} times with a lower learning rate did not help" if before else
                     "and it has no earlier state to go back to")
            raise TrainingCollapsed(f"{where}; {tried}; start over with --fresh and a lower --lr-g "
                                    f"(this run: {self.config.lr_g:g}) or another --seed")
        snap = before[-1]
        if snap["step"] == self.returned_to and len(before) > 1:
            # It collapsed again before the next snapshot: that state leads back into it (seen
            # on rock: back to step 500 three times, collapsed at 521-522 each time, even at
            # an eighth of G's rate). Go back one state further.
            snap = before[-2]
        for key in ("G", "D", "opt_g", "opt_d", "G_ema"):
            if key in snap:  # (a copy: the optimisers would keep updating the snapshot's tensors)
                getattr(self, key).load_state_dict(copy.deepcopy(snap[key]))
        self.adv_weight = snap["adv_weight"].clone()
        self.recoveries += 1
        self.step, self.saturated, self.returned_to = snap["step"], 0, snap["step"]
        self._set_rates()
        self.snapshots = [s for s in self.snapshots if s["step"] <= self.step]
        self.log(f"{where}; back to step {self.step} with G's learning rate halved "
                 f"({self.config.lr_g * self.lr_scale:g})")

    def decay_scale(self) -> float:
        """``lr_decay``: the rates' share at this point of the budget (1 before its last
        ``lr_decay`` share, then linearly down to LR_FLOOR)."""
        if not self.config.lr_decay:
            return 1.0
        timed = self.config.steps is None
        done, total = (self.elapsed, self.budget_seconds) if timed else (self.step, self.config.steps)
        into = done / total - (1.0 - self.config.lr_decay)
        return 1.0 if into <= 0 else max(LR_FLOOR, 1.0 - (1.0 - LR_FLOOR) * into / self.config.lr_decay)

    def _set_rates(self) -> None:
        """G's and D's learning rates for the next step: G's halved per collapse gone back
        from (``lr_scale``), both decayed (``decay_scale``)."""
        scale = self.decay_scale()
        for opt, lr in ((self.opt_g, self.config.lr_g * self.lr_scale), (self.opt_d, self.config.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * scale

    @property
    def lr_scale(self) -> float:
        """G's learning rate over config.lr_g."""
        return 0.5 ** self.recoveries

    # ---- the budget ---------------------------------------------------------------------
    @property
    def budget_seconds(self) -> float | None:
        """The time budget in training seconds, or None when the budget is steps."""
        return None if self.config.steps is not None else self.config.minutes * 60.0

    def finished(self) -> bool:
        if self.config.steps is not None:
            return self.step >= self.config.steps
        return self.elapsed >= self.budget_seconds

    def progress(self) -> tuple[int, int]:
        """(done, total) in the budget's unit: steps, or whole seconds of training time."""
        if self.config.steps is not None:
            return self.step, self.config.steps
        total = max(1, round(self.budget_seconds))
        return min(int(self.elapsed), total), total

    # ---- checkpoints --------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    def _fingerprint(self) -> dict:
        return {**self.task.fingerprint(), "name": self.name,
                "config": json.dumps(asdict(self.config), sort_keys=True)}

    def save_checkpoint(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "version": CHECKPOINT_VERSION, "step": self.step, **self._fingerprint(),
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            **({"G_ema": self.G_ema.state_dict()} if self.G_ema is not None else {}),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "adv_weight": self.adv_weight, "rng": self.rng.get_state(),
            "torch_rng": torch.get_rng_state(), "elapsed": self.elapsed, **self.task.state(),
            "recoveries": self.recoveries,
        }
        tmp = self.checkpoint_path.with_suffix(f".tmp{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)  # atomic: a kill never leaves a half file

    def load_checkpoint(self) -> None:
        try:
            state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
        except Exception as exc:
            raise RuntimeError(f"checkpoint {self.checkpoint_path} is unreadable ({exc}); "
                               "start over with --fresh") from None
        if state.get("version") != CHECKPOINT_VERSION:
            raise RuntimeError(f"checkpoint {self.checkpoint_path} has version {state.get('version')}, "
                               f"expected {CHECKPOINT_VERSION} (made by another version of mgan); "
                               "start over with --fresh")
        mine = self._fingerprint()
        for key in mine:
            if state.get(key) != mine[key]:
                raise RuntimeError(f"checkpoint {self.checkpoint_path} belongs to a different run "
                                   f"({key} differs); use the same images and options, or --fresh")
        self.G.load_state_dict(state["G"])
        if self.G_ema is not None:  # a checkpoint from before the average starts it from G
            self.G_ema.load_state_dict(state.get("G_ema", state["G"]))
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.adv_weight = state["adv_weight"].cpu()
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.task.load_state(state)
        self.step = int(state["step"])
        self.elapsed = float(state["elapsed"])
        # (opt_g's state carries its learning rate; this says why it is lower than lr_g)
        self.recoveries = int(state.get("recoveries", 0))

    # ---- previews and export ------------------------------------------------------------
    @property
    def G_out(self) -> Generator:
        """The G that previews and the preset use: the weight average where there is one."""
        return self.G_ema if self.G_ema is not None else self.G

    def render(self, size: int | None = None) -> np.ndarray:
        """The task's picture of the current G (its default size when None)."""
        G = self.G_out
        was = G.training
        G.eval()
        try:
            return self.task.render(G) if size is None else self.task.render(G, size)
        finally:
            G.train(was)

    def write_preview(self) -> Path:
        from PIL import Image

        folder = self.run_dir / "previews"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"step_{self.step:06d}.png"
        Image.fromarray(self.render()).save(path)
        return path

    def export(self) -> Path:
        from PIL import Image

        meta = {
            "name": self.name, **self.task.meta(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "training": {**asdict(self.config), "steps_done": self.step, "device": str(self.device),
                         "train_seconds": round(self.elapsed, 1), "torch": torch.__version__,
                         **({"collapses": self.recoveries, "lr_g_final": self.config.lr_g * self.lr_scale}
                            if self.recoveries else {})},
        }
        thumb = Image.fromarray(self.render(128))
        G = self.G_out.to(memory_format=torch.contiguous_format)
        folder = write_preset(self.preset_dir / self.name, meta, G, thumbnail=thumb)
        self.task.export_files(folder)
        return folder

    # ---- the loop -----------------------------------------------------------------------
    def _progress_bar(self) -> Progress:
        desc = f"train {self.name}"
        if self.budget_seconds is None:
            return Progress(self.config.steps, desc, start=self.step, enabled=self.show_progress)
        return Progress(self.budget_seconds, desc, start=self.elapsed, enabled=self.show_progress, timed=True)

    def run(self, resume: bool = False, fresh: bool = False, stop_after: int | None = None,
            on_step=None, should_stop=None) -> Path | None:
        """Train to the budget (or ``stop_after`` more steps in this call) and export the preset.

        ``on_step(done, total, figures)`` is called after every step (progress events), with
        (done, total) from ``progress()`` (a time budget adds the step to the figures);
        ``should_stop()`` returning True checkpoints and raises KeyboardInterrupt (cancel).
        Returns the preset folder, or None when stopped early (``stop_after``)."""
        self.prepare(should_stop)
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
        bar = self._progress_bar()
        stop_at = None if stop_after is None else self.step + stop_after
        timed = self.budget_seconds is not None

        def on_term(signum, frame):  # a polite kill checkpoints like Ctrl-C does
            raise _Interrupted()

        old = signal.signal(signal.SIGTERM, on_term) if _main_thread() else None
        try:
            while self.finished() or stop_at is None or self.step < stop_at:
                if self.finished():
                    if not self.saturated:
                        break
                    # The budget ran out while G's output was saturated (a collapse that began in
                    # its last COLLAPSE_STEPS steps): export nothing of it. (A time budget, spent,
                    # exports the state gone back to; a step budget trains on to its count.)
                    self._recover()
                    self.save_checkpoint()
                    continue
                t0 = time.perf_counter()
                figures = self.train_step()
                self.elapsed += time.perf_counter() - t0
                if timed:
                    figures = {"step": self.step, **figures}
                bar.update(self.elapsed if timed else self.step, **figures)
                if on_step is not None:
                    on_step(*self.progress(), figures)
                if self.step % cfg.checkpoint_every == 0 or self.finished():
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
        if not self.finished():
            self.save_checkpoint()
            return None
        folder = self.export()
        self.log(f"preset {self.name!r} written to {folder}")
        return folder


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
