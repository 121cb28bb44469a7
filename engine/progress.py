"""A small terminal progress bar with rate, ETA and live figures (no dependency)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, desc: str = "", start: int = 0, stream=None, enabled: bool = True):
        self.total, self.desc, self.n = total, desc, start
        self.start_n, self.t0 = start, time.monotonic()
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self._last = 0.0
        self._drawn = False

    def update(self, n: int, **figures: float) -> None:
        self.n = n
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.5 and n < self.total):
            return
        self._last = now
        self._drawn = True
        done = n - self.start_n
        rate = done / max(now - self.t0, 1e-9)
        eta = (self.total - n) / rate if rate > 0 else float("inf")
        frac = n / self.total if self.total else 1.0
        bar = "#" * int(24 * frac) + "-" * (24 - int(24 * frac))
        figs = " ".join(f"{k}={v:.4g}" for k, v in figures.items())
        self.stream.write(f"\r{self.desc} [{bar}] {n}/{self.total} {rate:.2f} it/s "
                          f"ETA {_fmt(eta)} {figs}   ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def _fmt(seconds: float) -> str:
    if seconds == float("inf"):
        return "--:--"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
