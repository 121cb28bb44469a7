"""Shared fixtures: an isolated engine home, a tiny preset made without training, the built
add-on zip and the real Blenders it is tested in."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import torch

from tests.blender_proc import BLENDERS, build_addon_zip, find_blender

ROOT = Path(__file__).resolve().parent.parent
SKIMAGE_DATA = None


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Each test gets its own MGAN_HOME (runs, user presets); the VGG cache is shared."""
    home = tmp_path / "mgan-home"
    monkeypatch.setenv("MGAN_HOME", str(home))
    monkeypatch.delenv("MGAN_PRESETS", raising=False)
    monkeypatch.delenv("MGAN_VGG19_WEIGHTS", raising=False)
    return home


def make_tiny_preset(folder: Path, name: str = "tiny", seed: int = 0) -> Path:
    """A small random generator saved as a real preset: enough for every property of the
    pipeline that does not depend on training (wrap-around, tiling, sizes, determinism)."""
    from engine.generator import Generator, GeneratorConfig
    from engine.noise import NoiseParams
    from engine.presets import write_preset

    torch.manual_seed(seed)
    g = Generator(GeneratorConfig(arch="upsample", widths=(32, 16, 16)))
    g.set_feature_stats(torch.full((512,), 100.0), torch.full((512,), 200.0))
    g.init_output(torch.tensor([0.5, 0.4, 0.3]), gain=1.0)
    meta = {"name": name, "kind": "texture", "noise": NoiseParams().to_dict(),
            "training": {}, "exemplar": {"source": "none (test)", "licence": "n/a"}}
    return write_preset(folder / name, meta, g)


@pytest.fixture
def tiny_preset(tmp_path):
    from engine.presets import open_preset

    return open_preset(make_tiny_preset(tmp_path / "presets"))


def skimage_image(name: str) -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data" / name


def run_cli(*args, env=None, **kw):
    import subprocess

    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, **kw)


def start_cli(home: Path, *args):
    """The ``mgan`` command in the background with its own MGAN_HOME (to be killed)."""
    import subprocess

    env = dict(os.environ, MGAN_HOME=str(home))
    # Ctrl-C as a user's terminal delivers it, also where the suite itself runs as a
    # background job: a shell without job control starts those with SIGINT ignored, and
    # the child would inherit that.
    return subprocess.Popen([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_until(cond, proc, timeout: float = 300, what: str = "the condition"):
    """Poll ``cond()`` while ``proc`` runs; a process that exits first or a timeout fails."""
    import time

    t0 = time.monotonic()
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"exited before {what}: {proc.communicate()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.1)


def shifted_frames(folder: Path, n: int, h: int, w: int, shift: int, name: str = "frame_{:04d}.png") -> Path:
    """``n`` frames of a photo (Chelsea, CC0) panning ``shift`` px a frame, as PNG files."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    src = np.asarray(Image.open(skimage_image("chelsea.png")).convert("RGB"))[:h, :w]
    for i in range(n):
        Image.fromarray(np.roll(src, shift * i, axis=1)).save(folder / name.format(i + 1))
    return folder


@pytest.fixture
def tiny_vgg_image_pair():
    """The real VGG19 encoder and a 96x96 photo crop (scikit-image's CC0 gravel, as RGB)."""
    import numpy as np
    import torch
    from PIL import Image

    from engine.vgg import get_vgg19

    with Image.open(skimage_image("gravel.png")) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.float32)[:96, :96] / 255.0
    return get_vgg19("relu4_1"), torch.from_numpy(a).permute(2, 0, 1)[None].contiguous()


# The built add-on zip and the real Blenders it is tested in (tests/blender_proc.py).
@pytest.fixture(scope="module")
def addon_zip(tmp_path_factory):
    return build_addon_zip(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module", params=sorted(BLENDERS))
def blender(request):
    return find_blender(request.param)

