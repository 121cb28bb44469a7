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

    cfg = TrainConfig(**{"exemplar_size": 64, "crop": 32, "batch": 1, "balance_every": 10, "checkpoint_every": 1000,
                         "preview_every": 1000, "lr_decay": 0.0, **config})  # (constant rates: the halving shows)
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
        "training collapsed at step 45: G's output was saturated (0 or 255) for 20 steps, so it no longer learns; "
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


def test_a_collapse_that_comes_back_at_once_goes_back_one_state_further(tmp_path):
    t, logs = _trainer(tmp_path, steps=60)
    plain = type(t.task).generate

    def generate(G, batch):  # saturated from step 25, and again from the step gone back to
        img = plain(t.task, G, batch)
        doomed = (t.recoveries == 0 and t.step >= 25) or (t.recoveries == 1 and t.step >= 20)
        return img * 0 + 1 if doomed else img

    t.task.generate = generate
    t.run()
    # without going further back, the state at step 20 would be tried again and again
    assert [m.split("; ")[1] for m in logs if "collapsed" in m] == [
        f"back to step 20 with G's learning rate halved ({t.config.lr_g / 2:g})",
        f"back to step 10 with G's learning rate halved ({t.config.lr_g / 4:g})"]
    assert t.step == 60 and t.recoveries == 2


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


@pytest.mark.parametrize("track", [True, False])
def test_the_hinge_weight_is_rebalanced_often_while_D_learns_fastest(tmp_path, track):
    """D learns fastest in the hinge term's first steps: with ``track_balance`` the weight is
    re-set at steps 1, 2, 4, 8, ... and every 10th of its first 2 x balance_every steps;
    without, every balance_every steps only (the recipe before)."""
    t, _ = _trainer(tmp_path, steps=25, track_balance=track)
    t.prepare()
    at, plain = [], t._rebalance
    t._rebalance = lambda batch: (at.append(t.step), plain(batch))
    for _ in range(25):
        t.train_step()
    assert at == ([0, 1, 2, 4, 8, 10, 16, 20] if track else [0, 10, 20])


def test_the_rates_decay_linearly_over_the_budget_s_last_share(tmp_path):
    """``lr_decay``: G's and D's learning rates stay until the budget's last ``lr_decay``
    share, then fall linearly to LR_FLOOR of theirs (G's own also halved per collapse)."""
    from training.loop import LR_FLOOR

    t, _ = _trainer(tmp_path, steps=20, lr_decay=0.5)
    t.prepare()
    rates = []
    for _ in range(20):
        t.train_step()
        rates.append((t.opt_g.param_groups[0]["lr"] / t.config.lr_g, t.opt_d.param_groups[0]["lr"] / t.config.lr_d))
    expect = [1.0] * 11 + [1.0 - (1.0 - LR_FLOOR) * (k - 10) / 10 for k in range(11, 20)]  # (set before each step)
    assert [g for g, _ in rates] == pytest.approx(expect) and [d for _, d in rates] == pytest.approx(expect)
    t.step, t.recoveries = 20, 1
    assert t.decay_scale() == pytest.approx(LR_FLOOR)
    t._set_rates()
    assert t.opt_g.param_groups[0]["lr"] == pytest.approx(t.config.lr_g * 0.5 * LR_FLOOR)
    t.config.steps = None  # a time budget: by training time
    t.elapsed = 0.8 * t.budget_seconds
    assert t.decay_scale() == pytest.approx(1.0 - (1.0 - LR_FLOOR) * 0.6)


@pytest.mark.parametrize("track", [True, False])
def test_a_tracked_hinge_weight_is_set_to_its_target_not_smoothed(tmp_path, track):
    t, _ = _trainer(tmp_path, steps=5, track_balance=track)
    t.prepare()
    batch = t.task.sample_batch(0)
    weights = []
    for before in (0.0, 100.0):  # the same G, D and batch: the same target
        t.adv_weight = torch.tensor(before)
        torch.manual_seed(0)
        t._rebalance(batch)
        weights.append(float(t.adv_weight))
    target, after = weights
    assert 0 < target < 100
    assert after == pytest.approx(target if track else 0.7 * 100 + 0.3 * target, rel=1e-2)  # (bf16 sums vary)


