"""The generator G: VGG19 relu4_1 features (512 ch, 1/8 resolution) -> sRGB pixels.

Three variants, all with circular padding in every convolution so G(roll(f)) = roll(G(f)):

- ``residual`` (default for texture presets): a 1x1 stem, residual blocks at 1/8 (each
  adds 16 px of reach, so G can coordinate structure as large as a brick course), then
  three (x2 upsampling, conv, conv) stages. The upsampling (``upsample``) is bilinear by
  default, or nearest neighbour, which presets saved without the key use. Nearest's 2x2
  blocks print fine period-2 and period-4 lines (bench/checkerboard.py, the peaks); the
  training's grid penalty lowers their average, yet trained with it 4 of 7 built-in photos
  still showed a cross-hatch in their shadows or highlights, which bilinear stages did not
  (docs/MEASURED.md, upsampling). Nearest keeps a little more of the finest grain (the
  spectrum distance, bench/texture_ablation.py). relu3_1 and relu2_1 of the same periodic input
  join at 1/4 and 1/2 through 1x1 convs: finer-scale detail that relu4_1's 1/8 lattice
  cannot carry, which is what removes the 8 px grid (bench/texture_ablation.py). A regular
  texture's G (``waves`` > 0) also reads periodic inputs, sin and cos of its lattice's
  waves (engine/lattice.py), through 1x1 convs at 1/8, 1/4 and 1/2; the wave vectors are a
  buffer of the preset.
  An irregular texture's G (``layout``) also reads a colour map at 1/8, quilted from the
  photo's own 1/8 cells (engine/layout.py), through a 1x1 conv into its stem: where the
  photo's large things go (strata, patches, ledges), which nothing in relu4_1 of noise
  carries; the cells are a buffer of the preset. A pattern's repeat (``repeat``) is laid
  edge to edge instead, and with ``fine`` also read at 1/4 through a 1x1 conv into the
  first stage beside relu3_1, from the photo's 4 px cells (a second buffer).
- ``upsample`` (default, shipped): nearest-neighbour x2 upsampling followed by a 3x3 conv,
  three times. Every output pixel of a 2x2 block sees the same kernel, so there is no
  checkerboard (bench/checkerboard.py measures it).
- ``paper``: the paper's three 4x4 stride-2 transposed convs. Its kernel overlap is uneven,
  which prints a period-2 checkerboard; kept for that measurement.

Normalisation: no BatchNorm. Per-image statistics depend on the whole canvas and would
break "tiled == untiled"; instead the input features are standardised with fixed
per-channel statistics of the exemplar's relu4_1 (buffers saved in the preset).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .circular import UPSAMPLING, CircularConv2d, circular_pad, fused_inference, in_strips
from .lattice import MAX_WAVES

ARCHS = ("residual", "upsample", "paper")
DEFAULT_WIDTHS = {"residual": (128, 128, 64, 32), "upsample": (256, 128, 64), "paper": (256, 128, 64)}
# Reach of the residual G's three stages after its blocks, in output pixels: two 3x3 convs
# at 1/4, 1/2 and 1 plus to_rgb (8+4+2+1), and up to one coarse cell of nearest upsampling
# per stage (8+4+2).
STAGES_REACH = 15 + 14
# Receptive-field radius of VGG19 up to relu4_1, in input pixels (engine/vgg.py).
VGG_RELU4_1_RADIUS = 34


@dataclass(frozen=True)
class GeneratorConfig:
    arch: str = "residual"
    widths: tuple[int, ...] = DEFAULT_WIDTHS["residual"]
    blocks: int = 2                 # residual: blocks at 1/8
    waves: int = 0                  # residual: periodic inputs (engine/lattice.py), 0 for irregular textures
    harmonics: int = 1              # each wave's sin and cos at 1..harmonics times its frequency
    bond: bool = False              # two waves: the second as the bond coordinate (engine/lattice.py wave_inputs)
    stripes: bool = False           # one wave: boards of uneven width along it (engine/lattice.py stripe_inputs)
    # residual: the stages' x2 upsampling, "bilinear" or "nearest". Presets saved without the key are "nearest".
    upsample: str = "bilinear"
    # residual: (h, w) of the photo's 1/8 cells that a coarse layout is quilted from
    # (engine/layout.py); () for none
    layout: tuple[int, ...] = ()
    # with a layout: (h, w) px of the pattern's repeat in the photo as trained, whose map is
    # that repeat laid edge to edge instead of quilted (engine/layout.py repeat_map); () for none
    repeat: tuple[int, ...] = ()
    # with a repeat: G also reads the repeat's map at 1/4 (engine/layout.py FINE cells), into
    # its first stage, where a pattern's lines and edges are placed to 4 px
    fine: bool = False

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"unknown generator arch {self.arch!r}; known: {', '.join(ARCHS)}")
        n = len(DEFAULT_WIDTHS[self.arch])
        if len(self.widths) != n or not all(isinstance(w, int) and 1 <= w <= 1024 for w in self.widths):
            raise ValueError(f"generator widths for {self.arch!r} must be {n} ints in 1..1024, got {list(self.widths)}")
        if not (isinstance(self.blocks, int) and 0 <= self.blocks <= 8):
            raise ValueError(f"generator blocks must be an int in 0..8, got {self.blocks!r}")
        if not (isinstance(self.waves, int) and 0 <= self.waves <= MAX_WAVES):
            raise ValueError(f"generator waves must be an int in 0..{MAX_WAVES}, got {self.waves!r}")
        if not (isinstance(self.harmonics, int) and 1 <= self.harmonics <= 8):
            raise ValueError(f"generator harmonics must be an int in 1..8, got {self.harmonics!r}")
        if not isinstance(self.bond, bool) or (self.bond and self.waves != 2):
            raise ValueError(f"generator bond must be true or false, and true only with 2 waves, got {self.bond!r}")
        if not isinstance(self.stripes, bool) or (self.stripes and self.waves != 1):
            raise ValueError(f"generator stripes must be true or false, and true only with 1 wave, got {self.stripes!r}")
        if self.waves and self.arch != "residual":
            raise ValueError("only the residual generator reads periodic inputs (waves)")
        if self.upsample not in UPSAMPLING:
            raise ValueError(f"generator upsample must be one of {', '.join(UPSAMPLING)}, got {self.upsample!r}")
        if self.layout and (len(self.layout) != 2 or not all(isinstance(n, int) and 2 <= n <= 1024 for n in self.layout)):
            raise ValueError(f"generator layout must be [] or two ints in 2..1024 (its source cells), got {list(self.layout)}")
        if self.layout and self.arch != "residual":
            raise ValueError("only the residual generator reads a layout")
        if self.repeat and (len(self.repeat) != 2 or not all(isinstance(n, int) and 16 <= n <= 8192 for n in self.repeat)):
            raise ValueError(f"generator repeat must be [] or two ints in 16..8192 (px), got {list(self.repeat)}")
        if self.repeat and not self.layout:
            raise ValueError("a generator's repeat is that of its layout: it needs a layout")
        if self.repeat and any(r + 8 > 8 * n for r, n in zip(self.repeat, self.layout)):
            raise ValueError(f"generator repeat {list(self.repeat)} px does not fit in its layout's "
                             f"{[8 * n for n in self.layout]} px with a cell to spare")
        if not isinstance(self.fine, bool) or (self.fine and not self.repeat):
            raise ValueError(f"generator fine must be true or false, and true only with a repeat, got {self.fine!r}")

    def to_dict(self) -> dict:
        d = {"arch": self.arch, "widths": list(self.widths)}
        if self.arch == "residual":
            d["blocks"] = self.blocks
            d["upsample"] = self.upsample
            if self.waves:
                d["waves"] = self.waves
                d["harmonics"] = self.harmonics
                if self.bond:
                    d["bond"] = True
                if self.stripes:
                    d["stripes"] = True
            if self.layout:
                d["layout"] = list(self.layout)
            if self.repeat:
                d["repeat"] = list(self.repeat)
            if self.fine:
                d["fine"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        if not isinstance(d, dict):
            raise ValueError(f"generator config must be an object, got {type(d).__name__}")
        arch = d.get("arch", cls.arch)
        if arch not in ARCHS:
            raise ValueError(f"unknown generator arch {arch!r}; known: {', '.join(ARCHS)}")
        widths = d.get("widths", DEFAULT_WIDTHS[arch])
        blocks = d.get("blocks", cls.blocks)
        waves = d.get("waves", cls.waves)
        harmonics = d.get("harmonics", cls.harmonics)
        bond = d.get("bond", cls.bond)
        stripes = d.get("stripes", cls.stripes)
        fine = d.get("fine", cls.fine)
        layout = d.get("layout", [])
        repeat = d.get("repeat", [])
        for key, v in (("layout", layout), ("repeat", repeat)):
            if not isinstance(v, (list, tuple)) or not all(isinstance(n, int) and not isinstance(n, bool) for n in v):
                raise ValueError(f"generator {key} must be a list of ints, got {v!r}")
        # presets from before the choice was saved upsample by nearest neighbour
        upsample = d.get("upsample", "nearest") if arch == "residual" else cls.upsample
        if not isinstance(widths, (list, tuple)) or not all(isinstance(w, int) and not isinstance(w, bool) for w in widths):
            raise ValueError(f"generator widths must be a list of ints, got {widths!r}")
        if isinstance(blocks, bool) or not isinstance(blocks, int):
            raise ValueError(f"generator blocks must be an int, got {blocks!r}")
        for key, v in (("waves", waves), ("harmonics", harmonics)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"generator {key} must be an int, got {v!r}")
        for key, v in (("bond", bond), ("stripes", stripes), ("fine", fine)):
            if not isinstance(v, bool):
                raise ValueError(f"generator {key} must be true or false, got {v!r}")
        return cls(arch=arch, widths=tuple(widths), blocks=blocks, waves=waves, harmonics=harmonics, bond=bond,
                   stripes=stripes,
                   upsample=upsample, layout=tuple(layout), repeat=tuple(repeat), fine=fine)

    @property
    def taps(self) -> tuple[str, ...]:
        """The VGG19 taps G reads."""
        return ("relu2_1", "relu3_1", "relu4_1") if self.arch == "residual" else ("relu4_1",)


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return CircularConv2d(cin, cout, k)


class CircularConvTranspose2d(nn.Module):
    """4x4 stride-2 transposed conv that wraps around: pad the input circularly by one
    cell, run the transposed conv unpadded, and crop to exactly 2x the input."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.deconv(circular_pad(x, 1))
        # Input (h+2) -> output 2(h+2)+2; the first 3 rows come from the padding wrap.
        return y[..., 3:3 + 2 * h, 3:3 + 2 * w]


