"""The add-on's features for artists in real headless Blender (each of tests/blender_proc.py's
Blenders), against a real engine whose preset folder also holds two broken presets: the
preset grid's thumbnails (bpy.utils.previews), broken presets shown with their reason,
Variants and Keep, Generate's automatic image names, and Free engine memory.

Headless Blender makes no icons: every preview's ``icon_id`` is 0 there (so is an image's own
preview's), whatever was loaded. So these tests check what makes the grid right in the UI:
each thumbnail's preview holds exactly the engine's PNG, and the preset menu's item takes
its preview's icon id (else its kind's built-in icon, as it does here); the choice of icon
from a non-zero id is tested without Blender (tests/test_addon_presets_variants.py)."""
from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.blender_proc import run_blender
from tests.engine_proc import EngineProcess, engine_home

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The tiny preset, the built-ins (with thumbnails), and two presets that cannot load."""
    home = engine_home(tmp_path_factory.mktemp("engine"))
    presets = home / "presets"
    (presets / "broken-json").mkdir()
    (presets / "broken-json" / "preset.json").write_text('{"format": "mgan-preset", ')
    shutil.copytree(presets / "tiny", presets / "truncated")
    weights = presets / "truncated" / "generator.safetensors"
    weights.write_bytes(weights.read_bytes()[:weights.stat().st_size // 2])
    proc = EngineProcess(home, "tcp://127.0.0.1:*").start()
    yield proc
    proc.kill()


ARTIST = """
    import pathlib
    import bpy.utils.previews as previews
    mod = install()
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.endpoint = args["endpoint"]
    out = pathlib.Path(args["out"])
    modules = {m: sys.modules[MODULE + "." + m] for m in ("previews", "properties", "connection", "panels",
                                                           "panels_variants")}
    thumbs, link, state = modules["previews"].THUMBNAILS, modules["connection"].LINK, modules["properties"].STATE
    s = bpy.context.scene.mgan


    def pixels(image, tag):
        a = np.empty(len(image.pixels), dtype=np.float32)
        image.pixels.foreach_get(a)
        np.save(out / f"{tag}.npy", a.reshape(image.size[1], image.size[0], 4))
        return list(image.size)

    found = {"open_before": sorted(previews._uuid_open)}
    # 1. Refresh: thumbnails into previews, the menu's items, broken presets
    assert bpy.ops.mgan.refresh() == {"FINISHED"}
    coll = thumbs.collection
    found["previews"] = {}
    for name, p in coll.items():
        np.save(out / f"thumb_{name}.npy", np.array(p.image_pixels_float[:], dtype=np.float32).reshape(
            p.image_size[1], p.image_size[0], 4))
        found["previews"][name] = {"size": list(p.image_size), "icon_id": p.icon_id}
    found["items"] = [list(i) for i in modules["properties"].preset_items(s, bpy.context)]
    found["folder"] = str(modules["previews"].thumbnail_folder())
    found["files"] = sorted(f.name for f in pathlib.Path(found["folder"]).iterdir())
    found["broken"] = link.broken
    layout = Layout(icons=True)  # connected: the release button is drawn too
    modules["panels"].draw_panel(layout, bpy.context)
    found["drawn"] = layout.calls
    # a second refresh rebuilds the previews: the old collection is closed, not leaked
    first_uuid = coll._uuid
    assert bpy.ops.mgan.refresh() == {"FINISHED"}
    found["rebuilt"] = [first_uuid in previews._uuid_open, thumbs.collection._uuid in previews._uuid_open,
                        len(coll), sorted(thumbs.collection.keys()) == sorted(found["previews"])]

    # 2. Variants from seed 5, then Keep two of them (the panel has moved on meanwhile)
    s.preset, s.width, s.height, s.seed, s.add_to_material = "tiny", args["width"], args["height"], 5, False
    s.variants.count, s.variants.size = 3, args["variant_size"]
    assert bpy.ops.mgan.variants() == {"FINISHED"}
    found["variants"] = {"size": pixels(bpy.data.images["MGAN Variants"], "variants"),
                         "shown": [s.variants.preset, s.variants.first_seed, s.variants.shown]}
    layout = Layout(icons=True)
    modules["panels_variants"].draw_variants(layout, bpy.context)
    found["variants_drawn"] = [c for c in layout.calls if c[0] == "operator"]
    s.seed, s.preset = 0, "bricks"  # the panel moved on: Keep uses the variants' preset and its own seed
    for seed in (6, 7):
        assert bpy.ops.mgan.keep_variant(seed=seed) == {"FINISHED"}
        found[f"keep_{seed}"] = pixels(bpy.data.images[f"tiny_s{seed}"], f"keep_{seed}")
    found["seed_after_keep"] = s.seed
    # Generate: no image name -> '<preset>_s<seed>'; a name -> that image
    s.seed, s.preset = 9, "tiny"
    assert bpy.ops.mgan.generate() == {"FINISHED"}
    s.image_name = "Mine"
    assert bpy.ops.mgan.generate() == {"FINISHED"}
    found["generated"] = {name: pixels(bpy.data.images[name], name) for name in ("tiny_s9", "Mine")}
    found["images"] = sorted(i.name for i in bpy.data.images)

    # 3. Free engine memory, twice; then with the engine gone
    assert bpy.ops.mgan.release_memory() == {"FINISHED"}
    found["released"] = state.message
    assert bpy.ops.mgan.release_memory() == {"FINISHED"}
    found["released_again"] = state.message
    # a preset that follows a pattern's repeat, at a size that squeezes it: the engine's note,
    # reported and drawn under the message
    found["note_before"] = state.note
    s.preset, s.image_name, s.width, s.height = "fabric", "", 128, 128
    assert bpy.ops.mgan.generate() == {"FINISHED"}
    layout = Layout(icons=True)
    modules["panels"].draw_panel(layout, bpy.context)
    found["note"] = [state.note, [c for c in layout.calls if c[0] == "label" and c[3] in ("INFO", "BLANK1")],
                     [c for c in layout.calls if c[0] == "operator" and c[1] == ["mgan.fit_repeat"]]]
    assert bpy.ops.mgan.fit_repeat() == {"FINISHED"}
    found["fitted"] = [s.width, s.height, state.note, bpy.ops.mgan.fit_repeat.poll()]
    assert bpy.ops.mgan.release_memory() == {"FINISHED"}  # the engine as it was (it serves both Blenders)
    prefs.endpoint = args["nobody"]
    t0 = time.monotonic()
    try:
        bpy.ops.mgan.release_memory()
        found["release_down"] = ["no error", 0]
    except RuntimeError as exc:
        found["release_down"] = [str(exc), time.monotonic() - t0]

    # 4. Disabling the add-on closes its preview collection
    last = thumbs.collection
    addon_utils.disable(MODULE, default_set=True)
    found["after_disable"] = [thumbs.collection is None, last._uuid in previews._uuid_open, len(last)]
    found["open_after"] = sorted(previews._uuid_open)
    emit(**found)
