import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
import torch

from engine.presets import (BUILTIN_DIR, PresetError, check_name, find_preset, list_presets, open_preset,
                            load_generator, read_meta, scan_presets)
from engine.synth import Synthesizer
from tests.conftest import make_tiny_preset


def test_round_trip(tmp_path, monkeypatch):
    folder = make_tiny_preset(tmp_path / "user", name="mine")
    monkeypatch.setenv("MGAN_PRESETS", str(tmp_path / "user"))
    info = find_preset("mine")
    assert info.kind == "texture" and info.path == folder
    assert "mine" in [p.name for p in list_presets()]
    g = load_generator(info)
    assert g.config.widths == (32, 16, 16)


def test_unknown_preset_error_names_the_known_ones(tmp_path, monkeypatch):
    make_tiny_preset(tmp_path / "user", name="alpha")
    monkeypatch.setenv("MGAN_PRESETS", str(tmp_path / "user"))
    with pytest.raises(PresetError, match=r"preset 'nope' not found; known: .*alpha"):
        find_preset("nope")


@pytest.mark.parametrize("name", ["../etc", "a/b", "", "UPPER", ".hidden", "x" * 65, "a b"])
def test_names_are_validated(name):
    with pytest.raises(PresetError, match="invalid preset name"):
        check_name(name)


