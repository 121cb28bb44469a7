"""The texture losses on tiny inputs: sliced Wasserstein, the grid and mesh penalties."""
import math

import pytest
import torch

from training.losses import (BORDER_PX, DEEP_TAP, SW_TAPS, ExemplarStatistics, grid_loss, grid_peaks, mesh_loss, mesh_target,
                             sliced_wasserstein)


def _as_map(rows: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(h*w, C) rows -> (1, C, h, w) feature map."""
    return rows.T.reshape(1, rows.shape[1], h, w)


def test_zero_for_identical_sets_and_invariant_to_permutation():
    torch.manual_seed(0)
    rows = torch.randn(64, 8)
    assert float(sliced_wasserstein(_as_map(rows, 8, 8), rows)) < 1e-10
    shuffled = rows[torch.randperm(64)]
    assert float(sliced_wasserstein(_as_map(shuffled, 8, 8), rows)) < 1e-10
    assert float(sliced_wasserstein(_as_map(rows, 8, 8), shuffled)) < 1e-10
    # A different distribution is far: same mean and variance per channel, another shape.
    other = torch.sign(torch.randn(64, 8))
    assert float(sliced_wasserstein(_as_map(other, 8, 8), rows)) > 0.05


def test_unequal_sizes_compare_quantiles():
    torch.manual_seed(0)
    target = torch.randn(4096, 4)
    same_law = torch.randn(1, 4, 16, 16)
    shifted = same_law + 2.0
    near, far = (float(sliced_wasserstein(x, target)) for x in (same_law, shifted))
    assert near < 0.1 < far
    small_target = torch.randn(50, 4)  # fewer rows than the 256 generated positions
    assert float(sliced_wasserstein(same_law, small_target)) < 0.3



def test_pooled_the_batch_matches_as_a_whole_and_each_image_need_not():
    """Two canvases, one all of the target's first mode and one all of its second: per
    image each is far from the two-mode target, pooled the pair is exactly it. (A photo of
    regions gives crops of one region each; per image, G is pushed to mix all in every crop.)"""
    torch.manual_seed(0)
    a, b = torch.randn(64, 4) * 0.1 - 1.0, torch.randn(64, 4) * 0.1 + 1.0
    target = torch.cat([a, b])
    batch = torch.cat([_as_map(a, 8, 8), _as_map(b, 8, 8)])
    assert float(sliced_wasserstein(batch, target, max_points=64, pooled=True)) < 1e-10
    assert float(sliced_wasserstein(batch, target, max_points=64)) > 0.1
    mixed = torch.cat([_as_map(target[::2], 8, 8), _as_map(target[1::2], 8, 8)])
    assert float(sliced_wasserstein(mixed, target, max_points=64)) < 0.05   # each mixes both
    assert float(sliced_wasserstein(mixed, target, max_points=64, pooled=True)) < 1e-10

def test_falls_under_optimisation():
    torch.manual_seed(0)
    target = torch.rand(256, 3) ** 3          # a skewed law a Gram matrix would not pin down
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.05)
    first = float(sliced_wasserstein(x.detach(), target))
    for _ in range(200):
        opt.zero_grad()
        loss = sliced_wasserstein(x, target)
        loss.backward()
        opt.step()
    last = float(sliced_wasserstein(x.detach(), target))
    assert last < 0.05 * first
    # The whole law is matched, not only its mean and variance: the skew is there too.
    got = x.detach().permute(0, 2, 3, 1).reshape(-1, 3)
    skew = lambda a: float((((a - a.mean(0)) / a.std(0)) ** 3).mean())  # noqa: E731
    assert abs(skew(got) - skew(target)) < 0.3


def test_exemplar_statistics_scales_and_loss(tiny_vgg_image_pair):
    vgg, exemplar = tiny_vgg_image_pair
    stats = ExemplarStatistics([exemplar], vgg, scales=(1, 2, 4))
    # 96 px: 1/4 is 24 px, too small for VGG19's reach past the border ring: skipped.
    assert stats.scales == [1, 2]
    assert stats.usable_scales(64) == (1, 2)
    img = exemplar[..., 16:80, 16:80].clone().requires_grad_(True)
    feats = {s: vgg(torch.nn.functional.avg_pool2d(img, s) if s > 1 else img, ("relu1_1", "relu2_1", "relu3_1", "relu4_1"))
             for s in (1, 2)}
    loss = stats.loss(img, feats)
    loss.backward()
    assert torch.isfinite(loss) and img.grad.abs().sum() > 0
    assert 2 * BORDER_PX < exemplar.shape[-1]


def test_a_photo_of_32_to_39_px_keeps_features_inside_a_narrower_border(tiny_vgg_image_pair):
    """16 px off each side of a 32-39 px photo would leave no relu4_1 cell: 8 px are
    dropped there, and every tap and the pixels have targets at scale 1."""
    vgg, exemplar = tiny_vgg_image_pair
    for side in (32, 36, 40):
        stats = ExemplarStatistics([exemplar[..., :side // 8 * 8, :]], vgg, scales=(1, 2))
        assert stats.scales == [1]
        cells = (side // 8 * 8 - 2 * (8 if side < 40 else 16)) // 8
        assert stats.targets[(1, "relu4_1")].shape[0] == cells * (96 - 2 * (8 if side < 40 else 16)) // 8
        assert (1, "pixels") in stats.targets and all((1, t) in stats.targets for t in SW_TAPS)


def test_relu5_1_continues_from_relu4_1_and_a_small_photo_goes_without_it(tiny_vgg_image_pair):
    from engine.vgg import get_vgg19

    _, exemplar = tiny_vgg_image_pair
    vgg5 = get_vgg19(DEEP_TAP)
    with torch.no_grad():
        f = vgg5(exemplar[..., :64, :64], ("relu4_1", DEEP_TAP))
        assert torch.allclose(vgg5.relu5_1_from_relu4_1(f["relu4_1"]), f[DEEP_TAP], atol=1e-4)
    taps = SW_TAPS + (DEEP_TAP,)
    # 96 px: 6 relu5_1 cells, all within the 48 px border ring: the term is left out
    small = ExemplarStatistics([exemplar], vgg5, scales=(1,), taps=taps)
    assert (1, DEEP_TAP) not in small.targets and (1, "relu4_1") in small.targets
    # 160 px (the photo mirrored to it): 10 cells less 3 each side
    big = torch.cat([exemplar, exemplar.flip(-1)[..., :64]], -1)
    big = torch.cat([big, big.flip(-2)[..., :64, :]], -2)
    stats = ExemplarStatistics([big], vgg5, scales=(1,), taps=taps)
    assert stats.targets[(1, DEEP_TAP)].shape == (16, 512)
    img = big[..., :64, :64].clone().requires_grad_(True)
    feats = vgg5(img, ("relu1_1", "relu2_1", "relu3_1", "relu4_1"))
    with_deep = {**feats, DEEP_TAP: vgg5.relu5_1_from_relu4_1(feats["relu4_1"])}
    loss, without = stats.loss(img, {1: with_deep}), stats.loss(img, {1: feats})
    loss.backward()
    assert torch.isfinite(loss) and loss > without and img.grad.abs().sum() > 0


def test_cpu_sort_through_numpy_equals_torch_sort_values_and_gradients():
    from training.losses import _sorted

    x = torch.randn(3, 5, 64, requires_grad=True)
    ours, ref = _sorted(x), x.sort(dim=-1).values
    assert torch.equal(ours, ref)
    weights = torch.randn_like(ref)
    g_ours, = torch.autograd.grad((ours * weights).sum(), x)
    g_ref, = torch.autograd.grad((ref * weights).sum(), x)
    assert torch.equal(g_ours, g_ref)
    y = torch.randn(7, 33)
    assert torch.equal(_sorted(y.t()), y.t().sort(dim=-1).values)  # a transposed (strided) input


def _smooth_periodic(n: int = 2, side: int = 64) -> torch.Tensor:
    """Low-pass periodic random images in [0, 1]: nothing repeats at 2, 4 or 8 px."""
    torch.manual_seed(3)
    f = torch.fft.fft2(torch.randn(n, 3, side, side))
    fy, fx = torch.fft.fftfreq(side)[:, None], torch.fft.fftfreq(side)[None]
    x = torch.fft.ifft2(f / (1 + (fy ** 2 + fx ** 2) * 400)).real
    return (x - x.amin()) / (x.amax() - x.amin())


def _minimise(loss, start_image: torch.Tensor, steps: int = 100, lr: float = 0.003) -> tuple[float, torch.Tensor]:
    """(the loss at the start, the image after ``steps`` of Adam on it)."""
    x = start_image.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    start = float(loss(x.detach()))
    for _ in range(steps):
        opt.zero_grad()
        loss(x).backward()
        opt.step()
    return start, x.detach()


@pytest.mark.parametrize("period,axis", [(2, -2), (4, -1), (8, -2)])
def test_the_grid_penalty_sees_faint_lines_on_the_lattice_wherever_they_sit(period, axis):
    smooth = _smooth_periodic()
    assert float(grid_loss(smooth)) == 0.0 and float(grid_peaks(smooth).max()) < 2.0
    idx = torch.arange(64)
    bump = (idx % period == 0).float() * 0.03  # lines 3% of the range, one px wide
    lines = smooth + (bump[:, None] if axis == -2 else bump[None])
    assert float(grid_loss(lines)) > 1.0
    # where the lines sit does not matter (the training output is rolled by 0..7 px)
    assert torch.allclose(grid_peaks(lines.roll(3, axis)), grid_peaks(lines), atol=1e-3)


def test_the_grid_penalty_falls_under_optimisation_and_leaves_the_picture():
    smooth = _smooth_periodic()
    lines = smooth + 0.03 * (torch.arange(64) % 2).float()[:, None]
    start, x = _minimise(grid_loss, lines)
    assert float(grid_loss(x)) < 0.05 * start
    assert float((x - lines).abs().mean()) < 0.05


def _grainy(side: int, seed: int) -> torch.Tensor:
    """A periodic random image with blobs and a fine grain, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    f = torch.fft.fft2(torch.randn(1, 3, side, side, generator=g))
    fy, fx = torch.fft.fftfreq(side)[:, None], torch.fft.fftfreq(side)[None]
    x = torch.fft.ifft2(f / (1 + (fy ** 2 + fx ** 2) * 400)).real
    x = (x - x.mean()) / x.std() * 0.12 + 0.5
    return (x + 0.02 * torch.randn(1, 3, side, side, generator=g)).clamp(0, 1)


def test_the_mesh_penalty_sees_a_fine_mesh_between_the_lattice_frequencies():
    photo = [_grainy(256, 1)]
    target = mesh_target(photo, 64)
    same_law = _grainy(64, 2)
    assert float(mesh_loss(same_law, target)) < 0.5
    # vertical stripes 3.2 px apart (as G printed on rock and corrosion), 3% of the range
    stripes = 0.03 * torch.cos(2 * torch.pi * torch.arange(64) * 20 / 64)
    meshed = same_law + stripes[None, None, None]
    assert float(mesh_loss(meshed, target)) > 5.0
    # the grid penalty, which sees the 2, 4 and 8 px lattice only, does not
    assert float(grid_loss(meshed)) == 0.0
    # and a mesh coarser than 8 px is left to the texture losses
    coarse = same_law + 0.03 * torch.cos(2 * torch.pi * torch.arange(64) * 5 / 64)[None, None, None]
    assert float(mesh_loss(coarse, target)) < 0.5


def test_the_mesh_penalty_falls_under_optimisation_and_leaves_the_picture():
    target = mesh_target([_grainy(256, 1)], 64)
    meshed = _grainy(64, 2) + 0.03 * torch.cos(2 * torch.pi * torch.arange(64) * 20 / 64)[None, None, None]
    start, x = _minimise(lambda img: mesh_loss(img, target), meshed)
    assert float(mesh_loss(x, target)) < 0.05 * start
    assert float((x - meshed).abs().mean()) < 0.05


def _trainer(exemplar, tmp_path, name: str, **penalties):
    from training.loop import Trainer
    from training.texture import TextureTask, TrainConfig

    cfg = TrainConfig(steps=2, batch=1, **{"grid_weight": 0.0, "mesh_weight": 0.0, **penalties})
    t = Trainer(TextureTask(exemplar, cfg), name,
                tmp_path / f"run-{name}", preset_dir=tmp_path, show_progress=False, log=lambda *a: None)
    t.prepare()
    return t


def _main_losses(t, img, batch) -> list[float]:
    """The task's main loss of ``img`` with and without its penalties (same projections)."""
    feats = t._features(img)
    out = []
    for p in (True, False):
        torch.manual_seed(0)
        out.append(float(t.task.losses(img, feats, batch, t.adversarial_loss, penalties=p)[0]))
    return out


@pytest.mark.parametrize("penalty", ["grid", "mesh"])
def test_the_hinge_weight_is_balanced_against_the_texture_loss_without_its_penalties(tmp_path, penalty):
    """A penalty far from met has a large gradient; D's weight must not follow it (a hinge
    term scaled to it overpowers the texture loss and washes the texture out)."""
    from pathlib import Path

    exemplar = Path(__file__).resolve().parent.parent / "training" / "exemplars" / "rust.png"
    weights, mains = {}, {}
    trainers = {w: _trainer(exemplar, tmp_path, f"balance{int(w)}", **{f"{penalty}_weight": w}) for w in (0.0, 1.0)}
    # the same G and D, taken before either is run (D's spectral norms step at every forward)
    trainers[1.0].G.load_state_dict(trainers[0.0].G.state_dict())
    trainers[1.0].D.load_state_dict(trainers[0.0].D.state_dict())
    for weight, t in trainers.items():
        plain = t.task.generate
        # lines on G's lattice, so the penalty is active
        t.task.generate = lambda G, batch: plain(G, batch) + 0.05 * (torch.arange(128) % 2).float()[:, None]
        batch = t.task.sample_batch(0)
        torch.manual_seed(0)
        t._rebalance(batch)
        weights[weight] = float(t.adv_weight)
        with torch.no_grad():
            img = t.task.generate(t.G, batch)
            mains[weight] = _main_losses(t, img, batch)
    with torch.no_grad():
        value = float(grid_loss(img) if penalty == "grid" else mesh_loss(img, t.task.mesh))
    assert value > 1.0  # the penalty is on, and large
    assert mains[1.0][0] == pytest.approx(mains[1.0][1] + value, rel=1e-3)
    assert mains[0.0][0] == pytest.approx(mains[0.0][1], rel=1e-6)
    assert weights[0.0] > 0
    assert weights[1.0] == pytest.approx(weights[0.0], rel=0.01)  # (bf16 sums vary ~1e-3 run to run)


def test_a_regular_texture_gets_no_grid_or_mesh_penalty(tmp_path):
    """A regular photo's lattice is quantised to whole cycles of the training canvas, so its
    sharp joints' harmonics land on the grid frequencies, or near the photo's own: both
    penalties stay off there."""
    import numpy as np
    from PIL import Image

    from tests.support import running_bond

    path = tmp_path / "wall.png"
    Image.fromarray((running_bond() * 255).astype(np.uint8)).save(path)
    t = _trainer(path, tmp_path, "wall", grid_weight=1.0, mesh_weight=1.0)
    assert t.task.wave_vectors
    batch = t.task.sample_batch(0)
    with torch.no_grad():
        img = t.task.generate(t.G, batch) + 0.05 * (torch.arange(t.task.crop) % 2).float()[:, None]
        target = mesh_target([t.task.exemplar], t.task.crop)
        assert float(grid_loss(img)) > 1.0 and float(mesh_loss(img, target)) > 1.0
        mains = _main_losses(t, img, batch)
    assert mains[0] == pytest.approx(mains[1], rel=1e-6)


def test_the_spectrum_term_ignores_shifts_and_pulls_the_power_to_the_exemplars():
    from training.losses import radial_log_power, spectrum_loss, spectrum_target

    torch.manual_seed(0)
    smooth = _smooth_periodic(n=1)
    grain = torch.rand(1, 3, 64, 64)
    assert torch.allclose(radial_log_power(grain.roll((5, 3), (2, 3))), radial_log_power(grain), atol=1e-4)
    target = spectrum_target([torch.rand(1, 3, 96, 96)], 64)  # white grain, windowed crops
    start, x = _minimise(lambda img: spectrum_loss(img, target), smooth, steps=150, lr=0.01)
    assert float(spectrum_loss(x, target)) < 0.1 * start
    # the fine rings (periods of 2-3 px) gained power, as the white grain has it
    assert float(radial_log_power(x)[0, 24:].mean()) > float(radial_log_power(smooth)[0, 24:].mean()) + 1.0


def test_the_2d_spectrum_term_keeps_directions_and_pulls_them_to_the_exemplars():
    """The 2-D term (``spectrum_kind="2d"``) sees which way structure runs, which the radial
    profile averages away: fitted to a photo of horizontal bands 16 px apart, isotropic
    blobs gain power at that period along the vertical frequency axis only."""
    from training.losses import coarse_band, mesh_target, spectrum2d_loss

    torch.manual_seed(0)
    smooth = _smooth_periodic(n=2)
    rows = torch.arange(160, dtype=torch.float32)[:, None]
    bands = (0.5 + 0.3 * torch.sin(2 * math.pi * rows / 16) + 0.05 * torch.randn(160, 160)).expand(1, 3, 160, 160)
    target = mesh_target([bands.contiguous()], 64)
    band = coarse_band(64)
    assert not band[0, 0] and band[1, 0] and not band[0, 16] and not band[32, 32]   # periods >= 8 px, no mean
    # a shift of the canvas changes no power
    assert torch.allclose(spectrum2d_loss(smooth.roll((5, 3), (2, 3)), target), spectrum2d_loss(smooth, target), rtol=1e-4)
    start, x = _minimise(lambda img: spectrum2d_loss(img, target), smooth, steps=150, lr=0.01)
    assert float(spectrum2d_loss(x, target)) < 0.2 * start
    power = (torch.fft.fft2(x.mean(1)).abs() ** 2).mean(0)
    assert float(power[4, 0]) > 20 * float(power[0, 4])   # 64 / 16 = 4 cycles: down the rows, not across


def test_mesh_regular_puts_the_mesh_penalty_on_a_regular_texture(tmp_path):
    """``mesh_regular`` (off by default; docs/MEASURED.md) lifts the exclusion: the same
    regular photo then gets the mesh penalty, with the photo's own crops as its target."""
    import numpy as np
    from PIL import Image

    from tests.support import running_bond

    path = tmp_path / "wall.png"
    Image.fromarray((running_bond() * 255).astype(np.uint8)).save(path)
    t = _trainer(path, tmp_path, "wall", mesh_weight=1.0, mesh_regular=True)
    assert t.task.wave_vectors and t.task.mesh is not None
    batch = t.task.sample_batch(0)
    with torch.no_grad():
        img = t.task.generate(t.G, batch) + 0.05 * (torch.arange(t.task.crop) % 2).float()[:, None]
        value = float(mesh_loss(img, t.task.mesh))
        mains = _main_losses(t, img, batch)
    assert value > 1.0
    assert mains[0] == pytest.approx(mains[1] + value, rel=1e-3)


@pytest.mark.parametrize("on", [False, True])
def test_stripe_penalties_put_the_grid_and_mesh_penalties_on_stripes(tmp_path, on):
    """Boards of uneven width put no harmonics on the grid penalty's lattice: with
    ``stripe_penalties`` they train as irregular photos do (G's own bilinear stages, both
    penalties in the main loss); without it, as a regular photo (nearest, no penalties)."""
    import numpy as np
    from PIL import Image

    from tests.support import boards

    path = tmp_path / "boards.png"
    Image.fromarray((np.clip(boards(), 0, 1) * 255).astype(np.uint8)).save(path)
    t = _trainer(path, tmp_path, "boards", grid_weight=1.0, mesh_weight=1.0, stripe_penalties=on)
    assert t.task.g_config.stripes and t.task.wave_vectors
    assert t.task.g_config.upsample == ("bilinear" if on else "nearest")
    assert (t.task.mesh is not None) == on
    batch = t.task.sample_batch(0)
    with torch.no_grad():
        img = t.task.generate(t.G, batch) + 0.05 * (torch.arange(t.task.crop) % 2).float()[:, None]
        mains = _main_losses(t, img, batch)
        penalty = float(grid_loss(img)) + (float(mesh_loss(img, t.task.mesh)) if on else 0.0)
    assert penalty > 1.0
    assert mains[0] == pytest.approx(mains[1] + (penalty if on else 0.0), rel=1e-3)


@pytest.mark.parametrize("settings, message", [
    (dict(spectrum_kind="polar"), "spectrum_kind must be one of radial, 2d"),
    (dict(spectrum_weight=float("inf")), "spectrum_weight must be a finite number"),
    (dict(spectrum_weight=-1.0), "spectrum_weight must be a finite number"),
])
def test_spectrum_settings_are_checked(settings, message):
    from training.texture import TrainConfig

    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings).validate()
