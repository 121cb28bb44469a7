"""MGAN style training (paper section 3.2): a style image + content photos -> a style preset.

1. MDAN (training/mdan.py) stylises every content photo once. Its targets are cached in
   ``<run>/targets`` (PNG, with a manifest of what made them, and MDAN's discriminator, so
   a resumed run neither redoes finished targets nor restarts D on the next one).
2. Every (content, target) pair is expanded the paper's way (rotations -10/0/+10 degrees,
   scales 1.1^-1/0/1, horizontal flip: 18 variants). VGG19 relu4_1 of each mirror-padded
   content variant is computed once, exactly as ``mgan stylize`` computes it at inference.
3. G is trained on aligned crops: pixel MSE to the MDAN target, plus the relu3_1 hinge
   term of the patch discriminator (real patches: the targets'), its weight re-balanced to
   ``adv_ratio`` x the pixel gradient. The first ``inverter_steps`` steps train G to invert
   VGG19 (the content crop itself is the target, no adversarial term): the paper's
   autoencoder start, which it found stabilises training.

``StyleTask`` supplies the data and the losses; everything else (G, D, the step, the
rebalancing, checkpoints, previews, Ctrl-C/SIGTERM, resume, budget, export) is
training/loop.py's ``Trainer``:

    Trainer(StyleTask(style, content_dir, StyleConfig()), "espresso", run_dir).run()
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.generator import Generator, GeneratorConfig
from engine.progress import Progress
from engine.sequence import read_frame, save_frame
from engine.synth import TILE_HALO, Synthesizer, autocast_for, pad_photo, stylize_image, to_uint8

from .exemplar import affine_variants, file_sha256, load_exemplar
from .loop import Critic, GeneratorStart, TaskContext
from .mdan import MDAN, MDANConfig, fit_size
from .texture import TrainConfig

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
MARGIN_CELLS = 2        # relu4_1 cells of context around a crop (G's receptive field is ~1.6)
PAIR_AUGMENTS = ("paper", "flip", "none")


@dataclass
class StyleConfig(TrainConfig):
    steps: int | None = 1500        # (None: train for ``minutes`` instead)
    exemplar_size: int | None = 384  # the style image's longest side
    lr_g: float = 2e-4
    ema: float = 0.0
    loss: str = "gram"              # unused by style training (its losses are its own)
    scales: tuple[int, ...] = (1,)
    shift: bool = False
    # A style G decodes a photo's relu4_1 alone: relu2_1/relu3_1 side inputs would carry
    # the photo's own fine detail straight through.
    generator: dict = field(default_factory=lambda: GeneratorConfig(arch="upsample", widths=(256, 128, 64)).to_dict())
    content_size: int = 384         # content photos' longest side (the paper's 384)
    adv_ratio: float = 0.5          # hinge gradient / pixel-MSE gradient on the image
    track_balance: bool = False     # the style presets were measured with the smoothed balance (not re-measured)
    lr_decay: float = 0.0           # and with constant rates (not re-measured)
    d_global: bool = False          # and with D's patch scores alone (not re-measured)
    start_from: str = "off"         # a style's G starts from scratch (texture presets decode noise, not photos)
    inverter_steps: int = 200       # G first learns to invert VGG19 relu4_1 (no adversarial term)
    feature_weight: float = 1.0     # relu2_1/relu3_1 feature MSE to the target (sharpness; 0 = the paper's pixel loss only)
    pair_augment: str = "paper"     # 18 rotations x scales x flips, "flip" (2) or "none"
    mdan: dict = field(default_factory=lambda: asdict(MDANConfig()))

    def validate(self) -> "StyleConfig":
        super().validate()
        if not 64 <= self.content_size <= 4096:
            raise ValueError(f"content_size must be 64..4096, got {self.content_size}")
        if self.inverter_steps < 0:
            raise ValueError("inverter_steps must be >= 0")
        if self.pair_augment not in PAIR_AUGMENTS:
            raise ValueError(f"pair_augment must be one of {', '.join(PAIR_AUGMENTS)}")
        MDANConfig(**self.mdan).validate()
        return self

    def mdan_config(self) -> MDANConfig:
        cfg = MDANConfig(**self.mdan)
        cfg.size, cfg.style_size = self.content_size, self.exemplar_size
        cfg.precision = self.precision
        return cfg


def content_files(content) -> list[Path]:
    """A folder (its images, sorted), one file, or a list of files."""
    items = [content] if isinstance(content, (str, os.PathLike)) else list(content)
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"content {p} does not exist")
    if not files:
        raise ValueError(f"no content images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {content}")
    return files


class StyleTask:
    """A style image + content photos -> a style preset: MDAN targets, aligned crops, pixel
    and feature reconstruction next to D's hinge term. Runs inside training.loop.Trainer."""

    main_name = "rec"   # pixel + feature reconstruction of the MDAN target
    feature_taps = ("relu2_1", "relu3_1")

    def __init__(self, style: str | Path, content, config: StyleConfig, source: str = "",
                 licence: str = "", content_source: str = "", content_licence: str = ""):
        self.exemplar_path = Path(style)
        if not self.exemplar_path.is_file():
            raise FileNotFoundError(f"style image {self.exemplar_path} does not exist")
        self.config = config.validate()
        self.content_paths = content_files(content)
        self.source, self.licence = source, licence
        self.content_source, self.content_licence = content_source, content_licence

    @property
    def adversarial_from(self) -> int:
        return self.config.inverter_steps  # the inverter start has no adversarial term

    # ---- MDAN targets ----------------------------------------------------------------------
    def _targets_manifest(self) -> dict:
        return {"style_sha256": file_sha256(self.exemplar_path),
                "mdan": json.dumps(asdict(self.config.mdan_config()), sort_keys=True),
                "content_sha256": [file_sha256(p) for p in self.content_paths]}

    def mdan_targets(self, contents: list[np.ndarray], ctx: TaskContext) -> list[np.ndarray]:
        """MDAN-stylised targets, one per content photo, cached in ``<run>/targets``."""
        log = ctx.log
        folder = ctx.run_dir / "targets"
        folder.mkdir(parents=True, exist_ok=True)
        manifest = self._targets_manifest()
        mpath = folder / "manifest.json"
        try:
            old = json.loads(mpath.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            old = None
        if old is not None and {k: old.get(k) for k in ("style_sha256", "mdan")} != \
                {k: manifest[k] for k in ("style_sha256", "mdan")}:
            log(f"cached MDAN targets in {folder} were made from another style or settings; redoing them")
            for f in folder.glob("*"):
                f.unlink()
            old = None
        mpath.write_text(json.dumps(manifest, indent=1))
        paths = [folder / f"{i:04d}_{sha[:16]}.png" for i, sha in enumerate(manifest["content_sha256"])]
        targets: list[np.ndarray | None] = []
        for path, content in zip(paths, contents):
            try:
                t = read_frame(path) if path.is_file() else None
            except ValueError:
                t = None  # a damaged cache file is simply redone
            targets.append(t if t is not None and t.shape == content.shape else None)
        missing = [i for i, t in enumerate(targets) if t is None]
        if not missing:
            log(f"MDAN targets: all {len(targets)} cached in {folder}")
            return targets  # type: ignore[return-value]
        mcfg = self.config.mdan_config()
        mdan = MDAN(self.exemplar_path, mcfg, device=str(ctx.device))
        dpath = folder / "mdan_d.pt"
        mdan.load_state(dpath, log=log)  # D carried over from the images already done (the paper's reuse finding)
        total = len(missing) * mcfg.steps
        bar = Progress(total, f"mdan targets ({len(missing)} of {len(targets)})", enabled=ctx.show_progress)
        done = 0
        for n, i in enumerate(missing):
            def on_step(step, steps, figures, base=n * mcfg.steps):
                bar.update(base + step, img=float(n + 1), loss=figures["loss"])
                if ctx.should_stop is not None and ctx.should_stop():
                    raise KeyboardInterrupt
            try:
                out, _ = mdan.run(contents[i], on_step=on_step)
            except KeyboardInterrupt:
                bar.close()
                log(f"interrupted during MDAN targets: {len(targets) - len(missing) + done} of "
                    f"{len(targets)} cached; continue with --resume")
                raise
            targets[i] = out
            save_frame(paths[i], to_uint8(out))
            mdan.save_state(dpath)
            done += 1
        bar.close()
        return targets  # type: ignore[return-value]

    # ---- set-up -----------------------------------------------------------------------------
    def prepare(self, ctx: TaskContext) -> GeneratorStart:
        cfg, dev = self.config, ctx.device
        self.device, self.vgg, self.rng = dev, ctx.vgg, ctx.rng
        self.exemplar = load_exemplar(self.exemplar_path, cfg.exemplar_size)
        contents = [load_exemplar(p, cfg.content_size, opaque_only=False)[0].permute(1, 2, 0).numpy() for p in self.content_paths]
        targets = self.mdan_targets(contents, ctx)
        self.preview_content = contents[0]
        self.example_pair = (contents[0], targets[0])
        if cfg.pair_augment == "paper":
            groups = [g for c, t in zip(contents, targets) for g in affine_variants([c, t])]
        elif cfg.pair_augment == "flip":
            groups = [g for c, t in zip(contents, targets) for g in ([c, t], [c[:, ::-1], t[:, ::-1]])]
        else:
            groups = [[c, t] for c, t in zip(contents, targets)]
        groups = [g for g in groups if min(g[0].shape[:2]) >= cfg.crop]
        if not groups:
            raise ValueError(f"content photos too small for {cfg.crop}px crops at content_size "
                             f"{cfg.content_size}; lower --crop or raise --content-size")
        self.pairs = []
        s1 = torch.zeros(512, dtype=torch.float64)
        s2 = torch.zeros(512, dtype=torch.float64)
        n = 0
        m = TILE_HALO
        with torch.no_grad(), autocast_for(dev, cfg.precision):
            for content, target in groups:
                c = torch.from_numpy(np.ascontiguousarray(content.transpose(2, 0, 1)))[None].to(dev)
                c = pad_photo(c, m)  # exactly as stylize_image pads a photo
                f = self.vgg(c.contiguous(memory_format=torch.channels_last))["relu4_1"].float()
                s1 += f.sum((0, 2, 3)).double().cpu()
                s2 += (f ** 2).sum((0, 2, 3)).double().cpu()
                n += f.shape[-1] * f.shape[-2]
                t = torch.from_numpy(np.ascontiguousarray(target.transpose(2, 0, 1)))[None]
                cc = torch.from_numpy(np.ascontiguousarray(content.transpose(2, 0, 1)))[None]
                self.pairs.append((f.to(torch.bfloat16), t.to(dev), cc.to(dev)))
        mb = sum(f.numel() * 2 for f, _, _ in self.pairs) / 2 ** 20
        ctx.log(f"{len(self.content_paths)} content photos -> {len(self.pairs)} training pairs "
                f"(relu4_1 cache {mb:.0f} MB)")
        mean = (s1 / n).float()
        std = (s2 / n - (s1 / n) ** 2).clamp_min(0).sqrt().float()
        mean_rgb = torch.stack([t.mean((0, 2, 3)) for _, t, _ in self.pairs]).mean(0)
        return GeneratorStart(GeneratorConfig.from_dict(cfg.generator), mean.to(dev), std.to(dev), mean_rgb)

    # ---- data and losses ------------------------------------------------------------------------
    def sample_batch(self, step: int):
        """(relu4_1 of content crops with MARGIN_CELLS of context, targets, the targets' VGG19
        features); the targets are the content crops themselves while G learns to invert."""
        cfg = self.config
        c8, mc, halo = cfg.crop // 8, MARGIN_CELLS, TILE_HALO // 8
        feats, targets = [], []
        inverting = step < cfg.inverter_steps
        for _ in range(cfg.batch):
            f, t, c = self.pairs[int(torch.randint(0, len(self.pairs), (1,), generator=self.rng))]
            h8, w8 = t.shape[-2] // 8, t.shape[-1] // 8
            cy = int(torch.randint(0, h8 - c8 + 1, (1,), generator=self.rng))
            cx = int(torch.randint(0, w8 - c8 + 1, (1,), generator=self.rng))
            y0, x0 = cy + halo - mc, cx + halo - mc
            feats.append(f[..., y0:y0 + c8 + 2 * mc, x0:x0 + c8 + 2 * mc].float())
            src = c if inverting else t
            targets.append(src[..., cy * 8:cy * 8 + cfg.crop, cx * 8:cx * 8 + cfg.crop])
        targets = torch.cat(targets)
        with torch.no_grad(), autocast_for(self.device, cfg.precision):
            target_feats = self.vgg(targets.contiguous(memory_format=torch.channels_last), self.feature_taps)
            target_feats = {t: f.float() for t, f in target_feats.items()}
        return (torch.cat(feats).contiguous(memory_format=torch.channels_last), targets, target_feats)

    def generate(self, G: Generator, batch) -> torch.Tensor:
        p = MARGIN_CELLS * 8
        return G(batch[0]).float()[..., p:-p, p:-p]

    def real_features(self, batch) -> dict[str, torch.Tensor]:
        return {"relu3_1": batch[2]["relu3_1"]}  # D's real patches are the MDAN targets' own

    def losses(self, img, feats, batch, critic: Critic, penalties: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(pixel MSE + feature MSE to the target, D's hinge loss); it has no penalty terms."""
        loss = F.mse_loss(img, batch[1])
        if self.config.feature_weight:
            for t, target in batch[2].items():
                loss = loss + self.config.feature_weight * ((feats[t].float() - target) ** 2).mean() / (target ** 2).mean()
        return loss, critic(feats)

    def after_step(self, step: int) -> None:
        pass

    # ---- checkpoints, previews, export --------------------------------------------------------
    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def fingerprint(self) -> dict:
        shas = [file_sha256(self.exemplar_path)] + [file_sha256(p) for p in self.content_paths]
        return {"exemplar_sha256": ",".join(shas)}

    def render(self, G: Generator, size: int | None = None) -> np.ndarray:
        """The first content photo stylised by G at training scale (then scaled to a longest
        side of ``size``: stylising a smaller photo would change the look)."""
        out = stylize_image(Synthesizer(None, G, self.device, self.config.precision), self.preview_content)
        return to_uint8(fit_size(out, size) if size else out)

    def meta(self) -> dict:
        style = {"file": self.exemplar_path.name, "sha256": file_sha256(self.exemplar_path),
                 "source": self.source, "licence": self.licence}
        return {"kind": "style", "exemplar": style, "style": style,
                "content": {"files": [{"file": p.name, "sha256": file_sha256(p)} for p in self.content_paths],
                            "source": self.content_source, "licence": self.content_licence}}

    def export_files(self, folder: Path) -> None:
        # The style image at training scale, the first content photo and its MDAN target,
        # for side-by-side views.
        content, target = self.example_pair
        for name, image in (("exemplar.png", self.exemplar[0].permute(1, 2, 0).numpy()),
                            ("content_example.png", content), ("mdan_example.png", target)):
            save_frame(folder / name, to_uint8(image))
