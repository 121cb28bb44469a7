"""How long the add-on's live preview takes, from a change in the panel to the preview's
pixels ready for Blender, against a real ``mgan engine`` process.

The add-on's own preview machinery (addon/live_preview.py, loaded without bpy) is stepped
the way Blender's timer steps it (every BUSY_TICK while a reply is awaited, every IDLE_TICK
otherwise), and the "user" changes the settings at their own moments, between ticks:

- one change at a time (seed, noise scale, size, preset), each after the last preview
  came and a random pause, so a change falls anywhere between two ticks;
- bursts: several changes closer together than a preview takes (a slider dragged), where
  each change cancels the request in flight; latency is from the burst's last change.

"Ready" is after the conversion to Blender's pixel layout (pixels.engine_to_blender), what
the add-on does before ``Image.pixels.foreach_set``. A stale preview shown (a request that
was not the latest when its pixels were ready) is counted; it must be 0.

    python -m bench.preview_latency [--preset stone] [--other bricks] [--changes 16] [--bursts 8]
"""
from __future__ import annotations

import argparse
import importlib
import os
import random
import statistics
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def addon_modules(*names: str) -> tuple:
    """Bpy-free modules of addon/, as a package whose __init__ (Blender registration) is skipped."""
    package = "mgan_addon_core"
    if package not in sys.modules:
        pkg = types.ModuleType(package)
        pkg.__path__ = [str(ROOT / "addon")]
        sys.modules[package] = pkg
    return tuple(importlib.import_module(f"{package}.{name}") for name in names)


live, jobs, connection, pixels = addon_modules("live_preview", "jobs", "connection", "pixels")


@dataclass
class Settings:
    """The panel's settings that the preview follows."""
    preset: str
    width: int = 1024
    height: int = 1024
    seed: int = 0
    noise_scale: float = 0.0
    tileable: bool = True

    def request(self):
        return live.preview_request(self.preset, self.width, self.height, self.seed, self.noise_scale,
                                    self.tileable, "NONE")


@dataclass
class Row:
    latencies: list[float] = field(default_factory=list)
    engine_seconds: list[float] = field(default_factory=list)
    sent: int = 0
    cancelled: int = 0
    stale: int = 0