class _Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.a, self.b = _conv(c, c), _conv(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x, act="leaky_relu"), add=x)


def _cut(x: torch.Tensor, k: int) -> torch.Tensor:
    """x without k pixels on each side."""
    return x[..., k:x.shape[-2] - k, k:x.shape[-1] - k] if k else x


class Generator(nn.Module):
    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config
        self.register_buffer("feat_mean", torch.zeros(1, 512, 1, 1))
        self.register_buffer("feat_std", torch.ones(1, 512, 1, 1))
        self.act = nn.LeakyReLU(0.2)
        if config.arch == "residual":
            w0, w1, w2, w3 = config.widths
            self.register_buffer("side3_mean", torch.zeros(1, 256, 1, 1))
            self.register_buffer("side3_std", torch.ones(1, 256, 1, 1))
            self.register_buffer("side2_mean", torch.zeros(1, 128, 1, 1))
            self.register_buffer("side2_std", torch.ones(1, 128, 1, 1))
            self.stem = _conv(512, w0, 1)
            self.blocks = nn.Sequential(*[_Residual(w0) for _ in range(config.blocks)])
            self.stages = nn.ModuleList([nn.ModuleList([_conv(a, b), _conv(b, b)])
                                         for a, b in ((w0, w1), (w1, w2), (w2, w3))])
            self.side3 = _conv(256, w1, 1)
            self.side2 = _conv(128, w2, 1)
            self.to_rgb = _conv(w3, 3)
            if config.waves:
                # the exemplar's wave vectors (cycles per px at training scale), saved in the preset
                self.register_buffer("wave_vectors", torch.zeros(config.waves, 2))
                n = 2 * config.harmonics * config.waves
                self.wave8, self.wave4, self.wave2 = _conv(n, w0, 1), _conv(n, w1, 1), _conv(n, w2, 1)
            if config.layout:
                # the photo's 1/8 cells that the layout is quilted from (engine/layout.py),
                # and the fixed standardisation of the map G reads
                self.register_buffer("layout_source", torch.zeros(3, *config.layout))
                self.register_buffer("layout_mean", torch.zeros(1, 3, 1, 1))
                self.register_buffer("layout_std", torch.ones(1, 3, 1, 1))
                self.layout8 = _conv(3, w0, 1)
                if config.fine:
                    # the same photo's 1/4 cells, for the repeat's finer map
                    self.register_buffer("layout_fine", torch.zeros(3, 2 * config.layout[0], 2 * config.layout[1]))
                    self.layout4 = _conv(3, w1, 1)
            return
        w1, w2, w3 = config.widths
        self.head = _conv(512, w1)
        if config.arch == "upsample":
            self.up = nn.ModuleList([_conv(w1, w2), _conv(w2, w3), _conv(w3, w3)])
        else:
            self.up = nn.ModuleList([CircularConvTranspose2d(w1, w2), CircularConvTranspose2d(w2, w3),
                                     CircularConvTranspose2d(w3, w3)])
        self.to_rgb = _conv(w3, 3)

    @property
    def taps(self) -> tuple[str, ...]:
        return self.config.taps

    @property
    def halo_px(self) -> int:
        """Receptive-field radius of G in output pixels (upper bound). residual: 16 px per
        block at 1/8, two 3x3 convs at 1/4, 1/2, 1 (8+4+2) and to_rgb (1), plus up to one
        coarse cell of nearest upsampling per stage (8+4+2). upsample: head 3x3 at 1/8 (8),
        one 3x3 per stage (4+2+1), to_rgb (1); transposed convs reach a little more."""
        if self.config.arch == "residual":
            return 16 * self.config.blocks + STAGES_REACH
        return 24

    @property
    def tile_halo(self) -> int:
        """Halo (a multiple of 8) that makes a tiled decode equal the untiled one: the
        encoder's reach plus G's."""
        return -(-(VGG_RELU4_1_RADIUS + self.halo_px) // 8) * 8

    def crop_for(self, halo: int) -> int:
        """Pixels a side (a multiple of 8) that a window with this halo may drop after the
        residual G's blocks at 1/8: its stages reach 15 px more (+14 of upsampling alignment),
        and the rest of the halo was only context for the encoder and the blocks. Saves
        those stages ~11% of their work on a 2048 px tile."""
        if self.config.arch != "residual":
            return 0
        return max(0, (halo - STAGES_REACH) // 8 * 8)

    def forward(self, features, release: bool = False, crop: int = 0) -> torch.Tensor:
        """{tap: (N,C,h*s,w*s)} (or relu4_1 alone, (N,512,h,w), for the single-input archs)
        -> (N,3,8h,8w) sRGB in [0,1]. ``release``: take the inputs out of the dict as soon as
        they are used, so that their memory is free for the larger tensors that follow (a
        large canvas's peak is in the last stage). ``crop`` (residual G, a multiple of 8 up to
        ``crop_for`` of a window's halo): the output loses that many pixels a side."""
        if isinstance(features, torch.Tensor):
            if self.config.arch == "residual":
                raise ValueError("the residual generator needs relu2_1, relu3_1 and relu4_1 features")
            features = {"relu4_1": features}
        if self.config.arch == "residual":
            waves = self.config.waves
            if waves and "wave8" not in features:
                raise ValueError("this generator lays out a regular texture: it needs its periodic "
                                 "inputs (engine/lattice.py wave_inputs)")
            if self.config.layout and "layout8" not in features:
                raise ValueError("this generator follows a layout: it needs its map (engine/layout.py layout_inputs)")
            take = features.pop if release else features.__getitem__
            add = self.wave8(take("wave8")) if waves else None
            if self.config.layout:
                lay = self.layout8(take("layout8").to(self.layout_mean.dtype), standardise=(self.layout_mean, self.layout_std))
                add = lay if add is None else add + lay
            x = self.stem(take("relu4_1"), standardise=(self.feat_mean, self.feat_std), add=add, act="leaky_relu")
            x = _cut(self.blocks(x), crop // 8)
            conv_a, conv_b = self.stages[0]
            add4 = self.wave4(_cut(take("wave4"), crop // 4)) if waves else None
            if self.config.fine:
                lay4 = self.layout4(_cut(take("layout4"), crop // 4).to(self.layout_mean.dtype),
                                    standardise=(self.layout_mean, self.layout_std))
                add4 = lay4 if add4 is None else add4 + lay4
            add = self.side3(_cut(take("relu3_1"), crop // 4), standardise=(self.side3_mean, self.side3_std), add=add4)
            x = conv_b(conv_a(x, add=add, act="leaky_relu", up2=self.config.upsample), act="leaky_relu")
            fine = [(_cut(take("relu2_1"), crop // 2), 2)] + ([(_cut(take("wave2"), crop // 2), 2)] if waves else [])
            if fused_inference(x):
                # the last two stages (1/2 and full resolution) in strips of rows: they reach
                # 2.5 rows at 1/4 resolution, and their 64- and 32-channel tensors set the peak
                # memory and wait on memory when whole
                return in_strips(self._fine_stages, [(x, 1)] + fine, halo=3, scale=4,
                                 px_bytes=16 * 8 * self.config.widths[3] * 2)
            return self._fine_stages(x, *(t for t, _ in fine))
        if crop:
            raise ValueError(f"only the residual generator crops its input, not {self.config.arch!r}")
        x = (features["relu4_1"] - self.feat_mean) / self.feat_std
        x = self.head(x, act="leaky_relu")
        for layer in self.up:
            if self.config.arch == "upsample":
                x = layer(x, act="leaky_relu", up2=True)
            else:
                x = self.act(layer(x))
        return torch.sigmoid(self.to_rgb(x))

    def _fine_stages(self, x: torch.Tensor, relu2_1: torch.Tensor, wave2: torch.Tensor | None = None) -> torch.Tensor:
        """The residual G's last two stages: 1/4 resolution (+ relu2_1, the waves) -> sRGB."""
        (conv_a, conv_b), (conv_c, conv_d) = self.stages[1], self.stages[2]
        add = self.side2(relu2_1, standardise=(self.side2_mean, self.side2_std),
                         add=self.wave2(wave2) if wave2 is not None else None)
        up = self.config.upsample
        x = conv_b(conv_a(x, add=add, act="leaky_relu", up2=up), act="leaky_relu")
        x = conv_d(conv_c(x, act="leaky_relu", up2=up), act="leaky_relu")
        return torch.sigmoid(self.to_rgb(x))

    @torch.no_grad()
    def init_output(self, mean_rgb: torch.Tensor, gain: float = 0.1) -> None:
        """Start near a flat image of the exemplar's mean colour: a scaled-down last layer
        and its bias at logit(mean). Keeps the sigmoid out of saturation early on, where
        the paper's default init collapses into a checkerboard."""
        self.to_rgb.weight.mul_(gain)
        m = mean_rgb.clamp(0.02, 0.98)
        self.to_rgb.bias.copy_(torch.log(m / (1 - m)))

    @torch.no_grad()
    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor, tap: str = "relu4_1") -> None:
        """Fixed input standardisation of one tap (relu4_1, or the residual arch's side taps)."""
        m, s = {"relu4_1": (self.feat_mean, self.feat_std), "relu3_1": (getattr(self, "side3_mean", None), getattr(self, "side3_std", None)),
                "relu2_1": (getattr(self, "side2_mean", None), getattr(self, "side2_std", None))}[tap]
        if m is None:
            raise ValueError(f"generator arch {self.config.arch!r} reads no {tap}")
        m.copy_(mean.view_as(m))
        # Channels that barely fire on noise have a tiny std; a rare activation there would
        # blow up to thousands and saturate the output (seen as blobs). Floor the std.
        s.copy_(std.clamp_min(0.1 * float(std.mean()) + 1e-3).view_as(s))
