"""training/warm_start.py: a texture's G starts from the nearest built-in preset's weights
(real VGG19, the real built-ins), from a named preset, or from scratch; clear errors where it
cannot."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import make_tiny_preset, run_cli, skimage_image

SMALL = {"crop": 64, "batch": 1, "checkpoint_every": 1000, "preview_every": 1000}


def _trainer(tmp_path, photo, **config):
    from training.loop import Trainer
    from training.texture import TextureTask, TrainConfig

    logs = []
    t = Trainer(TextureTask(photo, TrainConfig(**{**SMALL, **config})), "tiny", tmp_path / "run",
                preset_dir=tmp_path, show_progress=False, log=logs.append)
    return t, logs


def _crop_of(preset: str, tmp_path, box=(40, 40, 232, 200)):
    """A part of a built-in's own photo, as a user's photo."""
    from engine.presets import BUILTIN_DIR

    path = tmp_path / f"{preset}_part.png"
    with Image.open(BUILTIN_DIR / preset / "exemplar.png") as im:
        im.convert("RGB").crop(box).save(path)
    return path


def test_the_signature_distance_is_zero_to_itself_and_finds_the_photos_own_builtin(tmp_path):
    from engine.vgg import get_vgg19
    from training.exemplar import load_exemplar
    from training.warm_start import builtin_textures, distance, signature

    vgg = get_vgg19("relu4_1", "cpu")
    names = [p.name for p in builtin_textures()]
    assert {"stone", "rust", "foliage", "bricks"} <= set(names) and "espresso" not in names  # textures only
    for own in ("stone", "rust", "foliage", "meadow"):
        sig = signature(load_exemplar(_crop_of(own, tmp_path)), vgg)
        assert distance(sig, sig) == 0.0
        ranked = sorted((distance(sig, signature(load_exemplar(p.path / "exemplar.png"), vgg)), p.name)
                        for p in builtin_textures())
        assert ranked[0][1] == own, ranked


def test_auto_starts_g_from_the_nearest_builtin_and_records_it(tmp_path):
    from engine.presets import BUILTIN_DIR
    from safetensors.torch import load_file

    t, logs = _trainer(tmp_path, _crop_of("stone", tmp_path), steps=2)
    t.prepare()
    assert any("G starts from the built-in preset 'stone'" in m for m in logs), logs
    source = load_file(str(BUILTIN_DIR / "stone" / "generator.safetensors"))
    params = dict(t.G.named_parameters())
    for name in ("stem.weight", "blocks.1.b.weight", "stages.2.1.weight", "to_rgb.weight"):
        assert torch.equal(params[name].detach(), source[name].float()), name
    m = t.task.mean_rgb.clamp(0.02, 0.98)  # only the output bias: this photo's mean colour
    assert torch.allclose(t.G.to_rgb.bias, torch.log(m / (1 - m)))
    assert not torch.equal(t.G.feat_mean, source["feat_mean"].view_as(t.G.feat_mean))  # its own noise statistics
    folder = t.run()
    assert json.loads((folder / "preset.json").read_text())["started_from"] == "stone"


def test_a_regular_photo_starts_from_scratch_under_auto_and_from_a_named_preset_if_asked(tmp_path):
    from engine.presets import BUILTIN_DIR

    photo = BUILTIN_DIR / "bricks" / "exemplar.png"  # a regular photo: G reads its lattice's waves
    t, logs = _trainer(tmp_path / "a", photo, steps=1)
    t.prepare()
    assert t.G.config.waves == 2
    assert "G starts from scratch: a regular photo's periodic inputs are its own lattice's" in logs
    assert t.task.started_from is None
    named, logs = _trainer(tmp_path / "b", photo, steps=1, start_from="bricks")
    named.prepare()
    assert "G starts from the preset 'bricks'" in logs and named.task.started_from == "bricks"
    t, _ = _trainer(tmp_path / "c", photo, steps=1, start_from="stone")  # stone's G has no wave inputs
    with pytest.raises(ValueError, match="has a G of another shape"):
        t.prepare()


def test_off_starts_from_scratch_and_a_named_preset_is_taken_as_asked(tmp_path):
    from engine.presets import BUILTIN_DIR
    from safetensors.torch import load_file
    from training.warm_start import builtin_textures

    photo = _crop_of("stone", tmp_path)
    cold, logs = _trainer(tmp_path / "a", photo, steps=1, start_from="off")
    cold.prepare()
    assert not any("G starts from" in m for m in logs)
    rust = load_file(str(BUILTIN_DIR / "rust" / "generator.safetensors"))
    for p in builtin_textures():  # no preset's weights
        stem = load_file(str(p.path / "generator.safetensors"))["stem.weight"]
        assert not torch.equal(cold.G.stem.weight.detach().half(), stem.half()), p.name
    folder = cold.run()
    assert "started_from" not in json.loads((folder / "preset.json").read_text())

    named, logs = _trainer(tmp_path / "b", photo, steps=1, start_from="rust")
    named.prepare()
    assert "G starts from the preset 'rust'" in logs
    assert torch.equal(named.G.stem.weight.detach(), rust["stem.weight"].float())


def test_a_start_that_cannot_work_is_a_clear_error(tmp_path):
    from engine.generator import GeneratorConfig

    photo = skimage_image("gravel.png")
    cases = [({"start_from": "no-such-preset"}, "preset 'no-such-preset' not found"),
             ({"start_from": "espresso"}, "is a style preset"),
             ({"start_from": "stone", "generator": GeneratorConfig(widths=(64, 64, 32, 16)).to_dict()},
              "has a G of another shape"),
             ({"start_from": str(make_tiny_preset(tmp_path / "p"))}, "has a G of another shape")]
    for config, message in cases:
        t, _ = _trainer(tmp_path, photo, steps=1, **config)
        with pytest.raises(ValueError, match=message):
            t.prepare()
    with pytest.raises(ValueError, match="start_from must be"):
        _trainer(tmp_path, photo, steps=1, start_from="")[0].config.validate()


def test_a_preset_with_non_finite_weights_is_refused(tmp_path):
    from engine.presets import BUILTIN_DIR
    from safetensors.torch import load_file, save_file
    import shutil

    bad = tmp_path / "presets" / "bad"
    shutil.copytree(BUILTIN_DIR / "stone", bad)
    meta = json.loads((bad / "preset.json").read_text())
    meta["name"] = "bad"
    (bad / "preset.json").write_text(json.dumps(meta))
    weights = load_file(str(bad / "generator.safetensors"))
    weights["blocks.0.a.weight"][0, 0, 0, 0] = float("nan")
    save_file(weights, str(bad / "generator.safetensors"))
    t, _ = _trainer(tmp_path, skimage_image("gravel.png"), steps=1, start_from=str(bad))
    with pytest.raises(ValueError, match="holds non-finite values"):
        t.prepare()


def test_cli_start_from(isolated_home, tmp_path):
    photo = tmp_path / "p.png"
    with Image.open(skimage_image("gravel.png")) as im:
        Image.fromarray(np.asarray(im.convert("RGB"))[:96, :96]).save(photo)
    env = {"MGAN_HOME": str(isolated_home)}
    r = run_cli("train", str(photo), "--name", "g", "--crop", "64", "--batch", "1", "--steps", "1",
                "--start-from", "rust", "-q", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((isolated_home / "presets" / "g" / "preset.json").read_text())["started_from"] == "rust"
    r = run_cli("train", str(photo), "--name", "h", "--steps", "1", "--start-from", "nothing-here", env=env)
    assert r.returncode == 2 and "preset 'nothing-here' not found" in r.stderr
    r = run_cli("train", "--style", str(photo), "--content-dir", str(tmp_path), "--name", "s",
                "--start-from", "rust", env=env)
    assert r.returncode == 2 and "--start-from is for texture presets" in r.stderr