def test_a_loss_that_is_not_finite_goes_back_before_it(tmp_path):
    """A NaN loss carries into G's and D's weights in its own step (and would export a black
    preset): the run goes back at once."""
    t, logs = _trainer(tmp_path, steps=40)
    plain = type(t.task).losses

    def losses(img, feats, batch, critic, penalties=True):
        main, adv = plain(t.task, img, feats, batch, critic, penalties)
        return (main * float("nan") if t.step == 25 and t.recoveries == 0 else main), adv

    t.task.losses = losses
    t.run()
    assert [m for m in logs if "collapsed" in m] == [
        "training collapsed at step 26: a loss was not a finite number, so G's and D's weights are lost; "
        f"back to step 20 with G's learning rate halved ({t.config.lr_g / 2:g})"]
    assert t.step == 40 and t.recoveries == 1
    assert all(bool(torch.isfinite(p).all()) for m in (t.G, t.G_out, t.D) for p in m.parameters())


def test_a_collapse_in_the_budget_s_last_steps_is_not_exported(tmp_path):
    """Saturated from step 33 of 40: too few steps for COLLAPSE_STEPS, but the run must not
    export it; it goes back and trains on to its count."""
    t, logs = _trainer(tmp_path, steps=40)
    plain = type(t.task).generate

    def generate(G, batch):
        img = plain(t.task, G, batch)
        return img * 0 if t.step >= 33 and t.recoveries == 0 else img

    t.task.generate = generate
    folder = t.run()
    assert [m for m in logs if "collapsed" in m] == [
        "training collapsed at step 40: G's output was saturated (0 or 255) for 7 steps, so it no longer learns; "
        f"back to step 30 with G's learning rate halved ({t.config.lr_g / 2:g})"]
    assert t.step == 40 and t.recoveries == 1 and t.saturated == 0
    assert json.loads((folder / "preset.json").read_text())["training"]["collapses"] == 1


def test_values_a_hair_inside_0_and_1_count_as_saturated(tmp_path):
    """A collapsed G's sigmoid rarely gives exactly 0 or 1; what 8 bits write as 0 or 255 is
    what the preset would show (a rug of saturated yellow and white went through so)."""
    from training.loop import saturated_share, saturation_limit

    t, logs = _trainer(tmp_path, steps=60)
    plain = type(t.task).generate

    def generate(G, batch):  # yellow and white, a hair inside the range, steps 25..44
        img = plain(t.task, G, batch)
        if 25 <= t.step < 45 and t.recoveries == 0:
            img = (img * 0 + 0.999).index_fill(1, torch.tensor([2]), 1e-3)
        return img

    t.task.generate = generate
    t.run()
    assert [m for m in logs if "collapsed" in m] == [
        "training collapsed at step 45: G's output was saturated (0 or 255) for 20 steps, so it no longer learns; "
        f"back to step 20 with G's learning rate halved ({t.config.lr_g / 2:g})"]
    # the limit: 75% of the values, or half of what a clipped photo leaves
    assert t.saturation_limit == 0.75 and t.task.saturated_share < 0.01
    assert saturated_share(torch.tensor([0.0, 0.001, 0.5, 0.999, 1.0])) == pytest.approx(0.8)
    assert saturation_limit(0.6) == pytest.approx(0.8)


def test_d_s_fine_head_learns_from_relu2_1_patches_and_resumes(tmp_path):
    """``d_fine``: D also scores relu2_1 windows of the photo against G's; its weights move,
    and a checkpoint carries them."""
    t, _ = _trainer(tmp_path, steps=6, d_fine=True, checkpoint_every=3)
    t.prepare()
    real = t.task.real_features(t.task.sample_batch(0))
    assert real["relu2_1"].shape[-2:] == (16, 16) and real["relu3_1"].shape[-2:] == (8, 8)   # a 32 px canvas
    before = [p.detach().clone() for p in t.D.fine.parameters()]
    t.run()
    assert any(not torch.equal(a, b) for a, b in zip(before, t.D.fine.parameters()))
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert any(k.startswith("fine.") for k in state["D"])
