"""What the engine's socket costs: a synthesis over ZeroMQ against the same synthesis
in-process, and the round-trip latency of ``hello``, measured in one run.

The engine runs as a real ``mgan engine`` process on loopback TCP (what Blender uses).
In-process and socket runs alternate, so a machine whose load drifts during the run
shifts both columns alike, and this script re-executes itself with the glibc malloc
tunables the ``mgan`` CLI (and so the engine) runs with: without them the in-process side
pays for the allocator, not for the pipeline.

    python bench/engine_bench.py [--preset bricks] [--size 512] [--repeats 7] [--pings 300]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_engine(log_path: Path, bind: str) -> tuple[subprocess.Popen, str]:
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "engine", "--bind", bind], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        found = re.search(r"listening on (\S+)", log_path.read_text(errors="replace"))
        if found:
            return proc, found.group(1)
        if proc.poll() is not None:
            raise SystemExit(f"the engine exited:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the engine did not start within 120 s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="bricks")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--pings", type=int, default=300)
    ap.add_argument("--bind", default="tcp://127.0.0.1:*")
    args = ap.parse_args()
    from engine.cli import GLIBC_TUNABLES

    if sys.platform == "linux" and os.environ.get("GLIBC_TUNABLES") != GLIBC_TUNABLES:
        os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]],
                  dict(os.environ, GLIBC_TUNABLES=GLIBC_TUNABLES))

    import torch

    from engine.client import EngineClient
    from engine.synth import Synthesizer, to_uint8

    local = Synthesizer.load(args.preset, device="cpu")
    side = args.size
    with tempfile.TemporaryDirectory() as tmp:
        proc, endpoint = start_engine(Path(tmp) / "engine.log", args.bind)
        try:
            with EngineClient(endpoint, timeout=30) as client:
                hello = client.hello()
                # Warm-up both: weights, kernels, allocator, the engine's synthesizer cache.
                to_uint8(local.synthesize((side, side), seed=0))
                client.synthesize(args.preset, side, side, seed=0)
                in_process, socket, worker = [], [], []
                for seed in range(1, args.repeats + 1):
                    t0 = time.perf_counter()
                    expected = to_uint8(local.synthesize((side, side), seed=seed))
                    in_process.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    reply = client.call("synthesize", {"preset": args.preset, "width": side, "height": side,
                                                       "seed": seed})
                    socket.append(time.perf_counter() - t0)
                    worker.append(reply.header["seconds"])  # the engine's own timing of the work
                    if reply.payloads[0].tobytes() != expected.tobytes():
                        raise SystemExit(f"seed {seed}: the engine's texture differs from the in-process one")
                pings = []
                for _ in range(args.pings):
                    t0 = time.perf_counter()
                    client.hello()
                    pings.append(time.perf_counter() - t0)
                client.shutdown()
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()

    nice = os.nice(0)
    print(f"engine {hello['engine']['version']} (protocol {hello['protocol_version']}) on {hello['device']}, "
          f"{endpoint.split(':')[0]} loopback; torch {torch.__version__}, {torch.get_num_threads()} threads"
          f"{f', nice {nice}' if nice else ''}\n")
    ins, sock = statistics.median(in_process), statistics.median(socket)
    print(f"Synthesis {side}x{side} uint8, preset {args.preset}, median of {args.repeats} "
          f"(each socket result checked byte for byte against in-process):\n")
    print("| path | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    print(f"| in-process | {ins:.3f} | {min(in_process):.3f} | {max(in_process):.3f} |")
    print(f"| over the socket | {sock:.3f} | {min(socket):.3f} | {max(socket):.3f} |")
    print(f"| engine's worker (inside the socket run) | {statistics.median(worker):.3f} | {min(worker):.3f} | "
          f"{max(worker):.3f} |")
    transport = statistics.median(s - w for s, w in zip(socket, worker))
    print(f"\nsocket overhead: {sock - ins:+.3f} s ({(sock - ins) / ins:+.1%}) for a "
          f"{side * side * 3 / 2**20:.2f} MiB reply; outside the worker (validation, queue, "
          f"transfer, decoding): {transport * 1e3:.1f} ms\n")
    print(f"hello round trip, {args.pings} calls:\n")
    print("| median ms | p95 ms | max ms |")
    print("|---:|---:|---:|")
    print(f"| {statistics.median(pings) * 1e3:.3f} | {percentile(pings, 0.95) * 1e3:.3f} | {max(pings) * 1e3:.3f} |")


if __name__ == "__main__":
    main()
