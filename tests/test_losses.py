"""The sliced Wasserstein texture loss on tiny inputs."""
import torch

from training.losses import BORDER_PX, ExemplarStatistics, sliced_wasserstein


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
