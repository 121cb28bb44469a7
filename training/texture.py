"""MGAN texture training: one exemplar -> a seamless texture preset.

    noise pool (periodic, through VGG19 once) --relu2_1, relu3_1, relu4_1--> G --> image
        image rolled by 0..7 px --> VGG19 relu1_1..relu4_1 + pixels (optionally also at 1/2, 1/4)
                                       --> sliced Wasserstein to the exemplar's (training/losses.py)
                            --> its spectrum at the 2/4/8 px lattice --> grid penalty
                            --> its spectrum at periods under 8 px   --> mesh penalty
                                    --> relu3_1 --> hinge loss from D (the Markovian patch GAN)

The recipe (``loss="sw"``, the default) and why, each measured in bench/texture_ablation.py
at an equal time budget:
- Sliced Wasserstein distances of VGG19 feature distributions instead of Gram matrices
  (Heitz et al. 2021): contrast, colour and rare features survive, where Gram averages.
- Optionally (``scales=(1, 2, 4)``; off by default: at a 5-minute budget it did not pay
  for its cost) the same distances on the output downscaled 2x and 4x (Snelgrove 2017).
- The generated image is rolled by a random 0..7 px before the losses and D (exact: the
  image is periodic), so a pattern locked to the 8 px relu4_1 lattice cannot hide.
- The residual generator (engine/generator.py) with relu3_1/relu2_1 of the same noise as
  side inputs: no 1/8 grid, and reach enough to lay out large structure. Its stages
  upsample bilinearly (``upsample`` in the generator config): nearest neighbour's 2x2
  blocks printed fine lines 2 and 4 px apart, and with the grid penalty (next) still
  left a cross-hatch in the shadows of 4 of 7 built-in photos, for a little more of the
  finest grain (the spectrum distance). A regular photo's G (periodic inputs, below)
  upsamples by nearest neighbour (``regular_upsample``): bricks kept its bond with it,
  where bilinear retrains blurred the joints, and it has no penalty to need.
- A grid penalty (``grid_weight``, losses.grid_loss): the output's power at the 2, 4 and 8
  px lattice frequencies may not rise above 8x its surroundings. The VGG losses barely see
  such faint lines; the eye does: with bilinear stages alone rust still printed a period-2
  cross-hatch 490x its surroundings. D's weight is balanced against the texture loss
  without the penalty (training/loop.py): balanced against both, it rose 8x or more while
  the penalty was far from met, and washed 4 of 10 textures out. Not for regular textures
  (periodic inputs, below): their lattice's harmonics fall on those frequencies.
- A mesh penalty (``mesh_weight``, losses.mesh_loss): at periods under 8 px the output's
  power, each frequency smoothed with its neighbours, may not rise above 4x the photo's.
  G also printed fine meshes between the grid penalty's frequencies (strokes 3-4 px apart,
  5-8x the photos' power there, on stone's flat faces most of all); irregular photos only.
- D's hinge term stays, re-balanced to ``adv_ratio`` of the main gradient: it sharpens.
  D has two heads on one trunk (``d_global``, training/discriminator.py): the paper's patch
  scores (~80 px each), and a global head of two more stride-2 convs whose scores see the
  whole 128 px canvas, so that how a canvas's regions are laid out is judged too, which no
  VGG term of the recipe sees past relu4_1's 68 px. On the 8 bench photos at the same
  budget it lowered the patch distance on 7 and the large-structure distance on 7 (docs/MEASURED.md,
  D's global head); it adds about 2% to a step.
  The weight tracks D in its first steps (``track_balance``, training/loop.py): set once
  per 50 steps and smoothed, it let the hinge gradient run at 2-5x its ratio while D
  learnt, and at G's learning rate of 1e-3 runs collapsed. Tracked, G learns at 1e-3
  (``lr_g``; 3e-4 before), which reaches the photos' fine grain and sharper shapes within
  the 5-minute budget (docs/MEASURED.md).
- G's and D's learning rates fall linearly over the budget's last half to a tenth
  (``lr_decay``, training/loop.py): on the 8 bench photos the patch distance was level on
  average (0.880 against 0.886) and no run collapsed, where at constant rates 3 of 8 did
  (rock, rug and planks, late in their budgets: docs/MEASURED.md).
- Previews and the preset use an exponential moving average of G's weights (``ema``).
- G starts from the weights of the built-in preset whose photo is nearest the user's
  (``start_from="auto"``, training/warm_start.py; an irregular photo's G only), not from a
  flat image: on the 6 irregular bench photos at the same steps the patch distance fell on 3
  (rock, rug, corrosion: strata, bands and the rug's palette of shapes to the eye), held on
  2 and rose on 1, and the spectrum came closer on 5 (docs/MEASURED.md). ``"off"``: from scratch.
- Regular photos (bricks, tiles, planks: a lattice in the power spectrum, engine/lattice.py)
  give G periodic inputs, sin and cos of the lattice's waves with one random phase per
  canvas, so courses and joints run straight across any canvas; the training canvas is
  picked to hold the waves in whole cycles (``lattice="off"`` switches it off). Stripes
  (wood, planks: one direction, several unrelated periods) get the phase of boards of
  uneven width instead of one wave (``lattice="waves"``: the one wave, as before).
- Measured and left off by default: a relu5_1 term (``relu5``, ``mgan train --relu5``: 156 px
  of reach, 1.21x the step). It lays out strata and bands (rock, corrosion: closer to the
  photo to the eye and by the large-structure distance), but loses on the patch distance
  on most bench photos at the same budget and draws diagonal streaks on the rug (docs/MEASURED.md,
  large structure). Given about 3x the budget's steps (1650), it won on the
  built-ins stone, rust, fabric and foliage, which train so: stone's angular plates and
  cracks, rust's smooth blue-grey patches, foliage's leaves (docs/MEASURED.md, Gallery). Also left off: training on the photo unflipped by
  default (``augment="none"``: level on average, worse by eye on foliage, wood and meadow;
  the stone built-in trains so, which keeps its ledges' slant and its light's direction).
- Measured and left off by default, taken by the built-ins where it won: a coarse layout
  (``layout``, ``mgan train --layout``, engine/layout.py). An irregular photo's G also
  reads a colour map at 1/8 quilted from the photo's own 1/8 cells (a new map per canvas),
  and the output shrunk 16x (``layout_scale``) must follow the map shrunk as far (L1,
  ``layout_weight``). The texture losses see no more than relu4_1's 68 px; the map lays
  out strata, bands and patches as large as the photo's. On the bench photos it lowered
  the large-structure distance on 4 of 6 and gave rock and corrosion their strata and
  bands to the eye, but raised the patch distance on 4 of 6 (the rug's most) (docs/MEASURED.md,
  coarse layout).
- A patterned photo (a carpet, a printed fabric, a wallpaper) whose repeat the user gives
  (``repeat``, ``mgan train --repeat WxH``): the map is that repeat of the photo laid edge
  to edge, not quilted, and followed at its own 1/8 cells (``REPEAT_FOLLOW``). A training
  canvas is smaller than most repeats, so it reads a window of the map at the photo's
  scale; a synthesised canvas holds whole repeats. On the
  fabric built-in's carpet the motifs, mirrored and in rows, came back where the quilted
  map and the texture losses strewed their parts (docs/MEASURED.md, a pattern's repeat).
  G also reads the same repeat at 1/4 (``repeat_fine``; the photo's 4 px cells, into its
  first stage beside relu3_1), which places the pattern's lines to 4 px: the carpet's
  trellis came out continuous where from 1/8 alone it broke into squiggles, and the
  pattern match (bench/metrics.py) rose from 0.49-0.53 to 0.64-0.70, near the photo's own 0.66;
  followed once rather than three times as hard, the patch distance fell below the 1/8
  map's too (docs/MEASURED.md, a repeat's finer map).
- Measured and left off: the SW distances of the batch's canvases as one set
  (``sw_pooled``), so that a canvas may hold one region of the photo, as a part of the photo
  does, rather than the whole mix. Alone it left the same mottle (G has no input above its
  canvas to lay regions out by); with the coarse layout, rock showed its strata more
  clearly, but the patch distance rose on 3 of 4 runs (docs/MEASURED.md, colour).
- Measured and left off: D's fine head (``d_fine``: a third head on relu2_1 patches of
  ~30 px, for crisp grains and edges; better on 2 of 4 photos, worse on 2, and alike to the
  eye) and the photo mirrored left to right only (``augment="mirror"``, so that light from
  above stays from above; no better than the flips on the bench photos). The soil built-in
  trains on its photo as it is (its side-lit grains drew furry strokes under rotations and
  flips, at two seeds), and foliage mirrored (the better of its presets): docs/MEASURED.md, Gallery.
The previous recipe (``loss="gram"``: Gram matrices + colour moments + hinge, the
``upsample`` generator, the exemplar scaled to 256 px) stays selectable for comparison.

Exemplars of any size and shape: by default the texture reproduces features at the
photo's own pixel size; only a photo larger than ``max_side`` is downscaled (and the run
says so), its shorter side not under the canvas; ``scale`` overrides. The training crop
adapts to small or narrow photos (at most ``crop``, at least 32 px); under 32 px a side
nothing can work, and the error says so.

Also: G starts as a flat image of the exemplar's mean colour; its inputs are standardised
by fixed statistics of its training noise (saved in the preset, so tiling stays exact); a
noise pool (periodic fields pushed through VGG19 once, rolled by whole relu4_1 cells, which
is exact under circular padding); the exemplar's statistics over its flips (and, with
``augment="dihedral"``, 90 degree rotations) computed once; bf16 autocast + channels_last
where the CPU has native bf16; CUDA when present.

``TextureTask`` supplies the data and the losses to training/loop.py's ``Trainer``, which
owns the rest (G, D, the step, balancing, checkpoints, signals, budget, export):

    Trainer(TextureTask(exemplar, TrainConfig(minutes=5)), "gravel", run_dir).run()
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.circular import UPSAMPLING
from engine.generator import Generator, GeneratorConfig
from engine.lattice import HARMONICS, canvas_inputs, read_lattice, stretch
from engine.layout import CELL, FINE, find_repeat, layout_inputs, repeat_map, source_cells
from engine.maps import MapSettings
from engine.noise import NoiseParams, noise_period
from engine.protocol import AUGMENTS  # the one list: the CLI, the wire and TrainConfig share it
from engine.sequence import save_frame
from engine.synth import autocast_for, to_uint8
from engine.vgg import TAP_STRIDE, get_vgg19

from .exemplar import augment, file_sha256, load_exemplar
from .losses import (DEEP_TAP, SW_TAPS, ExemplarStatistics, border_cells, downscale, grid_loss, mesh_loss, mesh_target,
                     spectrum2d_loss, spectrum_loss, spectrum_target)
from .loop import Critic, GeneratorStart, TaskContext, saturated_share
from .warm_start import check_spec, choose_start

GRAM_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
LOSSES = ("sw", "gram")
LATTICE = ("auto", "waves", "off")
# spectrum_kind -> (the photo's target at the canvas size, the term against it)
SPECTRUM_TERMS = {"radial": (spectrum_target, spectrum_loss), "2d": (mesh_target, spectrum2d_loss)}
# The layout term's (weight, scale): a quilted map is followed at 1/16, a pattern's repeat at
# its own 1/8 cells: at (1, 16) the carpet's motifs did not show, at (10, 8) its 8 px cells
# did; read at 1/8 alone, the repeat did best followed three times as hard, (3, 8); read at
# 1/4 too (``repeat_fine``), once, (1, 8): the finer map places the lines, and harder
# following only blurred them (docs/MEASURED.md, a pattern's repeat, a repeat's finer map).
LAYOUT_FOLLOW = (1.0, 16)
REPEAT_FOLLOW = (1.0, 8)
LATTICE_STRETCH = 0.03   # a training canvas may stretch the photo's lattice this much
MIN_CROP = 32
# Periodic inputs are a yes-or-no from the spectrum; quasi-periodic photos can pass it
# (docs/MEASURED.md: the lattice on photos from outside the bench).
LATTICE_HINT = "if the photo is not that regular (sand ripples, bark), lattice off trains it as an irregular one"


@dataclass
class TrainConfig:
    """The loop's settings (budget, learning rates, balancing, checkpoints, seed, precision)
    and the texture task's (exemplar scale, canvas, losses, augmentation, noise pool);
    training.style.StyleConfig extends it. Saved in checkpoints and presets."""
    steps: int | None = None        # stop after this many steps; None: after ``minutes``
    minutes: float = 5.0            # training time budget when steps is None (summed over resumes)
    batch: int = 4
    crop: int = 128                 # largest training canvas side (px, multiple of 8); smaller for small photos
    scale: float | None = None      # exemplar scale; None: 1 (the photo's own pixel size), or down to max_side
    max_side: int = 512             # longest exemplar side trained on when scale is None
    exemplar_size: int | None = None  # instead of scale: the longest side after scaling (the previous recipe: 256)
    loss: str = "sw"                # "sw": sliced Wasserstein at several scales; "gram": the previous recipe
    relu5: bool = False             # "sw" only: the SW distance also at relu5_1 (156 px receptive field, against 68 at relu4_1)
    scales: tuple[int, ...] = (1,)  # image scales the SW loss sees: (1, 2, 4) adds half and quarter (see the ablation)
    shift: bool = True              # roll the output by 0..7 px before the losses and D
    sw_pooled: bool = False         # the SW distances of the batch's canvases as one set, not each canvas on its own
    d_global: bool = True           # D also scores each canvas's layout as a whole (discriminator.PatchDiscriminator)
    d_fine: bool = False            # D also scores relu2_1 patches (~30 px): the fine grain
    grid_weight: float = 0.05       # penalty on lines locked to G's 2/4/8 px lattice (losses.grid_loss); 0: off; irregular photos only
    mesh_weight: float = 0.05       # penalty on fine meshes (periods under 8 px) above the photo's power (losses.mesh_loss); irregular photos (regular: mesh_regular)
    mesh_allowed: float = 4.0       # how far above the photo's power a frequency may rise before the mesh penalty acts
    mesh_regular: bool = False      # the mesh penalty also on regular photos (bricks, planks: periodic inputs)
    stripe_penalties: bool = False  # stripes (boards of uneven width) train as irregular photos do: G's own upsampling, grid and mesh penalties (measured, not kept: docs/MEASURED.md, Stripes)
    spectrum_weight: float = 0.0    # power spectrum to the exemplar's; 0: off
    spectrum_kind: str = "radial"   # "radial": its radial profile (losses.spectrum_loss); "2d": the whole coarse spectrum, directions included (losses.spectrum2d_loss)
    lr_g: float = 1e-3
    lr_d: float = 2e-4
    ema: float = 0.98               # G's weight average for previews and the preset (0: the last weights)
    adv_ratio: float = 0.3          # hinge gradient / main-loss gradient on the image
    balance_every: int = 50
    track_balance: bool = True      # also re-balance often in the hinge term's first steps, unsmoothed (loop._balance_due)
    lr_decay: float = 0.5           # G's and D's rates fall linearly to loop.LR_FLOOR x over the budget's last this share; 0: off
    color_weight: float = 10.0      # "gram" only: per-channel mean/std of pixels against the exemplar
    augment: str = "flips"          # exemplar variants: "flips" keeps orientation (bricks), "dihedral" adds 90 deg rotations, "mirror" (left-right only), "none"
    lattice: str = "auto"           # "auto": periodic inputs where the photo is regular, boards where it is stripes (engine/lattice.py); "waves": no stripes; "off"
    boards: float | None = None     # stripes: the boards' mean width in the photo's own px, across its strongest wave; None: from the spectrum (engine/lattice.stripe_wave)
    regular_upsample: str = "nearest"  # a regular photo's G upsamples so (sharp joints; no grid penalty there); the generator's own otherwise
    layout: bool = False            # irregular photos: G also follows a coarse map quilted from the photo (engine/layout.py)
    layout_weight: float | None = None  # the output shrunk against the map (L1, sRGB); None: 1 (LAYOUT_FOLLOW, REPEAT_FOLLOW)
    layout_scale: int | None = None     # ... shrunk this many times (8: the map's own cells; 16, 32: only its coarser part); None: 16, or 8 with a repeat
    repeat: tuple | str | None = None  # a patterned photo's repeat (h, w) in its own px, set by hand, or "auto" (engine/layout.py find_repeat): the layout is that repeat laid edge to edge (repeat_map), not quilted; no lattice
    repeat_fine: bool = True        # with a repeat: G also reads the repeat's map at 1/4 (engine/layout.py FINE cells): the pattern's lines in place
    start_from: str = "auto"        # G's first weights: "auto" (the nearest built-in texture preset's), "off" (from scratch), or a preset
    pool_size: int = 48
    pool_refresh_every: int = 4     # replace one pool field every N steps
    checkpoint_every: int = 100
    preview_every: int = 100
    seed: int = 0
    precision: str = "auto"
    generator: dict = field(default_factory=lambda: GeneratorConfig().to_dict())
    noise: dict = field(default_factory=lambda: NoiseParams().to_dict())

    def validate(self) -> "TrainConfig":
        if self.crop % 8 or not MIN_CROP <= self.crop <= 1024:
            raise ValueError(f"crop must be a multiple of 8 in {MIN_CROP}..1024, got {self.crop}")
        if self.exemplar_size is not None and not 16 <= self.exemplar_size <= 4096:
            raise ValueError(f"exemplar_size must be 16..4096, got {self.exemplar_size}")
        if self.scale is not None and not (math.isfinite(self.scale) and 0.01 <= self.scale <= 4.0):
            raise ValueError(f"scale must be in 0.01..4, got {self.scale}")
        if not (math.isfinite(self.grid_weight) and self.grid_weight >= 0):
            raise ValueError(f"grid_weight must be a finite number >= 0, got {self.grid_weight}")
        if not (math.isfinite(self.mesh_weight) and self.mesh_weight >= 0):
            raise ValueError(f"mesh_weight must be a finite number >= 0, got {self.mesh_weight}")
        if not (math.isfinite(self.mesh_allowed) and self.mesh_allowed >= 1):
            raise ValueError(f"mesh_allowed must be a finite number >= 1, got {self.mesh_allowed}")
        if self.layout_weight is not None and not (math.isfinite(self.layout_weight) and self.layout_weight >= 0):
            raise ValueError(f"layout_weight must be a finite number >= 0, got {self.layout_weight}")
        if self.layout_scale is not None and self.layout_scale not in (4, 8, 16, 32):
            raise ValueError(f"layout_scale must be 4, 8, 16 or 32, got {self.layout_scale}")
        if self.layout_scale == 4 and not (self.repeat_fine and self.repeat is not None):
            raise ValueError("layout_scale 4 follows a repeat's finer map: it needs repeat (and repeat_fine)")
        if not (math.isfinite(self.spectrum_weight) and self.spectrum_weight >= 0):
            raise ValueError(f"spectrum_weight must be a finite number >= 0, got {self.spectrum_weight}")
        if self.spectrum_kind not in SPECTRUM_TERMS:
            raise ValueError(f"spectrum_kind must be one of {', '.join(SPECTRUM_TERMS)}, got {self.spectrum_kind!r}")
        if not 0.0 <= self.lr_decay <= 1.0:
            raise ValueError(f"lr_decay must be in [0, 1], got {self.lr_decay}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if not 64 <= self.max_side <= 4096:
            raise ValueError(f"max_side must be 64..4096, got {self.max_side}")
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}")
        check_spec(self.start_from)
        if self.lattice not in LATTICE:
            raise ValueError(f"lattice must be one of {', '.join(LATTICE)}, got {self.lattice!r}")
        if self.boards is not None:
            if not (isinstance(self.boards, (int, float)) and math.isfinite(self.boards) and 8 <= self.boards <= 4096):
                raise ValueError(f"boards must be a width in px in 8..4096, got {self.boards!r}")
            if self.lattice != "auto":
                raise ValueError(f"boards needs lattice 'auto' (boards are stripes), got lattice {self.lattice!r}")
            if GeneratorConfig.from_dict(self.generator).arch != "residual":
                raise ValueError("boards needs the residual generator (its periodic inputs lay the boards out)")
        if self.repeat is not None and self.repeat != "auto":
            r = self.repeat
            if not (isinstance(r, (list, tuple)) and len(r) == 2 and all(
                    isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n) and 16 <= n <= 8192
                    for n in r)):
                raise ValueError(f"repeat must be (height, width) in px, each 16..8192, or 'auto', got {r!r}")
            self.repeat = tuple(float(n) for n in r)
        if self.repeat is not None:
            if self.boards is not None:
                raise ValueError("repeat and boards exclude each other: a pattern's repeat, or boards")
            if GeneratorConfig.from_dict(self.generator).arch != "residual":
                raise ValueError("repeat needs the residual generator (it reads the layout map)")
        if self.regular_upsample not in UPSAMPLING:
            raise ValueError(f"regular_upsample must be one of {', '.join(UPSAMPLING)}, got {self.regular_upsample!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        self.scales = tuple(int(s) for s in self.scales)
        if not self.scales or 1 not in self.scales or not all(s in (1, 2, 4, 8) for s in self.scales):
            raise ValueError(f"scales must include 1 and be among 1, 2, 4, 8, got {list(self.scales)}")
        if (self.steps is not None and self.steps < 1) or self.batch < 1 or self.pool_size < 1:
            raise ValueError("steps, batch and pool_size must be positive")
        if not (math.isfinite(self.minutes) and self.minutes > 0):
            raise ValueError(f"minutes must be a positive number, got {self.minutes}")
        if self.checkpoint_every < 1 or self.preview_every < 1 or self.balance_every < 1:
            raise ValueError("checkpoint_every, preview_every and balance_every must be positive")
        GeneratorConfig.from_dict(self.generator)
        NoiseParams.from_dict(self.noise)
        return self

    def layout_follow(self) -> tuple[float, int]:
        """(weight, scale) of the layout term: as set, else ``LAYOUT_FOLLOW`` for a quilted
        map and ``REPEAT_FOLLOW`` for a repeat (docs/MEASURED.md, a pattern's repeat)."""
        weight, scale = REPEAT_FOLLOW if self.repeat else LAYOUT_FOLLOW
        return (weight if self.layout_weight is None else self.layout_weight,
                scale if self.layout_scale is None else self.layout_scale)


def previous_recipe(**overrides) -> TrainConfig:
    """The recipe before the sliced-Wasserstein rework, for benchmarks and ablations."""
    settings = dict(loss="gram", scales=(1,), shift=False, exemplar_size=256, lr_g=2e-4, adv_ratio=2.0, ema=0.0, grid_weight=0.0,
                    track_balance=False, lr_decay=0.0, layout=False, d_global=False, start_from="off",
                    generator=GeneratorConfig(arch="upsample", widths=(256, 128, 64)).to_dict())
    return TrainConfig(**{**settings, **overrides})


def gram(f: torch.Tensor) -> torch.Tensor:
    """(N,C,H,W) -> (N,C,C), normalised by the number of positions."""
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w).float()
    return flat @ flat.transpose(1, 2) / (h * w)


