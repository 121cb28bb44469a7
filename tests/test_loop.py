"""training/loop.py: a collapsed run (G's output saturated, so no gradient reaches G) goes
back to its last state from before the collapse with G's learning rate halved, says so,
records it in the preset and its checkpoint, and stops clearly when that does not help."""
import json

import pytest
import torch

from tests.conftest import skimage_image

pytestmark = pytest.mark.slow


def _trainer(tmp_path, **config):
    from training.loop import Trainer
    from training.texture import TextureTask, TrainConfig

    cfg = TrainConfig(exemplar_size=64, crop=32, batch=1, balance_every=10, checkpoint_every=1000,
                      preview_every=1000, **config)
    logs = []
    t = Trainer(TextureTask(skimage_image("gravel.png"), cfg), "tiny", tmp_path / "run", preset_dir=tmp_path,
                show_progress=False, log=logs.append)
    return t, logs


def test_a_collapse_goes_back_before_it_with_half_the_learning_rate(tmp_path):
    t, logs = _trainer(tmp_path, steps=60)
    plain = type(t.task).generate

    def generate(G, batch):  # steps 25..44 come out saturated, the first time only
        img = plain(t.task, G, batch)
        return img * 0 + 1 if 25 <= t.step < 45 and t.recoveries == 0 else img

    t.task.generate = generate
    folder = t.run()
    # snapshots at steps 0, 10 and 20 (none while saturated); the streak began at step 25
    assert [m for m in logs if "collapsed" in m] == [
        "training collapsed at step 45: every pixel G made was 0 or 1 for 20 steps, so it no longer learns; "
        f"back to step 20 with G's learning rate halved ({t.config.lr_g / 2:g})"]
    assert t.step == 60 and t.recoveries == 1
    assert [g["lr"] for g in t.opt_g.param_groups] == [pytest.approx(t.config.lr_g / 2)]
    training = json.loads((folder / "preset.json").read_text())["training"]
    assert training["steps_done"] == 60 and training["collapses"] == 1
    assert training["lr_g_final"] == pytest.approx(t.config.lr_g / 2)
    # a resumed run keeps the lowered rate
    again, _ = _trainer(tmp_path, steps=60)
    again.prepare()
    again.load_checkpoint()
    assert again.recoveries == 1 and again.lr_scale == 0.5
    assert [g["lr"] for g in again.opt_g.param_groups] == [pytest.approx(t.config.lr_g / 2)]


def test_the_state_gone_back_to_is_the_snapshot_not_what_followed(tmp_path):
    t, _ = _trainer(tmp_path, steps=40)
    t.prepare()
    for _ in range(10):
        t.train_step()
    t.snapshots = [t._snapshot()]
    saved = {k: v.clone() for k, v in t.G.state_dict().items()}
    for _ in range(5):
        t.train_step()
    assert any(not torch.equal(v, t.G.state_dict()[k]) for k, v in saved.items())
    t.saturated = 3  # as if steps 12..14 had been saturated for COLLAPSE_STEPS
    t._recover()
    assert t.step == 10 and t.saturated == 0 and t.lr_scale == 0.5
    assert all(torch.equal(v, t.G.state_dict()[k]) for k, v in saved.items())
    t.train_step()  # the optimiser's copy is its own: the snapshot stays as taken
    assert all(torch.equal(v, t.snapshots[0]["G"][k]) for k, v in saved.items())
