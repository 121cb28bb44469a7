"""Re-train the built-in presets from their exemplars (scikit-image's bundled photos).

    python -m training.builtin [brick gravel ... espresso] [--steps N]

Needs ``pip install scikit-image`` (for its data files). Each preset records its exemplar's
source and licence; the run directories live under ``$MGAN_HOME/runs/builtin-<name>`` so a
killed run resumes.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from engine.presets import BUILTIN_DIR, data_dir

from .loop import Trainer
from .style import StyleConfig, StyleTask
from .texture import TextureTask, TrainConfig

ROOT = Path(__file__).resolve().parent.parent
TEXTURE_STEPS = 1200  # what the built-in texture presets were trained with


@dataclass(frozen=True)
class Builtin:
    name: str
    file: str
    source: str
    licence: str
    augment: str = "flips"
    exemplar_size: int = 256


BUILTINS = (
    Builtin("brick", "brick.png",
            "scikit-image data brick.png: 'Bricks25' from CC0Textures (cc0textures.com), "
            "perspective-corrected and cropped by scikit-image", "CC0 1.0", "flips"),
    Builtin("gravel", "gravel.png",
            "scikit-image data gravel.png: 'Gravel04' from CC0Textures (cc0textures.com)",
            "CC0 1.0", "dihedral"),
    Builtin("grass", "grass.png",
            "scikit-image data grass.png: 'Grass 01' by linolafett (DeviantArt), cropped",
            "CC0 1.0", "flips"),
    Builtin("hubble", "hubble_deep_field.jpg",
            "scikit-image data hubble_deep_field.jpg: Hubble eXtreme Deep Field, NASA/ESA "
            "(hubblesite.org release 2012-37)", "Public domain (NASA)", "dihedral", 384),
)


@dataclass(frozen=True)
class BuiltinStyle:
    name: str
    style: str
    source: str
    licence: str
    content: tuple[str, ...]   # scikit-image data files, or paths relative to the repository
    content_source: str
    content_licence: str


STYLES = (
    BuiltinStyle(
        "espresso", "coffee.png",
        "scikit-image data coffee.png: a cup of coffee, courtesy of Pikolo Espresso Bar, "
        "photograph by Rachel Michetti", "CC0 1.0",
        ("astronaut.png", "chelsea.png", "rocket.jpg", "docs/render.png"),
        "scikit-image data: astronaut.png (Eileen Collins, NASA Great Images), chelsea.png "
        "(Chelsea the cat, by Stefan van der Walt), rocket.jpg (DSCOVR launch, SpaceX); "
        "docs/render.png (this project's Blender render of its own textures)",
        "astronaut and rocket: public domain; chelsea: CC0 1.0; render.png: MIT, as this project"),
)


def train_style(b: BuiltinStyle, steps: int | None, fresh: bool) -> None:
    import numpy as np
    import skimage
    from PIL import Image

    data = Path(skimage.__file__).parent / "data"
    run_dir = data_dir() / "runs" / f"builtin-{b.name}"
    folder = run_dir / "content"
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(b.content):
        src = ROOT / name if "/" in name else data / name
        dst = folder / f"{i:02d}_{Path(name).stem}.png"
        if not dst.exists():  # PNG copies, so every content file is lossless and hashable
            Image.fromarray(np.asarray(Image.open(src).convert("RGB"))).save(dst)
    cfg = StyleConfig() if steps is None else StyleConfig(steps=steps)
    task = StyleTask(data / b.style, folder, cfg, source=b.source, licence=b.licence,
                     content_source=b.content_source, content_licence=b.content_licence)
    Trainer(task, b.name, run_dir, preset_dir=BUILTIN_DIR).run(resume=not fresh, fresh=fresh)


def main(argv=None) -> None:
    import skimage

    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--steps", type=int, help="training steps (default: each kind's default)")
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args(argv)
    data = Path(skimage.__file__).parent / "data"
    for b in BUILTINS:
        if args.names and b.name not in args.names:
            continue
        cfg = TrainConfig(steps=args.steps or TEXTURE_STEPS, augment=b.augment, exemplar_size=b.exemplar_size)
        task = TextureTask(data / b.file, cfg, source=b.source, licence=b.licence)
        Trainer(task, b.name, data_dir() / "runs" / f"builtin-{b.name}", preset_dir=BUILTIN_DIR).run(
            resume=not args.fresh, fresh=args.fresh)
    for st in STYLES:
        if not args.names or st.name in args.names:
            train_style(st, args.steps, args.fresh)


if __name__ == "__main__":
    main()