@pytest.mark.parametrize("text", ["{not json", "9" * 5000, "[" * 100_000 + "]" * 100_000, "\udcff"])
def test_corrupt_json(tmp_path, text):
    folder = make_tiny_preset(tmp_path)
    (folder / "preset.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(PresetError, match="preset.json is corrupt"):
        read_meta(folder)


def test_json_with_a_byte_order_mark_is_read(tmp_path):
    folder = make_tiny_preset(tmp_path)
    (folder / "preset.json").write_bytes(b"\xef\xbb\xbf" + (folder / "preset.json").read_bytes())
    assert read_meta(folder)["name"] == "tiny"


@pytest.mark.parametrize("patch,message", [
    ({"format": "something-else"}, "not an MGAN preset"),
    ({"format_version": 99}, "format_version 99"),
    ({"format_version": True}, "format_version True"),
    ({"kind": "sound"}, "kind must be"),
    ({"generator": {"arch": "vit"}}, "unknown generator arch"),
    ({"noise": {"kind": "pink"}}, "unknown noise kind"),
    # A field of the wrong type is named, never met later as an AttributeError or TypeError.
    ({"exemplar": None}, "field 'exemplar': must be an object, got NoneType"),
    ({"exemplar": "photo.png"}, "field 'exemplar': must be an object, got str"),
    ({"exemplar": {"source": 5}}, "exemplar source must be a string, got 5"),
    ({"noise": None}, "field 'noise': noise parameters must be an object"),
    ({"noise": {"octaves": float("inf")}}, "noise octaves must be an integer, got inf"),
    ({"noise": {"beta": "2.5"}}, "noise beta must be a finite number, got '2.5'"),
    ({"generator": 3}, "field 'generator': generator config must be an object"),
    ({"maps": []}, "field 'maps': map settings must be an object"),
    ({"name": None}, "field 'name': invalid preset name None"),
])
def test_foreign_or_invalid_meta(tmp_path, patch, message):
    folder = make_tiny_preset(tmp_path)
    meta = json.loads((folder / "preset.json").read_text())
    meta.update(patch)
    (folder / "preset.json").write_text(json.dumps(meta))
    with pytest.raises(PresetError, match=message):
        read_meta(folder)


def test_corrupt_weights(tmp_path):
    folder = make_tiny_preset(tmp_path)
    info = open_preset(folder)
    (folder / "generator.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(PresetError, match="corrupt"):
        load_generator(info)
    (folder / "generator.safetensors").unlink()
    with pytest.raises(PresetError, match="missing"):
        load_generator(info)


def test_truncated_or_forged_weights(tmp_path):
    import struct

    folder = make_tiny_preset(tmp_path)
    info = open_preset(folder)
    weights = folder / "generator.safetensors"
    blob = weights.read_bytes()
    weights.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(PresetError, match=rf"preset 'tiny': generator.safetensors is truncated: {len(blob) // 2} "
                                          rf"bytes, its header describes {len(blob)}"):
        load_generator(info)
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    header["head.weight"]["dtype"] = "I16"  # same size as F16: only the dtype tells
    text = json.dumps(header).encode()
    weights.write_bytes(struct.pack("<Q", len(text)) + text + blob[8 + n:])
    with pytest.raises(PresetError, match="tensor head.weight has dtype 'I16'"):
        load_generator(info)


def test_weights_beyond_any_trained_value_are_damage(tmp_path):
    """A flipped exponent bit leaves a finite weight near 1e38: refused by name, not decoded
    into a texture of NaN."""
    from safetensors.torch import load_file, save_file

    folder = make_tiny_preset(tmp_path)
    weights = folder / "generator.safetensors"
    state = {k: v.float() for k, v in load_file(str(weights)).items()}
    state["head.weight"].view(-1)[0] = 3e38
    save_file(state, str(weights))
    with pytest.raises(PresetError, match=r"preset 'tiny': generator.safetensors: tensor head.weight holds 3e\+38"):
        load_generator(open_preset(folder))


def test_weights_not_matching_config(tmp_path):
    from safetensors.torch import save_file

    folder = make_tiny_preset(tmp_path)
    info = open_preset(folder)
    save_file({"head.weight": torch.zeros(3)}, str(folder / "generator.safetensors"))
    with pytest.raises(PresetError, match=r"does not match the generator config in preset.json \(\{\"arch\": "
                                          r"\"upsample\", \"widths\": \[32, 16, 16\]\}\): missing tensors"):
        load_generator(info)


def test_non_finite_weights_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = make_tiny_preset(tmp_path)
    state = load_file(str(folder / "generator.safetensors"))
    state["head.weight"][0, 0, 0, 0] = float("nan")
    save_file(state, str(folder / "generator.safetensors"))
    with pytest.raises(PresetError, match="non-finite"):
        load_generator(open_preset(folder))


def test_generator_with_non_finite_output_refused(tmp_path):
    """Finite weights that overflow (a flipped exponent bit made a feature std tiny) are
    refused at load, before they paint a NaN texture."""
    from safetensors.torch import load_file, save_file

    folder = make_tiny_preset(tmp_path)
    state = load_file(str(folder / "generator.safetensors"))
    state["feat_std"] = state["feat_std"].float()
    state["feat_std"][0, 7] = 7e-37
    save_file(state, str(folder / "generator.safetensors"))
    load_generator(open_preset(folder))  # every tensor is finite...
    with pytest.raises(PresetError, match="preset 'tiny': its generator's input statistics are impossible "
                                          r"\(feat_std holds 7e-37.*generator.safetensors is damaged"):
        Synthesizer.load(str(folder), device="cpu")  # ...but what they would make is not


def broken_presets(folder):
    """A good preset and three broken ones: JSON that is not a preset, truncated weights, and
    a folder whose name cannot be a preset's."""
    make_tiny_preset(folder, name="good")
    (folder / "notjson").mkdir()
    (folder / "notjson" / "preset.json").write_text("[]")
    weights = make_tiny_preset(folder, name="cut") / "generator.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    make_tiny_preset(folder, name="tiny").rename(folder / "My Preset")
    (folder / "not-a-preset").mkdir()  # no preset.json: not listed at all


def test_broken_presets_are_listed_with_the_reason(tmp_path, monkeypatch):
    broken_presets(tmp_path / "user")
    monkeypatch.setenv("MGAN_PRESETS", str(tmp_path / "user"))
    scan = scan_presets()
    user = [p.name for p in scan.presets if p.path.parent == tmp_path / "user"]
    assert user == ["good"] and [p.name for p in list_presets() if p.path.parent == tmp_path / "user"] == ["good"]
    reasons = {b.name: b.reason for b in scan.broken}
    assert set(reasons) == {"My Preset", "cut", "notjson"}
    assert "is not an MGAN preset" in reasons["notjson"]
    assert "generator.safetensors is truncated: " in reasons["cut"]
    assert "the folder's name is not a preset name" in reasons["My Preset"]
    assert all("\n" not in r for r in reasons.values())


def test_broken_user_preset_shadows_the_builtin(tmp_path, monkeypatch):
    """As find_preset opens the user's folder first, the listing shows that one: broken."""
    builtin = next(p for p in list_presets() if p.path.parent == BUILTIN_DIR)
    (tmp_path / "user" / builtin.name).mkdir(parents=True)
    (tmp_path / "user" / builtin.name / "preset.json").write_text("{")
    monkeypatch.setenv("MGAN_PRESETS", str(tmp_path / "user"))
    scan = scan_presets()
    assert builtin.name not in [p.name for p in scan.presets]
    assert [b.path for b in scan.broken if b.name == builtin.name] == [tmp_path / "user" / builtin.name]
    with pytest.raises(PresetError, match="corrupt"):
        find_preset(builtin.name)


def test_mgan_presets_prints_broken_ones_with_the_reason(tmp_path, monkeypatch, capsys):
    import argparse

    from engine.cli import cmd_presets

    broken_presets(tmp_path / "user")
    monkeypatch.setenv("MGAN_PRESETS", str(tmp_path / "user"))
    assert cmd_presets(argparse.Namespace(json=False)) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["good"].split()[1] == "texture"
    assert lines["cut"].split()[1] == "BROKEN" and "generator.safetensors is truncated" in lines["cut"]
    assert lines["notjson"].split()[1] == "BROKEN" and "not an MGAN preset" in lines["notjson"]
    assert cmd_presets(argparse.Namespace(json=True)) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed["good"]["broken"] is None and listed["good"]["kind"] == "texture"
    assert "is truncated" in listed["cut"]["broken"] and listed["cut"]["kind"] is None


def test_engine_reports_broken_presets_and_refuses_them_as_bad_preset(tmp_path, monkeypatch):
    """The presets reply carries the broken ones; a preset that fails at load (here: in the
    worker, when its generator turns out to make NaNs) is answered bad_preset."""
    import threading

    from safetensors.torch import load_file, save_file

    from engine import protocol as P
    from engine.client import EngineClient, EngineError
    from engine.server import EngineServer

    broken_presets(tmp_path / "user")
    weights = make_tiny_preset(tmp_path / "user", name="nan") / "generator.safetensors"
    state = load_file(str(weights))
    state["feat_std"] = state["feat_std"].float()
    state["feat_std"][0, 7] = 7e-37
    save_file(state, str(weights))
    monkeypatch.setenv("MGAN_PRESETS", str(tmp_path / "user"))
    server = EngineServer(f"ipc://{tmp_path}/engine.sock", device="cpu", log=lambda line: None)
    server.start()
    serving = threading.Thread(target=server.serve)
    serving.start()
    try:
        with EngineClient(server.endpoint, timeout=60) as client:
            reply = client.call("presets")
            assert {p["name"] for p in reply.header["presets"]} >= {"good", "nan"}
            broken = {b["name"]: b["reason"] for b in reply.header["broken"]}
            assert set(broken) == {"My Preset", "cut", "notjson"}
            assert "generator.safetensors is truncated" in broken["cut"]
            for name, message in [("cut", "is truncated"), ("notjson", "not an MGAN preset"),
                                  ("nan", "generator.safetensors is damaged")]:
                with pytest.raises(EngineError, match=message) as err:
                    client.synthesize(name, 32, 32)
                assert err.value.code == P.BAD_PRESET
    finally:
        server.stop()
        serving.join(timeout=60)
        server.close()


def test_builtin_presets_are_valid_and_record_their_exemplar():
    builtins = [p for p in list_presets() if p.path.parent == BUILTIN_DIR]
    assert len(builtins) >= 3
    colour = []
    for p in builtins:
        ex = np.asarray(Image.open(p.path / "exemplar.png").convert("RGB"), np.float32)
        colour.append(float(np.abs(ex - ex.mean(2, keepdims=True)).mean()) > 2.0)
    assert any(colour), "at least one built-in preset must come from a colour exemplar"
    for p in builtins:
        ex = p.meta["exemplar"]
        assert ex["source"] and ex["licence"] and ex["licence"] != "unknown"
        assert p.thumbnail is not None
        Synthesizer.load(p, device="cpu")  # loads and validates its weights


def test_builtin_style_preset_records_its_sources_and_stylises_a_held_out_photo():
    from engine.synth import stylize_image
    from training.mdan import fit_size

    styles = [p for p in list_presets() if p.path.parent == BUILTIN_DIR and p.kind == "style"]
    assert styles, "no built-in style preset in presets/"
    skdata = Path(__import__("skimage").__file__).parent / "data"
    photo = fit_size(np.asarray(Image.open(skdata / "camera.png").convert("RGB"), np.float32) / 255, 256)
    for p in styles:
        for key in ("style", "content"):
            assert p.meta[key]["source"] and p.meta[key]["licence"] not in ("", "unknown")
        assert p.meta["content"]["files"] and "camera.png" not in str(p.meta["content"]["files"])
        for f in ("exemplar.png", "content_example.png", "mdan_example.png", "thumbnail.png"):
            assert (p.path / f).is_file()
        style = np.asarray(Image.open(p.path / "exemplar.png").convert("RGB"), np.float32) / 255
        out = stylize_image(Synthesizer.load(p, device="cpu"), photo)
        assert out.shape == photo.shape
        # The photo's structure survives (luminance correlation)...
        corr = np.corrcoef(out.mean(-1).ravel(), photo.mean(-1).ravel())[0, 1]
        assert corr > 0.6, corr  # measured: 0.94 for espresso
        # ...and its colours move to the style's (camera.png is grey; the style is not).
        def dist(a):
            return float(np.abs(a.reshape(-1, 3).mean(0) - style.reshape(-1, 3).mean(0)).sum())
        assert dist(out) < 0.75 * dist(photo)  # measured: 0.35 vs 0.59 for espresso