class Panel:
    """The add-on's timer loop with a user who changes the settings at given moments."""

    def __init__(self, endpoint: str, settings: Settings):
        self.link = connection.Link()
        self.settings = settings
        self.machine = live.LivePreview(lambda request: jobs.EngineJob(
            self.link, endpoint, "synthesize", request.fields(), hello_timeout=30.0, timeout=120.0).start())

    def run(self, changes: list[tuple[float, dict]], limit: float = 120.0):
        """Apply ``changes`` ((seconds from now, settings)) at their moments, ticking like the
        timer, until the last change's preview is ready. Returns (latency from the last
        change, engine seconds, previews shown that were stale when they were ready)."""
        t0 = time.monotonic()
        pending = [(t0 + at, change) for at, change in changes]
        last_change_at, stale = None, 0
        while time.monotonic() - t0 < limit:
            now = time.monotonic()
            while pending and pending[0][0] <= now:  # the user acted since the last tick
                at, change = pending.pop(0)
                for key, value in change.items():
                    setattr(self.settings, key, value)
                last_change_at = at
            self.machine.want(self.settings.request())
            landed = self.machine.step()
            if landed is not None:
                pixels.engine_to_blender(landed.rgb, linear=False)  # what precedes foreach_set
                ready = time.monotonic()
                if landed.request != self.settings.request():
                    stale += 1
                elif not pending:
                    return ready - last_change_at, landed.seconds, stale
            time.sleep(live.BUSY_TICK if self.machine.busy else live.IDLE_TICK)
        raise SystemExit(f"no preview within {limit} s (engine error: {self.machine.error or 'none'})")

    def measure(self, row: Row, changes: list[tuple[float, dict]]) -> None:
        sent, cancelled = self.machine.sent, self.machine.cancelled
        latency, seconds, stale = self.run(changes)
        row.latencies.append(latency)
        row.engine_seconds.append(seconds)
        row.sent += self.machine.sent - sent
        row.cancelled += self.machine.cancelled - cancelled
        row.stale += stale


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="stone")
    ap.add_argument("--other", default="bricks", help="the preset switched to and from")
    ap.add_argument("--changes", type=int, default=16, help="single changes of each kind")
    ap.add_argument("--bursts", type=int, default=8)
    ap.add_argument("--burst-size", type=int, default=5)
    ap.add_argument("--burst-gap", type=float, default=0.08, help="seconds between a burst's changes")
    ap.add_argument("--bind", default="tcp://127.0.0.1:*")
    args = ap.parse_args()

    from bench.engine_bench import start_engine
    from bench.machine import describe

    rng = random.Random(0)

    def pause() -> float:  # the user's pause before a change: anywhere between two ticks
        return rng.uniform(0.05, 0.4)

    rows: dict[str, Row] = {}
    with tempfile.TemporaryDirectory() as home:
        os.environ["MGAN_HOME"] = home  # the engine's data folder: nothing of the user's touched
        proc, endpoint = start_engine(Path(home) / "engine.log", args.bind)
        endpoint = endpoint.replace("tcp://0.0.0.0:", "tcp://127.0.0.1:")
        panel = Panel(endpoint, Settings(args.preset))
        try:
            with connection.EngineClient(endpoint) as client:
                hello = client.hello(timeout=30)
            panel.run([(0.0, {"seed": 10_000})])  # warm-up: the preset loads, the engine's kernels warm
            kinds = {
                "seed": lambda i: {"seed": i + 1},
                "noise scale": lambda i: {"noise_scale": (16.0, 24.0, 32.0, 48.0, 64.0, 0.0)[i % 6]},
                "size (aspect)": lambda i: dict(zip(("width", "height"), ((2048, 1024), (1024, 2048),
                                                                          (4096, 1024), (1024, 1024))[i % 4])),
            }
            for kind, change in kinds.items():
                row = rows.setdefault(f"{kind}, one change", Row())
                for i in range(args.changes):
                    panel.measure(row, [(pause(), change(i))])
            panel.measure(rows.setdefault(f"preset, first use of '{args.other}'", Row()),
                          [(pause(), {"preset": args.other})])
            row = rows.setdefault(f"preset, '{args.preset}' <-> '{args.other}' (both loaded)", Row())
            for i in range(args.changes):
                panel.measure(row, [(pause(), {"preset": args.preset if i % 2 == 0 else args.other})])
            panel.run([(0.0, {"preset": args.preset})])
            row = rows.setdefault(f"seed, burst of {args.burst_size} changes {args.burst_gap * 1000:.0f} ms apart",
                                  Row())
            seed = 1000
            for _ in range(args.bursts):
                start = pause()
                burst = []
                for k in range(args.burst_size):
                    seed += 1
                    burst.append((start + k * args.burst_gap, {"seed": seed}))
                panel.measure(row, burst)
        finally:
            panel.link.close()
            proc.terminate()
            try:
                proc.wait(60)
            finally:
                if proc.poll() is None:
                    proc.kill()

    print(describe())
    threads = os.environ.get("OMP_NUM_THREADS")
    print(f"engine {hello['engine']['version']} on {hello['device']}, loopback TCP; engine threads: "
          f"{'OMP_NUM_THREADS=' + threads if threads else 'torch default'}; timer ticks "
          f"{live.BUSY_TICK * 1000:.0f} ms busy / {live.IDLE_TICK * 1000:.0f} ms idle\n")
    print(f"Live preview, {live.PREVIEW_SIDE} px on the longer side, preset '{args.preset}': seconds from a "
          f"change to the preview's pixels ready for Blender\n")
    print("| change | n | median s | p90 s | max s | engine s (median) | sent | cancelled | stale shown |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        lat = row.latencies
        print(f"| {name} | {len(lat)} | {statistics.median(lat):.3f} | {percentile(lat, 0.9):.3f} | "
              f"{max(lat):.3f} | {statistics.median(row.engine_seconds):.3f} | {row.sent} | {row.cancelled} | "
              f"{row.stale} |")
    if any(row.stale for row in rows.values()):
        raise SystemExit("a stale preview was shown")


if __name__ == "__main__":
    main()
