"""Start and stop a local engine process for the user (`python -m engine.cli engine`)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

_process: subprocess.Popen | None = None


def start(python: str, endpoint: str, project: str = "") -> subprocess.Popen:
    """Spawn the engine unless this add-on already did; its output goes to a log file in
    the temp folder (a pipe nobody reads could fill and block it)."""
    global _process
    if _process is not None and _process.poll() is None:
        return _process
    if not python:
        raise RuntimeError("set the Python executable of the engine in the add-on preferences")
    env = dict(os.environ)
    cwd = None
    if project:
        cwd = str(Path(project))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [cwd, env.get("PYTHONPATH", "")]))
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / "mgan-engine.log", "ab")
    try:
        _process = subprocess.Popen([python, "-m", "engine.cli", "engine", "--bind", endpoint],
                                    cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()
    return _process


def running() -> bool:
    return _process is not None and _process.poll() is None


def stop(timeout: float = 10.0) -> None:
    """SIGTERM (the engine checkpoints training and exits), then SIGKILL if it lingers."""
    global _process
    if _process is None:
        return
    if _process.poll() is None:
        _process.terminate()
        try:
            _process.wait(timeout)
        except subprocess.TimeoutExpired:
            _process.kill()
            _process.wait()
    _process = None
