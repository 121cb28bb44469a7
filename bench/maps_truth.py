"""How close the derived maps come to artist-made ones: colour in, our height and normal
out, compared with the height and normal maps that came with the colour.

Ground truth is not shipped (its licences are CC-BY / CC-BY-SA): a ``pairs.json`` lists
{name, color, height, normal, normal_convention} (8-bit PNGs of one size). The set
measured in docs/MEASURED.md comes from Debian 12's ``cube2-data`` (gk/, gor/ material sets)
and ``libirrlicht-doc`` (rockwall): ``apt-get download`` them and crop as the JSON says.

Scores, per pair and averaged, each independent of the maps' overall strength:
- height r: Pearson correlation of our height with the true one after both lose
  everything broader than the largest tent (the relief, not the lighting);
- normal r: correlation of our normal's x and y slopes with the true normal's;
- sign: how often the height came out upside down (r < 0), which a preset fixes with a
  negative ``height_scale``.

    python -m bench.maps_truth --pairs /path/to/pairs.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.maps import HEIGHT_BANDS, _tents, derive_maps, decode_normal  # noqa: E402

VARIANTS = {
    "shipped (T2 - T30)": HEIGHT_BANDS,
    "graded (0.35, 0.7, 1, 1 at 2, 5, 12, 30)": ((2, 0.35), (5, 0.7), (12, 1.0), (30, 1.0)),
    "flat (Y - T30)": ((30, 1.0),),
    "fine only (Y - T2)": ((2, 1.0),),
    "fine-weighted (1, 0.7, 0.35, 0.1)": ((2, 1.0), (5, 0.7), (12, 0.35), (30, 0.1)),
    "mid (T2 - T12)": ((2, 0.0), (12, 1.0)),
    "T1 - T30": ((1, 0.0), (30, 1.0)),
    "T4 - T30": ((4, 0.0), (30, 1.0)),
}


def grey(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), np.float64)


def highpass(a: np.ndarray, r: int = 30) -> np.ndarray:
    """``a`` minus its tent blur of radius r (wrapping around), as the height does."""
    q = np.rint(a).astype(np.uint32)
    blurred = _tents(q[np.arange(-2 * r - 2, a.shape[0] + 2 * r) % a.shape[0]], 2 * r + 2, a.shape[0], [r])[r]
    return a - blurred


def corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-12))


def score(pair: dict, bands) -> dict:
    color = np.asarray(Image.open(pair["color"]).convert("RGB"))
    maps = derive_maps(color, ["height", "normal"], bands=bands)
    out = {}
    if pair.get("height"):
        ours = maps["height"].astype(np.float64) / 257.0
        out["height"] = corr(highpass(ours), highpass(grey(pair["height"])))
    if pair.get("normal"):
        ours = decode_normal(maps["normal"], "opengl")
        conv = pair.get("normal_convention", "opengl")
        truth = decode_normal(np.asarray(Image.open(pair["normal"]).convert("RGB")),
                              "directx" if conv == "directx" else "opengl")
        out["normal"] = 0.5 * (corr(ours[..., 0], truth[..., 0]) + corr(ours[..., 1], truth[..., 1]))
        # the strength that would match the artist's slopes: least squares on the xy slopes
        o, t = ours[..., :2] / ours[..., 2:], truth[..., :2] / np.maximum(truth[..., 2:], 0.05)
        out["strength"] = float((o * t).sum() / (o * o).sum())
    if pair.get("specular"):
        rough = derive_maps(color, ["roughness"], bands=bands)["roughness"].astype(np.float64)
        out["roughness"] = corr(rough, 255.0 - grey(pair["specular"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", required=True, help="pairs.json of colour + height/normal ground truth")
    args = ap.parse_args()
    pairs = json.loads(Path(args.pairs).read_text())
    results = {name: [score(p, bands) for p in pairs] for name, bands in VARIANTS.items()}

    print(f"{len(pairs)} colour + ground-truth pairs ({args.pairs})\n")
    print("Height bands compared (mean over the pairs; r = correlation with the artist's map):\n")
    print("| bands | height r | normal r | heights upside down |")
    print("|---|---:|---:|---:|")
    for name, rows in results.items():
        hs = [r["height"] for r in rows if "height" in r]
        ns = [r["normal"] for r in rows if "normal" in r]
        print(f"| {name} | {np.mean(hs):.3f} | {np.mean(ns):.3f} | {sum(h < 0 for h in hs)} of {len(hs)} |")
    shipped = next(iter(results.values()))
    print("\nPer pair, shipped bands at the default strengths (strength: the normal_strength whose "
          "slopes match the artist's, least squares; roughness r: against 1 - the set's specular map):\n")
    print("| pair | height r | normal r | strength | roughness r |")
    print("|---|---:|---:|---:|---:|")
    for pair, r in zip(pairs, shipped):
        cells = [f"{r[k]:.3f}" if k in r else "-" for k in ("height", "normal", "strength", "roughness")]
        print(f"| {pair['name']} | " + " | ".join(cells) + " |")
    strengths = [r["strength"] for r in shipped if "strength" in r]
    roughs = [r["roughness"] for r in shipped if "roughness" in r]
    print(f"\nmedian matching normal_strength: {np.median(strengths):.2f}; "
          f"mean roughness r: {np.mean(roughs):.3f}")


if __name__ == "__main__":
    main()
