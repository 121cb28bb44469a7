"""The relu3_1 patch discriminator: its reach, its optional global head, the hinge losses."""
import torch

from training.discriminator import PatchDiscriminator, hinge_d_loss, hinge_g_loss


def _reach(scores: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Which input cells the last score (bottom right) depends on: (h, w) bool."""
    g, = torch.autograd.grad(scores[..., -1, -1].sum(), x)
    return g.abs().sum(1)[0] > 0


def test_patch_scores_see_patches_and_the_global_head_the_whole_canvas():
    torch.manual_seed(0)
    x = torch.randn(1, 256, 32, 32, requires_grad=True)   # relu3_1 of a 128 px canvas
    local = PatchDiscriminator()(x)
    assert local.shape == (1, 1, 6, 6)
    reach = _reach(local, x)
    assert not reach[:8, :8].any() and 4 <= int(reach.any(0).sum()) <= 10   # a patch, not the canvas
    patch, whole = PatchDiscriminator(global_head=True)(x)
    assert patch.shape == (1, 1, 6, 6) and whole.shape == (1, 1, 2, 2)
    assert _reach(whole, x)[1:, 1:].all()               # 31 of 32 cells a side: the far corner too
    small = PatchDiscriminator(global_head=True)(torch.randn(1, 256, 8, 8))   # a 32 px canvas
    assert isinstance(small, torch.Tensor) and small.shape == (1, 1, 2, 2)


def test_hinge_losses_of_two_heads_are_the_mean_of_each():
    real, fake = (torch.randn(2, 1, 6, 6), torch.randn(2, 1, 2, 2)), (torch.randn(2, 1, 6, 6), torch.randn(2, 1, 2, 2))
    assert torch.allclose(hinge_d_loss(real, fake), (hinge_d_loss(real[0], fake[0]) + hinge_d_loss(real[1], fake[1])) / 2)
    assert torch.allclose(hinge_g_loss(fake), (hinge_g_loss(fake[0]) + hinge_g_loss(fake[1])) / 2)
    assert float(hinge_d_loss(torch.full((4,), 2.0), torch.full((4,), -2.0))) == 0.0   # both beyond the margin


def test_the_fine_head_judges_small_relu2_1_patches_of_its_own():
    torch.manual_seed(0)
    x3 = torch.randn(1, 256, 32, 32)                       # relu3_1 and relu2_1 of a 128 px canvas
    x2 = torch.randn(1, 128, 64, 64, requires_grad=True)
    d = PatchDiscriminator(global_head=True, fine_head=True)
    patch, whole, fine = d(x3, x2)
    assert patch.shape == (1, 1, 6, 6) and whole.shape == (1, 1, 2, 2) and fine.shape == (1, 1, 14, 14)
    reach = _reach(fine, x2)
    assert 6 <= int(reach.any(0).sum()) <= 10 and not reach[:48, :48].any()   # ~10 cells of relu2_1 (~20 px)
    assert isinstance(d(x3), tuple) and len(d(x3)) == 2    # without relu2_1: the other heads alone
    # off by default, and then the other heads' weights start as before
    torch.manual_seed(1)
    plain = PatchDiscriminator(global_head=True)
    torch.manual_seed(1)
    both = PatchDiscriminator(global_head=True, fine_head=True)
    assert plain.fine is None
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), both.state_dict().values()))
