"""Style presets: MDAN against MGAN, stylisation speed by size, and flicker on frames.

    python bench/stylize_bench.py [--preset espresso] [--frames 6] [--mdan-steps 125]

Prints, from one run on this machine:
1. MDAN (the iterative method, ``--mdan-steps`` Adam steps, fresh D) and MGAN (one forward
   pass of the preset) on the same photo at the same size, and their ratio (the paper
   reports about 25,000x on a Titan X).
2. MGAN stylisation of a photo at 256, 512, 1024 and 2048 px square (median of runs).
3. Flicker on a short orbiting shot rendered by Blender (bench/render_scene.py): the mean
   absolute change between consecutive stylised frames divided by that of the source
   frames, for MGAN per frame, MGAN with the temporal filter, MDAN per frame (every frame
   optimised on its own, D carried over) and MDAN started from the previous result.
It also writes docs/style/ (content | style | MGAN | MDAN side by side, and the frames).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def _photo(path: Path, side: int | None = None) -> np.ndarray:
    from training.mdan import fit_size

    a = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255
    return fit_size(a, side) if side else a


def _square(a: np.ndarray, side: int) -> np.ndarray:
    im = Image.fromarray((a * 255 + 0.5).astype(np.uint8))
    s = min(im.size)
    im = im.crop(((im.width - s) // 2, (im.height - s) // 2, (im.width - s) // 2 + s, (im.height - s) // 2 + s))
    return np.asarray(im.resize((side, side), Image.LANCZOS), np.float32) / 255


def _label(img: np.ndarray, text: str) -> np.ndarray:
    from PIL import ImageDraw

    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, 8 + 7 * len(text), 16), fill=(0, 0, 0))
    d.text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(im)


def _row(images: list[np.ndarray], labels: list[str], height: int = 256) -> np.ndarray:
    from engine.synth import to_uint8

    cells = []
    for img, lab in zip(images, labels):
        im = Image.fromarray(to_uint8(img) if img.dtype != np.uint8 else img)
        im = im.resize((round(im.width * height / im.height), height), Image.LANCZOS)
        cells.append(_label(np.asarray(im), lab))
    return np.concatenate(cells, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="espresso")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--mdan-steps", type=int, default=125)
    ap.add_argument("--size", type=int, default=384, help="longest side for the MDAN vs MGAN comparison")
    ap.add_argument("--out", default=str(ROOT / "docs" / "style"))
    args = ap.parse_args()
    from bench.machine import describe

    print(describe())

    import skimage

    from engine.presets import preset_from_arg
    from engine.sequence import filter_sequence, flicker
    from engine.synth import Synthesizer, stylize_image, to_uint8
    from engine.vgg import get_vgg19
    from training.mdan import MDAN, MDANConfig

    data = Path(skimage.__file__).parent / "data"
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = preset_from_arg(args.preset)
    synth = Synthesizer.load(info)
    style_path = info.path / "exemplar.png"
    get_vgg19("relu4_1")
    mcfg = MDANConfig(steps=args.mdan_steps, size=args.size, style_size=args.size)

    # 1. MDAN vs MGAN on the same photo and size (camera.png: CC0, not a training photo).
    content = _photo(data / "camera.png", args.size)
    stylize_image(synth, content)  # warm-up
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        mgan = stylize_image(synth, content)
        times.append(time.perf_counter() - t0)
    t_mgan = statistics.median(times)
    t0 = time.perf_counter()
    mdan = MDAN(style_path, mcfg)
    mdan_out, _ = mdan.run(content, progress=True, desc="mdan camera")
    t_mdan = time.perf_counter() - t0
    h, w = content.shape[:2]
    print(f"\n## MDAN vs MGAN, {w}x{h} (preset {info.name}, {mcfg.steps} MDAN steps)\n")
    print("| method | time | |\n|---|---:|---:|")
    print(f"| MDAN (iterative) | {t_mdan:.1f} s | |")
    print(f"| MGAN (feed-forward) | {t_mgan * 1000:.0f} ms | |")
    print(f"| ratio | | {t_mdan / t_mgan:,.0f}x |")
    rows = [_row([content, _photo(style_path), mgan, mdan_out],
                 ["content (held out)", "style", f"MGAN {t_mgan * 1000:.0f} ms", f"MDAN {t_mdan:.0f} s"])]

    # 2. MGAN stylisation by size.
    photo = _photo(data / "chelsea.png")
    print("\n## MGAN stylisation by size\n\n| size | median time | runs |\n|---|---:|---:|")
    for side in (256, 512, 1024, 2048):
        img = _square(photo, side)
        stylize_image(synth, img)
        runs = 5 if side <= 512 else 3 if side <= 1024 else 2
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            stylize_image(synth, img)
            ts.append(time.perf_counter() - t0)
        print(f"| {side}x{side} | {statistics.median(ts):.3f} s | {runs} |")

    # 3. Flicker on rendered frames of a moving scene.
    from bench.render_scene import render_frames

    frame_dir = out_dir / "frames"
    frames = sorted(frame_dir.glob("frame_*.png"))
    if len(frames) < args.frames:
        t0 = time.perf_counter()
        frames = render_frames(frame_dir, frames=args.frames)
        print(f"\n(rendered {len(frames)} frames with Cycles in {time.perf_counter() - t0:.0f} s)")
    frames = frames[:args.frames]
    sources = [_photo(f) for f in frames]
    mgan_frames = [stylize_image(synth, s) for s in sources]
    smooth = filter_sequence(mgan_frames, sources, 0.8)
    fcfg = MDANConfig(steps=args.mdan_steps, size=max(sources[0].shape[:2]), style_size=args.size)
    mdan_seq = MDAN(style_path, fcfg)
    per_frame, warm, prev = [], [], None
    t0 = time.perf_counter()
    for i, s in enumerate(sources):
        o, _ = mdan_seq.run(s, progress=True, desc=f"mdan frame {i + 1}/{len(sources)}")
        per_frame.append(o)
    t_seq = time.perf_counter() - t0
    warm_mdan = MDAN(style_path, fcfg)
    for i, s in enumerate(sources):
        o, _ = warm_mdan.run(s, init=prev, progress=True, desc=f"mdan warm {i + 1}/{len(sources)}")
        warm.append(o)
        prev = o
    fh, fw = sources[0].shape[:2]
    print(f"\n## Flicker on {len(sources)} rendered frames ({fw}x{fh}, camera orbiting 2 deg a frame)\n")
    print("mean |frame t - frame t-1| of the output / the same of the source (1.0 = changes as much "
          "as the scene)\n\n| method | flicker |\n|---|---:|")
    print(f"| MGAN per frame | {flicker(mgan_frames, sources):.2f} |")
    print(f"| MGAN + temporal filter (--temporal 0.8) | {flicker(smooth, sources):.2f} |")
    print(f"| MDAN per frame ({t_seq / len(sources):.0f} s a frame) | {flicker(per_frame, sources):.2f} |")
    print(f"| MDAN started from the previous result | {flicker(warm, sources):.2f} |")
    mid = len(sources) // 2
    rows.append(_row([sources[mid], _photo(style_path), mgan_frames[mid], per_frame[mid]],
                     ["rendered frame", "style", "MGAN", "MDAN"]))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    Image.fromarray(np.concatenate(rows, 0)).save(out_dir / "side_by_side.png")
    strip = [np.concatenate([to_uint8(x) for x in (sources[i], mgan_frames[i], per_frame[i])], 0)
             for i in range(0, len(sources), max(1, len(sources) // 4))][:4]
    Image.fromarray(np.concatenate(strip, 1)).save(out_dir / "frames_strip.png")
    print(f"\nwrote {out_dir / 'side_by_side.png'} and {out_dir / 'frames_strip.png'}")


if __name__ == "__main__":
    main()
