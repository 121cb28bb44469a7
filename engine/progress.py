"""A small terminal progress bar with rate, ETA and live figures (no dependency)."""
from __future__ import annotations

import sys
import time


class Progress:
    """``total`` units of work from ``start``. ``timed``: the units are seconds of a time
    budget, and the bar shows time used / budget and the budget left as the ETA."""

    def __init__(self, total: float, desc: str = "", start: float = 0, stream=None, enabled: bool = True,
                 timed: bool = False):
        self.total, self.desc, self.n, self.timed = total, desc, start, timed
        self.start_n, self.t0 = start, time.monotonic()
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self._last = 0.0
        self._drawn = False

    def update(self, n: float, **figures: float) -> None:
        self.n = n
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.5 and n < self.total):
            return
        self._last = now
        self._drawn = True
        frac = min(n / self.total, 1.0) if self.total else 1.0
        bar = "#" * int(24 * frac) + "-" * (24 - int(24 * frac))
        figs = " ".join(f"{k}={v}" if isinstance(v, int) else f"{k}={v:.4g}" for k, v in figures.items())
        if self.timed:
            count = f"{_fmt(n)}/{_fmt(self.total)}"
            eta = max(self.total - n, 0.0)
        else:
            rate = (n - self.start_n) / max(now - self.t0, 1e-9)
            count = f"{n}/{self.total} {rate:.2f} it/s"
            eta = (self.total - n) / rate if rate > 0 else float("inf")
        self.stream.write(f"\r{self.desc} [{bar}] {count} ETA {_fmt(eta)} {figs}   ")
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
