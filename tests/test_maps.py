"""PBR maps (engine/maps.py): exact wrap-around filters, seamless maps, normals that agree
with the height, strips == whole, settings and their errors, the CLI's files."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.images import read_png16, write_png
from engine.maps import (MAP_NAMES, MapSettings, _tents, decode_normal, derive_maps, parse_map_names)
from engine.presets import PresetError, open_preset
from engine.synth import Synthesizer, to_uint8
from tests.conftest import run_cli


def periodic_colour(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A seamless (H,W,3) uint8 texture: a few random sinusoids of whole periods plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    out = np.zeros((h, w, 3))
    for _ in range(6):
        fy, fx, phase = rng.integers(1, 6), rng.integers(1, 6), rng.random() * 6.28
        out += rng.random(3) * np.sin(2 * np.pi * (fy * y / h + fx * x / w) + phase)[..., None]
    out += 0.3 * rng.standard_normal((h, w, 3))
    out = (out - out.min()) / (out.max() - out.min())
    return (out * 255).astype(np.uint8)


def reference_tent(a: np.ndarray, r: int) -> np.ndarray:
    """Tent blur by brute force: a (2r+1)-box applied twice per axis with np.roll."""
    a = a.astype(np.float64)
    for axis in (0, 1):
        for _ in range(2):
            a = sum(np.roll(a, s, axis=axis) for s in range(-r, r + 1))
    return a / (2 * r + 1) ** 4


# (6000, 3): the running sums down 6,000 rows pass 2**32 and wrap; the tents stay exact.
@pytest.mark.parametrize("shape,r", [((37, 23), 1), ((37, 23), 5), ((16, 40), 30), ((9, 8), 12), ((6000, 3), 30)])
def test_tents_equal_brute_force_wraparound_blur(shape, r):
    a = np.random.default_rng(1).integers(0, 256, shape).astype(np.uint32)
    h = shape[0]
    win = a[np.arange(-2 * r - 2, h + 2 * r) % h]
    ours = _tents(win, 2 * r + 2, h, [r])[r]
    assert np.allclose(ours, reference_tent(a, r), atol=1e-4)


def seam_rank(m: np.ndarray, axis: int) -> float:
    """Fraction of interior steps (mean |difference| between neighbouring rows or columns)
    smaller than the wrap-around step from the last row/column to the first."""
    m = m.astype(np.float64)
    if m.ndim == 2:
        m = m[..., None]
    steps = np.abs(np.diff(m, axis=axis)).mean(axis=(1 - axis, 2))
    wrap = np.abs(np.take(m, [0], axis=axis) - np.take(m, [-1], axis=axis)).mean()
    return float((steps < wrap).mean())


def test_every_map_is_seamless_where_the_base_colour_is():
    maps = derive_maps(periodic_colour(96, 136))
    assert list(maps) == list(MAP_NAMES)
    for name, m in maps.items():
        for axis in (0, 1):
            assert seam_rank(m, axis) < 0.95, (name, axis)
    # the check can fail: a map of a texture that does not wrap shows its seam
    cut = derive_maps(np.ascontiguousarray(periodic_colour(96, 136)[:, :100]), ["height"])["height"]
    assert seam_rank(cut, 1) > 0.95


def test_strips_equal_whole_canvas_bit_for_bit():
    base = periodic_colour(150, 70, seed=3)
    whole = derive_maps(base, strip_rows=10_000)
    for rows in (1, 7, 64):
        strips = derive_maps(base, strip_rows=rows)
        for name in MAP_NAMES:
            assert np.array_equal(whole[name], strips[name]), (name, rows)


def test_normals_are_unit_and_follow_the_height_laplacian():
    base = periodic_colour(128, 128, seed=2)
    maps = derive_maps(base, ["height", "normal"], MapSettings(normal_strength=0.5))
    n = decode_normal(maps["normal"], "opengl")            # x right, y down the rows, z out
    assert np.abs(np.linalg.norm(n, axis=-1) - 1.0).max() < 0.02  # 8-bit quantisation only
    h = maps["height"].astype(np.float64)
    div = (np.roll(n[..., 0], -1, 1) - np.roll(n[..., 0], 1, 1) + np.roll(n[..., 1], -1, 0) - np.roll(n[..., 1], 1, 0)) / 2
    lap = sum(np.roll(h, s, a) for s in (-2, 2) for a in (0, 1)) - 4 * h  # wide stencil: central diff of central diff
    r = np.corrcoef(div.ravel(), lap.ravel())[0, 1]
    assert r < -0.9, r  # the normal leans away from a bump: divergence = -depth * Laplacian


def test_directx_flips_green_and_nothing_else():
    base = periodic_colour(64, 48)
    gl = derive_maps(base, ["normal"])["normal"]
    dx = derive_maps(base, ["normal"], MapSettings(normal_convention="directx"))["normal"]
    assert np.array_equal(dx[..., 1], 255 - gl[..., 1])
    assert np.array_equal(dx[..., [0, 2]], gl[..., [0, 2]])


def test_height_scale_sign_inverts_the_relief_and_strength_tilts_normals():
    base = periodic_colour(64, 64, seed=5)
    up = derive_maps(base, ["height", "normal"])
    down = derive_maps(base, ["height", "normal"], MapSettings(height_scale=-1.0))
    assert np.abs(up["height"].astype(int) + down["height"].astype(int) - 65535).max() <= 1
    flat = derive_maps(base, ["normal"], MapSettings(normal_strength=0.0))["normal"]
    assert (flat == [128, 128, 255]).all()
    steep = derive_maps(base, ["normal"], MapSettings(normal_strength=4.0))["normal"]
    assert decode_normal(steep)[..., 2].mean() < decode_normal(up["normal"])[..., 2].mean()


def test_roughness_range_and_ao_strength():
    base = periodic_colour(64, 64, seed=6)
    m = derive_maps(base, ["roughness", "ao"], MapSettings(roughness_min=0.2, roughness_max=0.4, ao_strength=0.0))
    assert 0.2 * 255 - 1 <= m["roughness"].min() and m["roughness"].max() <= 0.4 * 255 + 1
    assert (m["ao"] == 255).all()
    deep = derive_maps(base, ["ao"], MapSettings(ao_strength=2.0))["ao"]
    assert deep.min() < 200


def test_maps_of_a_synthesis_are_deterministic_and_tiled_equals_untiled(tiny_preset):
    s = Synthesizer.load(tiny_preset, device="cpu", precision="fp32")
    whole = s.synthesize((160, 128), seed=4)
    tiled = s.synthesize((160, 128), seed=4, tile=64)
    assert np.abs(whole - tiled).max() < 1e-3
    a = derive_maps(to_uint8(whole))
    b = derive_maps(to_uint8(s.synthesize((160, 128), seed=4)), strip_rows=16)
    for name in MAP_NAMES:
        assert np.array_equal(a[name], b[name]), name
    t = derive_maps(to_uint8(tiled), strip_rows=16)
    # the tiled decode differs from the whole one by < 1e-3, which moves a few 8-bit values
    assert np.abs(a["height"].astype(int) - t["height"].astype(int)).mean() < 65535 * 0.002


def test_bad_settings_and_names_are_clear():
    with pytest.raises(ValueError, match="height_scale must be a number"):
        MapSettings(height_scale=float("nan")).validate()
    with pytest.raises(ValueError, match="roughness_min .* above roughness_max"):
        MapSettings().merged({"roughness_min": 0.9, "roughness_max": 0.1})
    with pytest.raises(ValueError, match="unknown map setting 'depth'"):
        MapSettings().merged({"depth": 1})
    with pytest.raises(ValueError, match="ao_radius must be a number in 1.0..31.0"):
        MapSettings().merged({"ao_radius": 100})
    with pytest.raises(ValueError, match="unknown map 'albedo'"):
        parse_map_names("albedo,height")
    assert parse_map_names("all") == list(MAP_NAMES)
    assert parse_map_names("all,normal") == list(MAP_NAMES)
    with pytest.raises(ValueError, match="unknown map 'foo'"):  # the name at fault, not 'all'
        parse_map_names("all,foo")
    with pytest.raises(ValueError, match="no map named"):
        parse_map_names(" , ")
    assert parse_map_names("normal, basecolor,height") == ["height", "normal"]
    with pytest.raises(ValueError, match=r"\(H,W,3\) uint8"):
        derive_maps(np.zeros((8, 8, 3), np.float32))


def test_preset_map_defaults_are_read_and_checked(tiny_preset):
    meta_path = tiny_preset.path / "preset.json"
    meta = json.loads(meta_path.read_text())
    meta["maps"] = {"height_scale": -1.0, "ao_radius": 8}
    meta_path.write_text(json.dumps(meta))
    s = open_preset(tiny_preset.path).map_settings
    assert s.height_scale == -1.0 and s.ao_radius == 8 and s.normal_strength == MapSettings().normal_strength
    for bad in ({"height_scale": "high"}, {"height_scale": None}, [1, 2], {"colour": 1}):
        meta["maps"] = bad
        meta_path.write_text(json.dumps(meta))
        with pytest.raises(PresetError, match="map setting|map settings"):
            open_preset(tiny_preset.path)


def test_png16_roundtrip_and_bit_depths(tmp_path):
    h16 = (np.arange(40 * 30, dtype=np.uint32) * 53 % 65536).astype(np.uint16).reshape(30, 40)
    write_png(tmp_path / "h.png", h16)
    assert np.array_equal(read_png16(tmp_path / "h.png"), h16)
    raw = (tmp_path / "h.png").read_bytes()
    assert raw[24] == 16 and raw[25] == 0  # IHDR: 16-bit greyscale
    write_png(tmp_path / "g.png", h16[..., None].astype(np.uint8))
    assert (tmp_path / "g.png").read_bytes()[24:26] == bytes([8, 0])
    with pytest.raises(ValueError, match="write_png takes"):
        write_png(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint16))


def test_cli_writes_every_map_at_the_requested_size(tiny_preset, tmp_path):
    out = tmp_path / "mat"
    r = run_cli("synth", "--preset", str(tiny_preset.path), "--size", "100x60", "--seed", "3", "--maps", "all",
                "--normal-convention", "directx", "--height-scale", "-0.5", "-o", str(out) + "/", "-q")
    assert r.returncode == 0, r.stderr
    name = tiny_preset.name
    files = {m: out / f"{name}_{m}.png" for m in ("basecolor", *MAP_NAMES)}
    assert all(f.is_file() for f in files.values()), sorted(p.name for p in out.iterdir())
    for m, f in files.items():
        assert Image.open(f).size == (100, 60), m
    base = np.asarray(Image.open(files["basecolor"]).convert("RGB"))
    expected = derive_maps(base, MAP_NAMES, MapSettings(normal_convention="directx", height_scale=-0.5))
    assert np.array_equal(read_png16(files["height"]), expected["height"])
    assert np.array_equal(np.asarray(Image.open(files["normal"])), expected["normal"])
    assert np.array_equal(np.asarray(Image.open(files["ao"])), expected["ao"])
    r = run_cli("synth", "--preset", str(tiny_preset.path), "--size", "64x64", "--maps", "bump", "-o", str(out))
    assert r.returncode != 0 and "unknown map 'bump'" in r.stderr
