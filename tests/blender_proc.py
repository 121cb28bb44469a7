"""Real headless Blenders for the add-on tests: which ones, where their Pythons are, and the
extension zip that `make addon` builds.

The add-on must work in every Blender from 4.2 LTS (4.2.13 on) to 5.3, which run two
Pythons: 3.11 (4.2 to 5.0) and 3.13 (5.1 to 5.3). The tests drive one Blender of each: bpy 5.0.1 in the
project's .venv (Python 3.11, beside torch and the engine) and bpy 5.3.0 in
.venv-blender313 (Python 3.13, bpy and numpy only), both made by `make test-setup`.

A Blender that is missing fails its tests, with the command that installs it: in CI a
missing one must never pass as a skip. Locally, MGAN_ALLOW_MISSING_BLENDER=1 turns that
into a skip (for a machine without Python 3.13, say); CI=true ignores it."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Blender:
    version: str  # Blender's major.minor
    bpy: str  # the pinned bpy release
    python: str  # the interpreter whose bpy module is this Blender
    python_version: str  # its major.minor
    setup: str  # the command that installs it

    def __str__(self) -> str:
        return f"Blender {self.version}"


BLENDERS = {
    "5.0": Blender("5.0", "5.0.1", sys.executable, "3.11", "make test-setup"),  # pyproject's test extra
    "5.3": Blender("5.3", "5.3.0", str(ROOT / ".venv-blender313" / "bin" / "python"), "3.13",
                   "make test-setup-blender"),  # the Makefile's BPY53_VERSION
}

# The Python of each Blender release that the manifest's blender_version_min (4.2.13) admits.
BLENDER_PYTHONS = {"4.2": "3.11", "4.3": "3.11", "4.4": "3.11", "4.5": "3.11", "5.0": "3.11",
                   "5.1": "3.13", "5.2": "3.13", "5.3": "3.13"}


def _bpy_version(python: str) -> str | None:
    """bpy's installed version for ``python``, read from its metadata (Blender is not loaded)."""
    if not Path(python).exists():
        return None
    proc = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('bpy'))"],
                          capture_output=True, text=True, timeout=60)
    return proc.stdout.strip() if proc.returncode == 0 else None


def find_blender(version: str) -> Blender:
    """The Blender ``version`` if installed; else the test fails (or skips, see the module)."""
    blender = BLENDERS[version]
    found = _bpy_version(blender.python)
    if found == blender.bpy:
        return blender
    problem = (f"{blender} (bpy=={blender.bpy} on Python {blender.python_version}) is not installed for "
               f"{blender.python}{f' (it has bpy {found})' if found else ''}; `{blender.setup}` installs it")
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    if os.environ.get("MGAN_ALLOW_MISSING_BLENDER") == "1" and not in_ci:
        pytest.skip(problem + " (skipped: MGAN_ALLOW_MISSING_BLENDER=1)")
    pytest.fail(problem + " (set MGAN_ALLOW_MISSING_BLENDER=1 to skip it locally; never in CI)", pytrace=False)


def build_addon_module():
    """tools/build_addon.py as a module."""
    spec = importlib.util.spec_from_file_location("build_addon", ROOT / "tools" / "build_addon.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_addon_zip(out_dir: Path) -> Path:
    """The extension zip as `make addon` builds it (Blender 5.0's `extension build`)."""
    blender = find_blender("5.0")
    return build_addon_module().build(out_dir, ROOT / "build" / "wheels", blender.python)


# ---- running a script in one of them --------------------------------------------------------
MODULE = "bl_ext.user_default.mgan_textures"  # the add-on's module once installed as an extension

PRELUDE = """
import json, sys, time
import bpy, addon_utils
import numpy as np
MODULE = "bl_ext.user_default.mgan_textures"
args = json.loads(sys.argv[1])
def install():
    result = bpy.ops.extensions.package_install_files(filepath=args["zip"], repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}, result
    return sys.modules[MODULE]
def emit(**found):
    print("RESULT " + json.dumps(found))
class Layout:  # stands in for UILayout (panels cannot draw without a window): records each call
    def __init__(self, icons=False):
        self.calls, self.icons = [], icons
    def __getattr__(self, name):
        def call(*a, **kw):
            entry = [name, [x for x in a if isinstance(x, str)], kw.get("text")]
            self.calls.append(entry + [kw.get("icon")] if self.icons else entry)
            return (self, self) if name == "panel" else self  # layout.panel: (header, body)
        return call
def stylising_scene():
    # the add-on installed, linked to the engine at args["endpoint"], and the scene's
    # rendered frames going through the preset "tiny"
    install()
    bpy.context.preferences.addons[MODULE].preferences.endpoint = args["endpoint"]
    assert bpy.ops.mgan.refresh() == {"FINISHED"}
    scene = bpy.context.scene
    scene.mgan.stylise_render, scene.mgan.stylise_preset = True, "tiny"
    return scene
def small_animation(scene, frames):
    # Cycles at 4 samples, 128x96 RGB PNG frames 1..3 into the folder `frames`, of the
    # default cube moving, so that the frames differ
    scene.render.engine = "CYCLES"
    scene.cycles.samples, scene.cycles.device = 4, "CPU"
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 128, 96, 100
    scene.render.image_settings.file_format, scene.render.image_settings.color_mode = "PNG", "RGB"
    scene.render.filepath = frames + "/frame_"
    scene.frame_start, scene.frame_end = 1, 3
    cube = bpy.data.objects["Cube"]
    for frame, x in ((1, -1.5), (3, 1.5)):
        cube.location.x = x
        cube.keyframe_insert("location", frame=frame)
"""


def blender_env(tmp_path, env: dict | None = None) -> dict:
    env = dict(os.environ, **(env or {}), BLENDER_USER_RESOURCES=str(tmp_path / "blender-user"))
    env.pop("PYTHONPATH", None)  # the add-on must work from its zip alone, not from this checkout
    return env


def run_blender(blender, tmp_path, script: str, timeout: float = 300, env: dict | None = None, **args) -> dict:
    """Run ``script`` (after PRELUDE) in a fresh headless ``blender``; its RESULT line as a dict."""
    path = tmp_path / f"blender_{time.monotonic_ns()}.py"
    path.write_text(PRELUDE + textwrap.dedent(script))
    as_json = {k: v if isinstance(v, (int, float, bool)) else str(v) for k, v in args.items()}
    proc = subprocess.run([blender.python, str(path), json.dumps(as_json)],
                          cwd=tmp_path, env=blender_env(tmp_path, env), capture_output=True, text=True,
                          timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"blender script failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])
