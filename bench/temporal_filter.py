"""The temporal filter on the shot it is made for: a locked-off camera, a moving object.

    python bench/temporal_filter.py [--preset espresso] [--frames 6]

Renders (once, cached in docs/style/locked/) a short shot with headless Blender: the camera
stands still, the sphere rolls across the floor, and Cycles' noise seed changes every frame
(16 samples), as in a typical quick animation render. Each frame is stylised on its own and
with ``--temporal`` S. Figures, over consecutive frame pairs:

- flicker: mean |out(t) - out(t-1)| / mean |src(t) - src(t-1)|, the whole frame;
- still flicker: the same more than 32 px from anything that moves (the source's 3x3 mean
  change >= 0.05 there), where only render noise changes;
- trail: within 32 px of motion, where the source is still but G's output moves with the
  object: mean |filtered - per-frame| / mean |per-frame(t) - per-frame(t-1)| (0 = the
  stylised halo follows the object; near 1 = the old halo stays behind);
- lag: the same where the scene moves (0 = the moving sphere is not smeared).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

STILL = 0.05   # a 3x3 mean source change at least this large: the scene moves there
NEAR = 32      # px around motion that count as its neighbourhood


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="espresso")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--dir", default=str(ROOT / "docs" / "style" / "locked"))
    args = ap.parse_args()
    from bench.machine import describe

    print(describe())

    from bench.render_scene import render_frames
    from engine.presets import preset_from_arg
    from engine.sequence import MOTION_RADIUS, box_sum, filter_sequence, flicker
    from engine.synth import Synthesizer, stylize_image, to_uint8

    folder = Path(args.dir)
    frames = sorted(folder.glob("frame_*.png"))
    if len(frames) < args.frames:
        frames = render_frames(folder, frames=args.frames, shot="locked")
    frames = frames[:args.frames]
    sources = [np.asarray(Image.open(f).convert("RGB"), np.float32) / 255 for f in frames]
    synth = Synthesizer.load(preset_from_arg(args.preset))
    plain = [stylize_image(synth, s) for s in sources]
    changes = [box_sum(np.abs(a - b).mean(-1), 1) / 9 for a, b in zip(sources[1:], sources)]
    moving = [c >= STILL for c in changes]
    near_any = [box_sum(m.astype(np.float32), NEAR) > 0.5 for m in moving]
    far = [~n for n in near_any]
    ring = [n & ~m for n, m in zip(near_any, moving)]

    def rel(outs, masks):
        return float(np.mean([np.abs(o - p).mean(-1)[m].mean() / np.abs(p - q).mean(-1)[m].mean()
                              for o, p, q, m in zip(outs[1:], plain[1:], plain, masks)]))

    def figures(outs):
        d_out = [np.abs(a - b).mean(-1) for a, b in zip(outs[1:], outs)]
        d_src = [np.abs(a - b).mean(-1) for a, b in zip(sources[1:], sources)]
        still_f = np.mean([o[m].mean() for o, m in zip(d_out, far)]) / np.mean(
            [s[m].mean() for s, m in zip(d_src, far)])
        return flicker(outs, sources), float(still_f), rel(outs, ring), rel(outs, moving)

    h, w = sources[0].shape[:2]
    share = np.mean([m.mean() for m in moving])
    print(f"\n## Temporal filter on a locked-off shot ({len(sources)} frames {w}x{h}, sphere rolling, "
          f"render noise re-seeded every frame; {share:.0%} of the pixels move per frame)\n")
    print("| stylisation | flicker | still flicker | trail | lag |\n|---|---:|---:|---:|---:|")
    rows = {"MGAN per frame": plain}
    for strength, radius in ((0.5, MOTION_RADIUS), (0.8, MOTION_RADIUS), (1.0, MOTION_RADIUS), (0.8, 0)):
        label = f"MGAN --temporal {strength}" + (" (no motion radius)" if radius == 0 else "")
        rows[label] = filter_sequence(plain, sources, strength, radius)
    for label, outs in rows.items():
        f, sf, trail, lag = figures(outs)
        print(f"| {label} | {f:.2f} | {sf:.2f} | {trail:.2f} | {lag:.3f} |")
    mid = len(sources) // 2
    strip = np.concatenate([to_uint8(x) for x in (sources[mid], plain[mid], rows["MGAN --temporal 0.8"][mid])], 1)
    Image.fromarray(strip).save(folder.parent / "locked_strip.png")
    print(f"\nwrote {folder.parent / 'locked_strip.png'} (frame {mid + 1}: source | per frame | --temporal 0.8)")


if __name__ == "__main__":
    main()
