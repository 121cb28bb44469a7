"""Real engine processes for the engine tests: `python -m engine.cli engine` in a home of
its own (MGAN_HOME, MGAN_PRESETS) holding the tiny preset, and the same pipeline in-process
to compare answers with."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.conftest import ROOT, make_tiny_preset

STARTUP_TIMEOUT = 90.0  # importing torch on a loaded 2-core machine


def engine_home(folder: Path) -> Path:
    """A fresh engine home with the tiny preset in its preset folder."""
    make_tiny_preset(folder / "presets", name="tiny")
    return folder


class EngineProcess:
    """One `mgan engine` process; its output goes to a log file (a pipe could fill up)."""

    def __init__(self, home: Path, bind: str, *args: str):
        self.home, self.bind, self.args = home, bind, args
        self.log_path = home / f"engine-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen | None = None
        self.endpoint: str | None = None

    def env(self) -> dict:
        return dict(os.environ, MGAN_HOME=str(self.home), MGAN_PRESETS=str(self.home / "presets"))

    def start(self) -> "EngineProcess":
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "engine", "--bind", self.bind,
                                          *self.args], cwd=ROOT, env=self.env(), stdout=log,
                                         stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while time.monotonic() - t0 < STARTUP_TIMEOUT:
            found = re.search(r"listening on (\S+)", self.log())
            if found:
                self.endpoint = found.group(1)
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"the engine exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"the engine did not start within {STARTUP_TIMEOUT} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def connect_address(self) -> str:
        """Where a client connects: a wildcard bind is reached over loopback."""
        return self.endpoint.replace("tcp://0.0.0.0:", "tcp://127.0.0.1:")

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as a service manager would; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"the engine ignored SIGTERM for {timeout} s:\n{self.log()}") from None
        return self.proc.returncode


class InProcess:
    """The engine's pipeline in this process, for byte-for-byte comparisons."""

    def __init__(self, home: Path):
        from engine.presets import open_preset

        self.preset = open_preset(home / "presets" / "tiny")
        self._synths = {}

    def synth(self, precision: str):
        from engine.synth import Synthesizer

        if precision not in self._synths:
            self._synths[precision] = Synthesizer.load(self.preset, device="cpu", precision=precision)
        return self._synths[precision]

    def synthesize(self, width: int, height: int, seed: int, dtype: str = "uint8", precision: str = "auto",
                   period: tuple[int, int] | None = None) -> np.ndarray:
        from engine.synth import to_uint8

        image = self.synth(precision).synthesize((height, width), seed=seed,
                                                 period=period[::-1] if period else None)
        return to_uint8(image) if dtype == "uint8" else image

    def stylize(self, image: np.ndarray, dtype: str = "uint8", precision: str = "auto") -> np.ndarray:
        from engine.synth import stylize_image, to_uint8

        x = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image
        out = stylize_image(self.synth(precision), x)
        return to_uint8(out) if dtype == "uint8" else out
