"""The exemplar's variants that training sees (training.exemplar.augment)."""
import pytest
import torch

from training.exemplar import augment


def test_variants_keep_what_each_mode_promises():
    # brighter at the top (light from above) and a mark at the left
    x = torch.linspace(1, 0, 8).view(1, 1, 8, 1).repeat(1, 1, 1, 8)
    x[..., 4, 0] = 2.0
    top_lit = lambda v: bool((v[..., 0, :] > v[..., -1, :]).all())   # noqa: E731
    assert [len(augment(x, m)) for m in ("none", "mirror", "flips", "dihedral")] == [1, 2, 4, 8]
    mirror = augment(x, "mirror")
    assert all(top_lit(v) for v in mirror)                            # light stays from above
    assert torch.equal(mirror[1][..., 4, -1], torch.tensor([[2.0]]))  # and left becomes right
    assert not all(top_lit(v) for v in augment(x, "flips"))           # flips turn it upside down too
    with pytest.raises(ValueError, match="mirror"):
        augment(x, "sideways")


def test_mgan_train_takes_every_augmentation_training_knows():
    from engine.cli import _train_config, build_parser
    from training.texture import AUGMENTS, TrainConfig

    for mode in AUGMENTS:
        args = build_parser().parse_args(["train", "photo.png", "--name", "x", "--augment", mode])
        assert _train_config(TrainConfig, args).augment == mode
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "photo.png", "--name", "x", "--augment", "sideways"])