def _crop_border(f: torch.Tensor, tap: str) -> torch.Tensor:
    # The exemplar is not periodic: features within ~16 px of its border see wrapped pixels.
    m = border_cells(tap)
    return f[..., m:-m, m:-m]


def _patch_source(feats: dict[str, torch.Tensor], tap: str, side: int) -> torch.Tensor:
    """A tap of an exemplar variant that D's real windows (``side`` cells) are cut from,
    float: without the border ring where the photo is large enough for a whole window."""
    f = feats[tap].float()
    return _crop_border(f, tap) if min(f.shape[-2:]) - 2 * border_cells(tap) >= side else f


class TextureTask:
    """One exemplar -> a seamless texture: noise-pool batches, the sliced-Wasserstein (or
    Gram) loss next to D's hinge term, previews from fresh noise. Runs inside
    training.loop.Trainer."""

    main_name = "tex"
    feature_taps = GRAM_TAPS  # the taps the losses need from the generated batch
    adversarial_from = 0
    vgg5 = None   # VGG19 to relu5_1, where the config's relu5 term is on
    started_from = None  # the preset whose G's weights this one started from (warm_start.choose_start)
    mesh = None   # the photo's smoothed log power (losses.mesh_target), where the mesh penalty is on

    def __init__(self, exemplar: str | Path, config: TrainConfig, source: str = "", licence: str = "",
                 maps: dict | None = None):
        self.exemplar_path = Path(exemplar)
        self.config = config.validate()
        self.source, self.licence = source, licence
        # the preset's PBR map defaults (engine.maps.MapSettings fields), checked now, not at export
        if maps:
            MapSettings().merged(maps)
        self.maps = dict(maps) if maps else None

    # ---- set-up -------------------------------------------------------------------------
    def prepare(self, ctx: TaskContext) -> GeneratorStart:
        cfg, dev = self.config, ctx.device
        self.device, self.vgg, self.rng = dev, ctx.vgg, ctx.rng
        ex, self.exemplar_scale, note = load_exemplar(self.exemplar_path, cfg.exemplar_size, scale=cfg.scale,
                                                      max_side=cfg.max_side, with_scale=True, keep_side=cfg.crop)
        if note:
            ctx.log(note)
        self.exemplar = ex = ex.to(dev)
        h, w = ex.shape[-2:]
        # The canvas adapts to small and narrow photos: never larger than the photo.
        self.crop = max(MIN_CROP, min(cfg.crop, min(h, w) // 8 * 8))
        self.g_config = GeneratorConfig.from_dict(cfg.generator)
        self.wave_vectors: list[tuple[float, float]] = []
        boards = None
        self.repeat: tuple[int, int] = ()
        if cfg.repeat == "auto":
            found, score = find_repeat(ex[0].permute(1, 2, 0).cpu().numpy())
            ctx.log(f"repeat read from the photo: {found[1]}x{found[0]} px (its luma matches itself shifted so, "
                    f"correlation {score[1]:.2f} across, {score[0]:.2f} down); --repeat WxH sets it by hand")
            self.repeat = self._repeat_px(found, 1.0)
        elif cfg.repeat:
            self.repeat = self._repeat_px(cfg.repeat, self.exemplar_scale)
        if self.repeat and cfg.lattice != "off" and self.g_config.arch == "residual":
            lattice, _ = read_lattice(ex[0].permute(1, 2, 0).cpu().numpy(), stripes=False)
            if lattice:
                ctx.log("note: the photo also reads as a regular lattice ("
                        + ", ".join(f"{1 / math.hypot(*k):.1f} px" for k in lattice) + "); without --repeat its "
                        "periodic inputs lay it out, which did better on tiles (docs/MEASURED.md)")
        elif cfg.lattice != "off" and self.g_config.arch == "residual":
            self.wave_vectors, boards = read_lattice(ex[0].permute(1, 2, 0).cpu().numpy(), stripes=cfg.lattice == "auto")
            if cfg.boards is not None:
                boards = self._boards_by_hand(boards, cfg.boards * self.exemplar_scale)
        if boards:
            grain = self.wave_vectors[0]
            self.wave_vectors = [boards]
            # (uneven boards put no harmonics on the grid penalty's 2, 4 and 8 px lattice)
            self.g_config = dataclasses.replace(self.g_config, waves=1, harmonics=HARMONICS, stripes=True,
                                                upsample=self.g_config.upsample if cfg.stripe_penalties
                                                else cfg.regular_upsample)
            ctx.log(f"stripes: boards of {1 / math.hypot(*boards):.1f} px on average "
                    f"({'set by hand' if cfg.boards is not None else 'from the spectrum; --boards PX sets them'}) at "
                    f"{math.degrees(math.atan2(*boards)):.0f} deg (strongest period {1 / math.hypot(*grain):.1f} px), "
                    f"each its own width; canvas {self.crop} px ({LATTICE_HINT})")
        elif self.wave_vectors:
            self.g_config = dataclasses.replace(self.g_config, waves=len(self.wave_vectors), harmonics=HARMONICS,
                                                bond=len(self.wave_vectors) == 2, upsample=cfg.regular_upsample)
            self.crop = self._lattice_crop(min(h, w) // 8 * 8)
            periods = ", ".join(f"{1 / math.hypot(*k):.1f} px at {math.degrees(math.atan2(*k)):.0f} deg"
                                for k in self.wave_vectors)
            ctx.log(f"regular texture: lattice {periods}; canvas {self.crop} px "
                    f"(stretch {100 * stretch(self.wave_vectors, (self.crop, self.crop), self.g_config.bond):.1f}%; "
                    f"{LATTICE_HINT})")
        variants = augment(ex, cfg.augment)
        # the grid and mesh penalties: irregular photos, and stripes with ``stripe_penalties``
        self._penalised = not self.wave_vectors or (self.g_config.stripes and cfg.stripe_penalties)
        self.layout_source = self.layout_fine = None  # the photo's 8 px cells (and 4 px, a repeat's finer map)
        buffers = {"wave_vectors": torch.tensor(self.wave_vectors, dtype=torch.float32)} if self.wave_vectors else {}
        if (cfg.layout or self.repeat) and self.g_config.arch == "residual" and not self.wave_vectors:
            self.layout_source = source_cells(ex)
            self.g_config = dataclasses.replace(self.g_config, layout=tuple(self.layout_source.shape[-2:]),
                                                repeat=self.repeat, fine=bool(self.repeat) and cfg.repeat_fine)
            mean, std = self.layout_source.mean((1, 2)), self.layout_source.std((1, 2)).clamp_min(0.02)
            buffers = {"layout_source": self.layout_source, "layout_mean": mean, "layout_std": std}
            if self.g_config.fine:
                self.layout_fine = buffers["layout_fine"] = source_cells(ex, FINE)
            if self.repeat:
                ctx.log(f"repeat: the photo's {self.repeat[1]}x{self.repeat[0]} px pattern (at the training scale; "
                        f"{'read from the photo' if cfg.repeat == 'auto' else 'set by hand'}) laid edge to edge as "
                        f"G's map; a canvas holds whole repeats, each stretched to fit")
            else:
                ctx.log(f"layout: quilted from the photo's {self.layout_source.shape[-1]}x"
                        f"{self.layout_source.shape[-2]} cells of {CELL} px")
        with torch.no_grad():
            self.real = []  # relu3_1 of the exemplar's variants: D's real patches
            self.real_fine = []  # and their relu2_1, for D's fine head
            grams = {t: [] for t in GRAM_TAPS}
            for v in variants:
                feats = self.vgg(v.contiguous(memory_format=torch.channels_last), GRAM_TAPS)
                self.real.append(_patch_source(feats, "relu3_1", self.crop // 4))
                if cfg.d_fine:
                    self.real_fine.append(_patch_source(feats, "relu2_1", self.crop // 2))
                if cfg.loss == "gram":
                    for t in GRAM_TAPS:
                        grams[t].append(gram(_crop_border(feats[t], t)))
            if cfg.loss == "gram":
                self.target_gram = {t: torch.cat(g).mean(0, keepdim=True) for t, g in grams.items()}
            else:
                # relu5_1 needs a canvas of whole 16 px cells to stay periodic
                deep = cfg.relu5 and self.crop % 16 == 0
                if cfg.relu5 and not deep:
                    ctx.log(f"relu5_1 term off: the {self.crop} px canvas is not a multiple of 16 px")
                vgg = get_vgg19(DEEP_TAP, dev) if deep else self.vgg
                self.stats = ExemplarStatistics(variants, vgg, cfg.scales, taps=SW_TAPS + ((DEEP_TAP,) if deep else ()))
                if deep and (1, DEEP_TAP) not in self.stats.targets:
                    ctx.log("relu5_1 term off: the photo is too small for whole relu5_1 windows (~112 px a side)")
                    deep = False
                self.vgg5 = vgg if deep else None
                self.scales = self.stats.usable_scales(self.crop)
                if cfg.spectrum_weight:
                    self.spectrum = SPECTRUM_TERMS[cfg.spectrum_kind][0](variants, self.crop).to(dev)
                # (a regular photo's quantised waves move its harmonics a little: there only
                # with ``mesh_regular``)
                if cfg.mesh_weight and (cfg.mesh_regular or self._penalised):
                    self.mesh = mesh_target(variants, self.crop).to(dev)
            self.saturated_share = saturated_share(ex)  # a clipped photo's 0s and 255s (loop: collapse test)
            self.mean_rgb = ex.mean((0, 2, 3))
            self.std_rgb = ex.std((0, 2, 3))
        self.noise_params = NoiseParams.from_dict(cfg.noise)
        self.taps = self.g_config.taps
        self.pool_ids = list(range(cfg.pool_size))  # each field's index: a pure function of (seed, index)
        self.pool_seed_next = cfg.pool_size
        self.pool = self._build_pool(self.pool_ids)
        # G's inputs are VGG19 features of noise: standardise them by the pool's statistics
        # (fixed buffers saved in the preset), so G starts with O(1) activations.
        stats = {t: (p.mean((0, 2, 3)), p.std((0, 2, 3))) for t, p in self.pool.items()}
        start = choose_start(cfg.start_from, ex, self.vgg, self.g_config, ctx.log)
        self.started_from = start[0] if start else None
        return GeneratorStart(self.g_config, *stats["relu4_1"], self.mean_rgb,
                              side_stats={t: s for t, s in stats.items() if t != "relu4_1"},
                              buffers=buffers, weights=start[1] if start else None)

    def _boards_by_hand(self, found, width: float) -> tuple[float, float]:
        """The boards' wave vector for ``boards`` set by hand: ``width`` px (at the training
        scale) across the boards' direction found in the spectrum, or across the photo's one
        strongest wave where the spectrum did not call it stripes (boards of even grain)."""
        if found is None and len(self.wave_vectors) != 1:
            kind = "no repeating direction" if not self.wave_vectors else "a two-wave lattice (bricks, tiles)"
            raise ValueError(f"boards: the photo shows {kind}, so there is no direction to lay boards across; "
                             "leave boards unset for it")
        k = np.asarray(found if found is not None else self.wave_vectors[0], dtype=np.float64)
        side = max(self.exemplar.shape[-2:])
        if width > 4 * side:
            raise ValueError(f"boards of {width:.0f} px are wider than 4x the photo as trained ({side} px)")
        k = k / (np.linalg.norm(k) * width)
        return float(k[0]), float(k[1])

    def _repeat_px(self, repeat, scale: float) -> tuple[int, int]:
        """The pattern's repeat (h, w) px times ``scale`` (the photo's own px set by hand ->
        px at the training scale), refused where it does not fit in the photo with a map
        cell to spare."""
        h, w = self.exemplar.shape[-2:]
        out = tuple(int(round(r * scale)) for r in repeat)
        limit = (h // CELL * CELL - CELL, w // CELL * CELL - CELL)
        if any(r > m for r, m in zip(out, limit)) or min(out) < 16:
            raise ValueError(f"a repeat of {out[1]}x{out[0]} px (at the training scale) does not fit: it must be at "
                             f"least 16 px and at most {limit[1]}x{limit[0]} px, the photo as trained less one "
                             f"{CELL} px cell; the repeat is the size of one whole unit of the pattern (WIDTHxHEIGHT)")
        return out

    def _lattice_crop(self, limit: int) -> int:
        """The training canvas (a multiple of 8, within the photo) for the lattice's waves in
        whole cycles: the largest side up to the usual one that holds them within
        ``LATTICE_STRETCH`` (a step costs no more than without waves), else the side within
        25% of the usual one with the least stretch."""
        base, bond = self.crop, self.g_config.bond
        sides = range(max(MIN_CROP, int(0.75 * base) // 8 * 8), min(limit, int(1.25 * base)) + 1, 8)
        err = {c: stretch(self.wave_vectors, (c, c), bond) for c in sides}
        fits = [c for c in sides if c <= base and err[c] <= LATTICE_STRETCH]
        if fits:
            return max(fits)
        return min(sides, key=lambda c: (round(err[c], 3), abs(c - base)), default=base)

    def _waves(self, seed: int, size: int) -> dict[str, torch.Tensor]:
        idx = np.arange(size)
        g = self.g_config
        return canvas_inputs(self.wave_vectors, (size, size), seed, g.harmonics, g.bond, g.stripes)(idx, idx, self.device)

    def _layout(self, seed: int, size: int, window: bool = False) -> dict[str, torch.Tensor]:
        """The map of a canvas; ``window`` with a repeat: a training canvas is a window of
        the repeat at the photo's scale (most repeats are larger than it: fitted whole
        repeats would squash them), so its map does not wrap around."""
        if window and self.repeat:
            maps = {"layout8": (self.layout_source, CELL), "layout4": (self.layout_fine, FINE)}
            return {key: torch.from_numpy(repeat_map(src, self.repeat, (size // cell, size // cell), seed, fit=False,
                                                     cell=cell).transpose(2, 0, 1).copy())[None].to(self.device)
                    for key, (src, cell) in maps.items() if src is not None}
        idx = np.arange(size)
        return layout_inputs(self.layout_source, (size, size), seed, self.repeat, self.layout_fine)(idx, idx,
                                                                                                 self.device)

    def _build_pool(self, indices: list[int]) -> dict[str, torch.Tensor]:
        fields = [self._field(i) for i in indices]
        return {t: torch.cat([f[t] for f in fields]) for t in self.taps}

    def _field(self, index: int) -> dict[str, torch.Tensor]:
        """G's input taps of one periodic noise field, a pure function of the run seed and
        its index (so a resumed run rebuilds the pool from the indices)."""
        c = self.crop
        seed = (self.config.seed * 1_000_003 + index) % (2 ** 63)
        x = torch.from_numpy(noise_period(self.noise_params, seed, (c, c)))[None].to(self.device)
        with torch.no_grad(), autocast_for(self.device, self.config.precision):
            feats = self.vgg(x.contiguous(memory_format=torch.channels_last), self.taps)
        return {t: f.float() for t, f in feats.items()}

    # ---- data ---------------------------------------------------------------------------
    def sample_batch(self, step: int) -> dict[str, torch.Tensor]:
        """G's input taps of pool fields, each rolled by whole relu4_1 cells (8 px of noise):
        {tap: (batch, C, crop/stride, crop/stride)}; plus the output shift of this step."""
        cfg = self.config
        n = self.pool["relu4_1"].shape[0]
        idx = torch.randint(0, n, (cfg.batch,), generator=self.rng)
        cells = self.crop // 8
        out: dict[str, list[torch.Tensor]] = {t: [] for t in self.taps}
        for i in idx.tolist():
            dy, dx = torch.randint(0, cells, (2,), generator=self.rng).tolist()
            for t in self.taps:
                k = 8 // TAP_STRIDE[t]
                out[t].append(self.pool[t][i:i + 1].roll((dy * k, dx * k), (2, 3)))
        batch = {t: torch.cat(v).contiguous(memory_format=torch.channels_last) for t, v in out.items()}
        if self.wave_vectors:
            seeds = torch.randint(0, 2 ** 62, (cfg.batch,), generator=self.rng).tolist()
            waves = [self._waves(s, self.crop) for s in seeds]
            batch.update({k: torch.cat([w[k] for w in waves]) for k in waves[0]})
        if self.layout_source is not None:
            seeds = torch.randint(0, 2 ** 62, (cfg.batch,), generator=self.rng).tolist()
            maps = [self._layout(s, self.crop, window=True) for s in seeds]
            batch.update({k: torch.cat([m[k] for m in maps]).contiguous(memory_format=torch.channels_last)
                          for k in maps[0]})
        shift = torch.randint(0, 8, (2,), generator=self.rng).tolist() if cfg.shift else [0, 0]
        return {"features": batch, "shift": shift}

    def generate(self, G: Generator, batch) -> torch.Tensor:
        img = G(batch["features"]).float()
        dy, dx = batch["shift"]
        return img.roll((dy, dx), (2, 3)) if dy or dx else img

    def real_features(self, batch) -> dict[str, torch.Tensor]:
        """Random (crop/4)^2 windows of the exemplar variants' relu3_1 features, and with
        D's fine head (crop/2)^2 windows of their relu2_1."""
        out = {"relu3_1": self._windows(self.real, self.crop // 4)}
        if self.real_fine:
            out["relu2_1"] = self._windows(self.real_fine, self.crop // 2)
        return out

    def _windows(self, real: list[torch.Tensor], p: int) -> torch.Tensor:
        out = []
        for _ in range(self.config.batch):
            k = int(torch.randint(0, len(real), (1,), generator=self.rng))
            r = real[k]
            y = int(torch.randint(0, r.shape[-2] - p + 1, (1,), generator=self.rng))
            x = int(torch.randint(0, r.shape[-1] - p + 1, (1,), generator=self.rng))
            out.append(r[..., y:y + p, x:x + p])
        return torch.cat(out)

    def after_step(self, step: int) -> None:
        if step % self.config.pool_refresh_every == 0:
            i = int(torch.randint(0, len(self.pool_ids), (1,), generator=self.rng))
            self.pool_ids[i] = self.pool_seed_next
            self.pool_seed_next += 1
            f = self._field(self.pool_ids[i])
            for t in self.taps:
                self.pool[t][i:i + 1] = f[t]

    # ---- the losses ---------------------------------------------------------------------
    def losses(self, img: torch.Tensor, feats: dict[str, torch.Tensor], batch,
               critic: Critic, penalties: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(main loss, D's hinge loss) of a generated batch and its VGG19 features; with
        ``penalties`` the main loss includes the grid penalty and the spectrum term."""
        if self.config.loss == "gram":
            return self._gram_loss(img, feats), critic(feats)
        per_scale = {1: feats}
        if self.vgg5 is not None:
            per_scale[1] = {**feats, DEEP_TAP: self.vgg5.relu5_1_from_relu4_1(feats["relu4_1"])}
        for s in self.scales:
            if s > 1:
                vgg, taps = (self.vgg5, SW_TAPS + (DEEP_TAP,)) if self.vgg5 is not None else (self.vgg, SW_TAPS)
                per_scale[s] = vgg(downscale(img, s).contiguous(memory_format=torch.channels_last), taps)
        main = self.stats.loss(img, per_scale, pooled=self.config.sw_pooled)
        if penalties and self.config.grid_weight and self._penalised:
            # (a regular texture's own lattice is quantised to whole cycles of the canvas:
            # the harmonics of its sharp joints land on these frequencies)
            main = main + self.config.grid_weight * grid_loss(img)
        if penalties and self.mesh is not None:
            main = main + self.config.mesh_weight * mesh_loss(img, self.mesh, self.config.mesh_allowed)
        if penalties and self.config.spectrum_weight:
            term = SPECTRUM_TERMS[self.config.spectrum_kind][1]
            main = main + self.config.spectrum_weight * term(img, self.spectrum)
        if self.layout_source is not None:
            dy, dx = batch["shift"]
            weight, k = self.config.layout_follow()
            shrunk = torch.nn.functional.avg_pool2d(img.roll((-dy, -dx), (2, 3)), k)
            key, cell = ("layout4", FINE) if k < CELL else ("layout8", CELL)
            target = torch.nn.functional.avg_pool2d(batch["features"][key].float(), k // cell)
            main = main + weight * (shrunk - target).abs().mean()
        return main, critic(feats)

    def _gram_loss(self, img: torch.Tensor, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        l_gram = img.new_zeros(())
        for t in GRAM_TAPS:
            target = self.target_gram[t]
            l_gram = l_gram + ((gram(feats[t]) - target) ** 2).mean() / (target ** 2).mean()
        mean, std = img.float().mean((2, 3)), img.float().std((2, 3))
        l_color = ((mean - self.mean_rgb) ** 2).mean() + ((std - self.std_rgb) ** 2).mean()
        return l_gram + self.config.color_weight * l_color

    # ---- checkpoints, previews, export --------------------------------------------------
    def state(self) -> dict:
        # The pool is rebuilt from its fields' indices (a pure function of the seed), which
        # keeps checkpoints small.
        return {"pool_ids": torch.tensor(self.pool_ids, dtype=torch.int64), "pool_seed_next": self.pool_seed_next}

    def load_state(self, state: dict) -> None:
        self.pool_ids = [int(i) for i in state["pool_ids"].tolist()]
        self.pool_seed_next = int(state["pool_seed_next"])
        self.pool = self._build_pool(self.pool_ids)

    def fingerprint(self) -> dict:
        return {"exemplar_sha256": file_sha256(self.exemplar_path)}

    def render(self, G: Generator, size: int = 256, seed: int = 1234) -> np.ndarray:
        """A (size,size,3) uint8 seamless tile from G."""
        x = torch.from_numpy(noise_period(self.noise_params, seed, (size, size)))[None].to(self.device)
        with torch.no_grad(), autocast_for(self.device, self.config.precision):
            feats = self.vgg(x.contiguous(memory_format=torch.channels_last), G.taps)
            if self.wave_vectors:
                feats.update(self._waves(seed, size))
            if self.layout_source is not None:
                feats.update(self._layout(seed, size))
            img = G(feats).float()
        return to_uint8(img[0].permute(1, 2, 0).cpu().numpy())

    def meta(self) -> dict:
        return {"kind": "texture", "noise": self.noise_params.to_dict(),
                "exemplar": {"file": self.exemplar_path.name, "sha256": file_sha256(self.exemplar_path),
                             "source": self.source, "licence": self.licence,
                             "scale": round(self.exemplar_scale, 6), "crop": self.crop},
                **({"started_from": self.started_from} if self.started_from else {}),
                **({"maps": self.maps} if self.maps else {})}

    def export_files(self, folder: Path) -> None:
        # The exemplar at training scale, for side-by-side views and quality benchmarks.
        save_frame(folder / "exemplar.png", to_uint8(self.exemplar[0].permute(1, 2, 0).cpu().numpy()))
