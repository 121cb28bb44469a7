"""Pictures for the README: each built-in preset's exemplar beside a generated texture
tiled 2x2 (so any seam would show as a cross in the middle), both at the same pixel
scale (the exemplar as the preset was trained on it).

    python bench/gallery.py [--size 512] [--seed 7]
    python bench/gallery.py --presets DIR --out docs/quality   # texture presets of DIR instead

Saved as JPEG (quality 92): the pictures are for reading the README, and eight lossless
1.5-megapixel PNGs would weigh more than all the presets together.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.presets import BUILTIN_DIR, scan_presets  # noqa: E402
from engine.synth import Synthesizer, tile_2x2, to_uint8  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512, help="side of the generated tile")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--presets", type=Path, help="a folder of presets (for example `mgan train --out`'s) "
                                                 "to show instead of the built-ins")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.presets and not args.presets.is_dir():
        ap.error(f"--presets {args.presets}: not a folder")
    for p in scan_presets([args.presets or BUILTIN_DIR]).presets:
        if p.kind != "texture":
            continue
        s = Synthesizer.load(p)
        tex = to_uint8(s.synthesize((args.size, args.size), seed=args.seed))
        tiled = tile_2x2(tex)
        side = tiled.shape[0]
        ex = Image.open(p.path / "exemplar.png").convert("RGB")
        gap = 8
        canvas = Image.new("RGB", (ex.width + gap + side, max(side, ex.height) + 22), "white")
        canvas.paste(ex, (0, 22))
        canvas.paste(Image.fromarray(tiled), (ex.width + gap, 22))
        d = ImageDraw.Draw(canvas)
        d.text((4, 4), f"exemplar ({p.name}), 1:1", fill="black")
        d.text((ex.width + gap + 4, 4), f"generated {args.size}x{args.size}, seed {args.seed}, tiled 2x2",
               fill="black")
        canvas.save(out / f"{p.name}.jpg", quality=92)
        print(f"wrote {out / p.name}.jpg")


if __name__ == "__main__":
    main()
