"""Synthesis speed and memory, measured in one run on this machine.

Each size runs in a fresh process (so peak memory is that size's own). Achieved GFLOP/s
counts the convolutions of VGG19-to-relu4_1 and G at the requested size (tiling halos are
overhead, not counted) and is set against the same run's matrix-multiply throughput.

    python bench/synth_bench.py [--preset bricks] [--sizes 256,512,1024,2048,8192] [--device cuda]
                                [--map-sizes 512,2048,8192] [--skip-layouts]

On a GPU the peak memory column is the GPU's (torch.cuda.max_memory_allocated).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


REPEATS, REPEATS_LARGE = 5, 3  # synthesis repeats per size (8192 and above: the large ones)


def conv_flops(preset: str, side: int = 256) -> float:
    """FLOPs (2 x multiply-adds) of every conv in VGG19-to-relu4_1 + G for a side x side image."""
    import torch

    from engine.synth import Synthesizer
    from engine.vgg import get_vgg19

    s = Synthesizer.load(preset, device="cpu", precision="fp32")
    total = 0.0

    def hook(mod, inp, out):
        nonlocal total
        k = mod.weight.shape[1] * mod.weight.shape[2] * mod.weight.shape[3]
        if isinstance(mod, torch.nn.ConvTranspose2d):
            total += 2.0 * inp[0].numel() * mod.weight.shape[1] * mod.weight.shape[2] * mod.weight.shape[3]
        else:
            total += 2.0 * out.numel() * k

    hooks = [m.register_forward_hook(hook) for m in list(get_vgg19("relu4_1").modules()) + list(s.generator.modules())
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    s.decode(torch.rand(1, 3, side, side))
    for h in hooks:
        h.remove()
    return total / (side * side)  # per pixel


def matmul_gflops(precision: str, n: int = 2048, reps: int = 10, device: str = "cpu") -> float:
    import torch

    if device == "cuda":
        n, reps = 8192, 20
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    if precision == "bf16":
        a, b = a.bfloat16(), b.bfloat16()
    for _ in range(2):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def one(preset: str, side: int, precision: str, repeats: int, layout: str, device: str = "cpu",
        maps: bool = False) -> dict:
    """Runs in a child process: time one synthesis (best of `repeats`), and with ``maps``
    the four PBR maps of its 8-bit result; report peak RSS (on a GPU: peak GPU memory)."""
    import numpy as np
    import torch

    from engine.maps import derive_maps
    from engine.synth import Synthesizer

    s = Synthesizer.load(preset, device=device, precision=precision)
    if layout == "nchw":
        s.generator.to(memory_format=torch.contiguous_format)
    s.synthesize((256, 256), seed=0)  # warm-up: weights, kernels, allocator
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # this machine's throughput drifts (shared hosts): the reference matmul runs beside each size
    from engine.synth import autocast_for
    mm_precision = "bf16" if isinstance(autocast_for(s.device, precision), torch.autocast) else "fp32"
    matmul = matmul_gflops(mm_precision, device=device)
    best, best_maps, during, paired = float("inf"), float("inf"), None, []
    for r in range(repeats):
        if r:  # the host's best phase, probed between repeats too
            matmul = max(matmul, matmul_gflops(mm_precision, device=device))
        # A tiled canvas runs for a minute, through the host's slow phases as well as its
        # best: a short matmul probe between its tiles measures the same phases (its time
        # is taken out of the synthesis's).
        probes, probe_s = [matmul_gflops(mm_precision, reps=3, device=device)], 0.0

        def probe(done, total):
            nonlocal probe_s
            if done < total:
                t = time.perf_counter()
                probes.append(matmul_gflops(mm_precision, reps=3, device=device))
                probe_s += time.perf_counter() - t
        t0 = time.perf_counter()
        image = s.synthesize((side, side), seed=r, dtype=np.uint8, progress=probe)  # as `mgan synth` does
        seconds = time.perf_counter() - t0 - probe_s
        between = probes[1:]
        probes.append(matmul_gflops(mm_precision, reps=3, device=device))
        paired.append((seconds, sum(probes) / len(probes)))  # this repeat against the probes around it
        if seconds < best:
            best, during = seconds, (sum(between) / len(between) if between else None)
        peak_synth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if maps:
            t0 = time.perf_counter()
            derive_maps(image)
            best_maps = min(best_maps, time.perf_counter() - t0)
        del image
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    matmul = max(matmul, matmul_gflops(mm_precision, device=device))
    if device == "cuda":
        peak_synth = peak
    return {"seconds": best, "maps_seconds": best_maps if maps else None, "peak_mb": peak_synth,
            "peak_maps_mb": peak, "base_mb": base,
            "matmul": matmul, "matmul_during": during, "paired": paired}


def run_child(preset, side, precision, repeats, layout="channels_last", device="cpu", maps=False) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", str(side), "--preset", preset,
                          "--precision", precision, "--repeats", str(repeats), "--layout", layout,
                          "--device", device] + (["--maps"] if maps else []),
                         capture_output=True, text=True, cwd=ROOT, env=dict(os.environ))
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="bricks")
    ap.add_argument("--sizes", default="256,512,1024,2048,8192")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--one", type=int)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--layout", default="channels_last")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--maps", action="store_true", help="(child) also time the PBR maps")
    ap.add_argument("--map-sizes", default="512,2048,8192", help="sizes of the PBR-map table ('' skips it)")
    ap.add_argument("--skip-layouts", action="store_true", help="skip the precision/layout table")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.preset, args.one, args.precision, args.repeats, args.layout, args.device,
                             args.maps)))
        return

    from bench.machine import describe
    from engine.synth import DEFAULT_TILE, _cpu_has_fast_bf16

    print(describe())
    per_px = conv_flops(args.preset)
    mm = {p: matmul_gflops(p, device=args.device) for p in ("fp32", "bf16")}
    print(f"conv work: {per_px / 1e6:.2f} MFLOP per output pixel; "
          f"matmul 2048^2 this run: fp32 {mm['fp32']:.0f} GFLOP/s, bf16 {mm['bf16']:.0f} GFLOP/s\n")

    if not args.skip_layouts:
        print("Precision and layout at 512x512 (best of 3):\n")
        print("| precision | layout | seconds | GFLOP/s |")
        print("|---|---|---:|---:|")
        for prec, layout in (("fp32", "nchw"), ("fp32", "channels_last"), ("bf16", "channels_last")):
            r = run_child(args.preset, 512, prec, 3, layout, args.device)
            print(f"| {prec} | {layout} | {r['seconds']:.3f} | {per_px * 512 * 512 / r['seconds'] / 1e9:.0f} |")

    prec = "bf16" if (_cpu_has_fast_bf16() or args.device == "cuda") and args.precision == "auto" else args.precision
    print(f"\nSynthesis by size ({args.precision} -> {prec}; noise + VGG19 + G + resampling; "
          f"tiles of at most {DEFAULT_TILE} px with the generator's halo above {DEFAULT_TILE}; "
          f"best of {REPEATS} ({REPEATS_LARGE} at 8192 and above), the matmul the best of probes before, between "
          f"and after; paired: each repeat's GFLOP/s over the mean of the short matmul probes just before, "
          f"between its tiles and just after it, the median over the repeats; this host's speed drifts "
          f"within seconds, so a long synthesis and a short probe can land in different phases):\n")
    print("| size | seconds | Mpx/s | peak RSS MB | (after warm-up MB) | GFLOP/s | matmul GFLOP/s beside it | of matmul "
          "| matmul between its tiles | of that | paired (range) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    map_sizes = {int(x) for x in args.map_sizes.split(",") if x}
    with_maps = {}
    for side in (int(s) for s in args.sizes.split(",")):
        r = run_child(args.preset, side, args.precision, REPEATS if side < 8192 else REPEATS_LARGE,
                      device=args.device, maps=side in map_sizes)
        gf = per_px * side * side / r["seconds"] / 1e9
        during = r["matmul_during"]
        same = f"{during:.0f} | {gf / during:.0%}" if during else "- | -"
        ratios = [per_px * side * side / sec / 1e9 / mm_ for sec, mm_ in r["paired"]]
        paired = f"{statistics.median(ratios):.0%} ({min(ratios):.0%}-{max(ratios):.0%})"
        print(f"| {side}x{side} | {r['seconds']:.3f} | {side * side / r['seconds'] / 1e6:.2f} | "
              f"{r['peak_mb']:.0f} | {r['base_mb']:.0f} | {gf:.0f} | {r['matmul']:.0f} | {gf / r['matmul']:.0%} | {same} "
              f"| {paired} |")
        sys.stdout.flush()
        if side in map_sizes:
            with_maps[side] = r

    if with_maps:
        print("\nPBR maps (height, normal, roughness, AO; engine/maps.py, numpy on the CPU) against the "
              "synthesis they come from, in the same process:\n")
        print("| size | synthesis s | maps s | maps / synthesis | peak RSS MB with maps |")
        print("|---|---:|---:|---:|---:|")
        for side, r in with_maps.items():
            print(f"| {side}x{side} | {r['seconds']:.3f} | {r['maps_seconds']:.3f} | "
                  f"{r['maps_seconds'] / r['seconds']:.1%} | {r['peak_maps_mb']:.0f} |")

    if args.device == "cpu":
        print("\nOne 1024 px tile with its halo, decoded with zero padding inside the halo (what tiles "
              "do) and wrapping around (what a whole canvas needs: each convolution's edge rows and "
              "columns recomputed from wrapped strips), in alternating pairs:\n")
        r = halo_padding_gain(args.preset, args.precision)
        print(f"zero padding {r['zeros']:.3f} s (median); wrap-around / zero padding over {r['pairs']} "
              f"pairs: median {r['median']:.2f}x (range {r['lo']:.2f}-{r['hi']:.2f}x)")


def halo_padding_gain(preset: str, precision: str, pairs: int = 8) -> dict:
    """Seconds for one haloed 1024 px tile, zero padding then wrapping around, in
    ``pairs`` alternating pairs; the ratio of each pair (this host drifts between pairs)."""
    import torch

    from engine.synth import Synthesizer

    s = Synthesizer.load(preset, precision=precision)
    side = 1024 + 2 * s.generator.tile_halo
    x = torch.rand(1, 3, side, side)
    s.decode(x, window=True)
    s.decode(x, window=False)
    ratios, zeros = [], []
    for _ in range(pairs):
        t0 = time.perf_counter()
        s.decode(x, window=True)
        t1 = time.perf_counter()
        s.decode(x, window=False)
        t2 = time.perf_counter()
        zeros.append(t1 - t0)
        ratios.append((t2 - t1) / (t1 - t0))
    return {"zeros": statistics.median(zeros), "median": statistics.median(ratios),
            "lo": min(ratios), "hi": max(ratios), "pairs": pairs}


if __name__ == "__main__":
    main()