"""


def _png_rgba(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def test_thumbnails_broken_presets_variants_keep_and_release(tmp_path, addon_zip, blender, engine):
    from engine.client import EngineClient

    width, height, variant_size = 40, 24, 32  # not square: a transposed image cannot pass
    found = run_blender(blender, tmp_path, ARTIST, timeout=400, zip=addon_zip, endpoint=engine.connect_address(),
                        out=tmp_path, width=width, height=height, variant_size=variant_size,
                        nobody=f"ipc://{tmp_path}/nobody.sock")
    with EngineClient(engine.connect_address()) as c:
        listed = {p["name"]: p for p in c.presets()}
        reply = c.call("presets")
        synth = {seed: np.array(c.synthesize("tiny", width, height, seed=seed)) for seed in (6, 7, 9)}
        small = {seed: np.array(c.synthesize("tiny", 32, 19, seed=seed)) for seed in (5, 6, 7)}

    # thumbnails: the engine's PNG files, written once each (named by content) in the extension's
    # own user folder, and one preview per preset that has one, holding that image (rows bottom-up;
    # Blender's preview loader reads each colour one level low, an image loaded from the same
    # file reads exact, hence the tolerance of one level)
    with_thumb = {name for name, p in listed.items() if p["thumbnail"]}
    assert len(with_thumb) >= 5 and "tiny" not in with_thumb  # the built-ins have them, tiny has none
    assert found["folder"].startswith(str(tmp_path / "blender-user"))
    folder = Path(found["folder"])
    assert sorted(found["files"]) == sorted({hashlib.sha256(listed[n]["thumbnail"]).hexdigest()[:32] + ".png"
                                             for n in with_thumb})
    assert {(folder / f).read_bytes() for f in found["files"]} == {listed[n]["thumbnail"] for n in with_thumb}
    assert set(found["previews"]) == with_thumb
    for name in with_thumb:
        png = _png_rgba(listed[name]["thumbnail"]).astype(int)
        assert found["previews"][name]["size"] == [png.shape[1], png.shape[0]]
        got = np.rint(np.load(tmp_path / f"thumb_{name}.npy")[::-1] * 255).astype(int)
        assert np.abs(got - png).max() <= 1, name
    # the menu: every listed preset, textures first, each with its preview's icon or its kind's icon
    items = {i[0]: i for i in found["items"]}
    assert set(items) == set(listed)
    kinds = [listed[i[0]].get("kind", "texture") for i in found["items"]]
    assert kinds == sorted(kinds, key=lambda k: k != "texture")
    kind_icon = {"texture": "TEXTURE", "style": "BRUSH_DATA"}
    for name, (_, _, _, icon, _) in items.items():
        preview_icon = found["previews"].get(name, {}).get("icon_id", 0)
        assert icon == (preview_icon or kind_icon[listed[name]["kind"]]), name
    assert [i[4] for i in found["items"]] == list(range(len(listed)))
    drawn = found["drawn"]
    assert ["template_icon_view", ["preset"], None, None] in drawn
    assert ["operator", ["mgan.release_memory"], None, "TRASH"] in drawn  # drawn while connected

    # broken presets: listed with their reason, as the engine says, and drawn under the grid
    assert found["broken"] == reply.header["broken"]
    broken = {b["name"]: b["reason"] for b in found["broken"]}
    assert set(broken) == {"broken-json", "truncated"} and not {"broken-json", "truncated"} & set(items)
    assert "is corrupt" in broken["broken-json"] and "truncated" in broken["truncated"]
    labels = [c[2] for c in drawn if c[0] == "label"]
    assert "Cannot load 2 presets:" in labels and "broken-json" in labels and "truncated" in labels
    assert any("is corrupt" in (text or "") for text in labels)

    # the second refresh closed the first collection and opened one with the same previews
    assert found["rebuilt"] == [False, True, 0, True]

    # variants: seeds 5, 6, 7 at 32x19 (the panel's aspect), left to right, 4 dark pixels apart
    assert found["variants"]["shown"] == ["tiny", 5, 3]
    assert found["variants"]["size"] == [3 * 32 + 2 * 4, 19]
    row = np.rint(np.load(tmp_path / "variants.npy")[::-1, :, :3] * 255).astype(np.uint8)
    for i, seed in enumerate((5, 6, 7)):
        assert np.array_equal(row[:, i * 36:i * 36 + 32], small[seed]), seed
    assert np.all(row[:, 32:36] == 24) and np.all(row[:, 68:72] == 24)
    assert [c[2] for c in found["variants_drawn"]] == ["Variants from seed 5", "5", "6", "7"]

    # Keep: each seed its own image at the panel's size, the engine's pixels for that seed
    for seed in (6, 7):
        assert found[f"keep_{seed}"] == [width, height]
        kept = np.rint(np.load(tmp_path / f"keep_{seed}.npy")[::-1, :, :3] * 255).astype(np.uint8)
        assert np.array_equal(kept, synth[seed]), seed
    assert not np.array_equal(synth[6], synth[7])
    assert found["seed_after_keep"] == 7  # the panel says which texture was kept
    # Generate names its image after preset and seed unless the panel names one
    assert found["generated"] == {"tiny_s9": [width, height], "Mine": [width, height]}
    for name in ("tiny_s9", "Mine"):
        got = np.rint(np.load(tmp_path / f"{name}.npy")[::-1, :, :3] * 255).astype(np.uint8)
        assert np.array_equal(got, synth[9]), name
    assert {"MGAN Variants", "tiny_s6", "tiny_s7", "tiny_s9", "Mine"} <= set(found["images"])

    # release: the loaded tiny preset went; the second time nothing was loaded
    assert found["released"].startswith("engine memory: freed 1 loaded preset")
    assert found["released_again"].startswith("engine memory: no preset was loaded")
    # the fabric built-in's 226x292 px repeat squeezed into 128x128: said, with the size that holds it
    assert found["note_before"] == ""
    note, drawn_note, fit_button = found["note"]
    assert note.startswith("the pattern's 226x292 px repeat is stretched by up to") and "a size of 232x296" in note
    assert " ".join(c[2] for c in drawn_note) == note and drawn_note[0][3] == "INFO" and len(drawn_note) > 1
    # ... and one click takes that size (then the note, and the button, go)
    assert fit_button == [["operator", ["mgan.fit_repeat"], "Use 232x296", "FULLSCREEN_ENTER"]]
    assert found["fitted"] == [232, 296, "", False]
    message, seconds = found["release_down"]
    assert "did not answer release" in message and "nobody.sock" in message and seconds < 10
    assert "Traceback" not in message

    # disabling the add-on closed its previews
    assert found["after_disable"] == [True, False, 0]
    assert found["open_after"] == found["open_before"]
