"""Re-train the built-in presets from their exemplars (scikit-image's bundled photos).

    python -m training.builtin [brick gravel ...] [--steps N]

Needs ``pip install scikit-image`` (for its data files). Each preset records its exemplar's
source and licence; the run directories live under ``$MGAN_HOME/runs/builtin-<name>`` so a
killed run resumes.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from engine.presets import BUILTIN_DIR, data_dir

from .texture import TextureTrainer, TrainConfig


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


def main(argv=None) -> None:
    import skimage

    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args(argv)
    data = Path(skimage.__file__).parent / "data"
    for b in BUILTINS:
        if args.names and b.name not in args.names:
            continue
        cfg = TrainConfig(steps=args.steps, augment=b.augment, exemplar_size=b.exemplar_size)
        trainer = TextureTrainer(data / b.file, b.name, data_dir() / "runs" / f"builtin-{b.name}", cfg,
                                 preset_dir=BUILTIN_DIR, source=b.source, licence=b.licence)
        trainer.run(resume=not args.fresh, fresh=args.fresh)


if __name__ == "__main__":
    main()
