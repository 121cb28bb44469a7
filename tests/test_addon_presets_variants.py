"""The add-on's Blender-free logic for artists (addon/preset_list.py, addon/variants.py): the
presets reply read defensively, the preset menu's items and their icons, the thumbnail
files, broken presets' lines, what a release freed, variant seeds, sizes, names and the row
they are shown in, and the batch job that steps N requests as one."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support import addon_core

preset_list, variants, connection = addon_core("preset_list", "variants", "connection")
P = connection.protocol
PNG = b"\x89PNG\r\n\x1a\n" + b"rest of a png"


# ---- the presets reply -------------------------------------------------------------------
def test_thumbnails_are_matched_by_frame_index_and_only_png_files_kept():
    header = {"presets": [
        {"name": "b", "kind": "texture", "thumbnail": 1},
        {"name": "a", "kind": "style", "thumbnail": 0},
        {"name": "no-thumb", "thumbnail": None},
        {"name": "out-of-range", "thumbnail": 7},
        {"name": "bool-index", "thumbnail": True},     # True is not the index 1
        {"name": "jpeg", "thumbnail": 2},
        {"name": "array", "thumbnail": 3},
        "not a dict", {"kind": "texture"}, {"name": ""}, {"name": 5},
    ]}
    payloads = [P.EncodedImage("png", PNG + b"A"), P.EncodedImage("png", memoryview(PNG + b"B")),
                P.EncodedImage("jpeg", b"\xff\xd8\xff\xe0"), np.frombuffer(PNG, dtype=np.uint8)]
    listing = preset_list.read_presets_reply(header, payloads)
    thumbs = {p["name"]: p["thumbnail"] for p in listing.presets}
    assert thumbs == {"b": PNG + b"B", "a": PNG + b"A", "no-thumb": None, "out-of-range": None,
                      "bool-index": None, "jpeg": None, "array": None}
    assert listing.presets[0] == {"name": "b", "kind": "texture", "thumbnail": PNG + b"B"}  # other fields kept
    assert listing.broken == []  # an engine that predates `broken`


def test_a_png_frame_without_png_bytes_is_not_a_thumbnail():
    listing = preset_list.read_presets_reply({"presets": [{"name": "x", "thumbnail": 0}]},
                                             [P.EncodedImage("png", b"GIF89a...")])
    assert listing.presets == [{"name": "x", "thumbnail": None}]


def test_broken_presets_are_listed_with_a_one_line_reason():
    long_reason = "line one\nline two " + "x" * 400
    header = {"presets": "not a list", "broken": [
        {"name": "bad-json", "reason": "preset.json is corrupt: Expecting value"},
        {"name": "long", "reason": long_reason},
        {"name": "no-reason"},
        {"reason": "no name"}, "junk", {"name": ["list"], "reason": "x"},
    ]}
    listing = preset_list.read_presets_reply(header, [])
    assert listing.presets == []
    names = [b["name"] for b in listing.broken]
    assert names == ["bad-json", "long", "no-reason"]
    long = listing.broken[1]["reason"]
    assert long.startswith("line one line two x") and "\n" not in long
    assert len(long) == preset_list.MAX_REASON and long.endswith("...")
    assert listing.broken[2]["reason"] == "no reason given"


def test_panel_lines_wrap_for_the_panel_and_stop_after_a_few():
    lines = preset_list.panel_lines("word " * 20, width=20, max_lines=3)
    assert len(lines) == 3 and all(len(line) <= 20 for line in lines) and lines[-1].endswith("...")
    assert preset_list.panel_lines("short") == ["short"]
    assert preset_list.panel_lines("") == [""]


# ---- the preset menu ---------------------------------------------------------------------
def test_menu_items_carry_thumbnail_icons_else_their_kinds_icon():
    presets = [{"name": "oil", "kind": "style", "exemplar": {"source": "a painting"}},
               {"name": "bricks", "kind": "texture", "exemplar": {"source": "a wall"}},
               {"name": "plain", "kind": "texture", "exemplar": "not a dict"},
               {"name": 3}]
    icons = {"bricks": 812, "oil": 813}
    items = preset_list.enum_items(presets, "texture", lambda name: icons.get(name, 0))
    assert items == [("bricks", "bricks", "texture: a wall", 812, 0),
                     ("plain", "plain", "texture: ", "TEXTURE", 1),
                     ("oil", "oil", "style: a painting", 813, 2)]
    styles_first = preset_list.enum_items(presets, "style", lambda name: 0)
    assert [(i[0], i[3], i[4]) for i in styles_first] == [("oil", "BRUSH_DATA", 0), ("bricks", "TEXTURE", 1),
                                                           ("plain", "TEXTURE", 2)]


def test_no_presets_is_one_item_that_says_what_to_do():
    [(ident, name, desc, icon, number)] = preset_list.enum_items([], "texture", lambda name: 0)
    assert ident == preset_list.NO_PRESET and "Refresh" in desc and number == 0


def test_thumbnail_files_are_named_by_content_and_stale_ones_removed(tmp_path):
    folder = tmp_path / "thumbs"
    a, b = PNG + b"A", PNG + b"B"
    files = preset_list.write_thumbnails(
        [{"name": "a", "thumbnail": a}, {"name": "../../escape", "thumbnail": b},
         {"name": "same-as-a", "thumbnail": a}, {"name": "none", "thumbnail": None}], folder)
    assert set(files) == {"a", "../../escape", "same-as-a"}
    assert files["a"] == files["same-as-a"] and files["a"].read_bytes() == a
    assert files["../../escape"].parent == folder and files["../../escape"].read_bytes() == b
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted({f.name for f in files.values()})
    # the next refresh: a's thumbnail changed, b's preset is gone
    new_a = PNG + b"A2"
    again = preset_list.write_thumbnails([{"name": "a", "thumbnail": new_a}], folder)
    assert again["a"] != files["a"] and again["a"].read_bytes() == new_a
    assert sorted(folder.iterdir()) == [again["a"]]


def test_release_summary_counts_presets_and_says_when_the_gpu_cache_went():
    assert preset_list.release_summary({"released_presets": 1, "cuda_cache_emptied": False}) == \
        "engine memory: freed 1 loaded preset"
    assert preset_list.release_summary({"released_presets": 3, "cuda_cache_emptied": True}) == \
        "engine memory: freed 3 loaded presets; the GPU's cached memory went back to the driver"
    assert preset_list.release_summary({"released_presets": 0}) == "engine memory: no preset was loaded"
    assert preset_list.release_summary({"released_presets": "lots", "cuda_cache_emptied": "yes"}) == \
        "engine memory: no preset was loaded"


# ---- variants ----------------------------------------------------------------------------
def test_texture_names_say_preset_and_seed_and_fit_blender():
    assert variants.texture_name("stone", 7) == "stone_s7"
    long = variants.texture_name("p" * 64, 2**31 - 1)
    assert len(long) == 63 and long.endswith("_s2147483647")
    assert variants.texture_name("stone", 7) != variants.texture_name("stone", 8)


def test_variant_seeds_are_consecutive_and_fit_the_seed_field():
    assert variants.variant_seeds(5, 4) == [5, 6, 7, 8]
    top = variants.MAX_SEED
    assert variants.variant_seeds(top, 3) == [top - 2, top - 1, top]
    assert variants.variant_seeds(0, 0) == [0]


@pytest.mark.parametrize("size, wanted, shape", [
    ((1024, 1024), 256, (256, 256)),
    ((1024, 512), 256, (256, 128)),
    ((40, 24), 32, (32, 19)),
    ((100, 60), 256, (100, 60)),   # never larger than the texture
    ((4000, 16), 256, (256, 8)),   # never under the protocol's 8 px
])
def test_variant_shape_keeps_the_aspect_ratio(size, wanted, shape):
    assert variants.variant_shape(*size, wanted) == shape


def test_row_of_lays_variants_out_left_to_right_with_a_gap():
    tiles = [np.full((3, 2, 3), 10 * (i + 1), dtype=np.uint8) for i in range(3)]
    tiles[0][0, 0] = (1, 2, 3)
    row = variants.row_of(tiles, gap=2, gap_value=99)
    assert row.shape == (3, 3 * 2 + 2 * 2, 3) and row.dtype == np.uint8
    assert np.array_equal(row[:, 0:2], tiles[0]) and np.array_equal(row[:, 4:6], tiles[1])
    assert np.array_equal(row[:, 8:10], tiles[2])
    assert np.all(row[:, 2:4] == 99) and np.all(row[:, 6:8] == 99)
    with pytest.raises(ValueError, match="3x2x3 uint8"):
        variants.row_of([tiles[0], np.zeros((3, 3, 3), np.uint8)])
    with pytest.raises(ValueError, match="uint8"):
        variants.row_of([tiles[0], tiles[1].astype(np.float32)])
    with pytest.raises(ValueError, match="no variants"):
        variants.row_of([])


class FakeJob:
    """EngineJob's interface: done after ``steps`` steps, or raising at ``fail_at``."""

    def __init__(self, name, steps, fail_at=None):
        self.name, self.steps, self.fail_at = name, steps, fail_at
        self.reply, self.cancelled, self.started, self.waits = None, False, False, []
        self.fraction = 0.0

    def start(self):
        if self.fail_at == "start":
            raise connection.EngineError("timeout", f"{self.name} cannot be sent")
        self.started = True
        return self

    def step(self, wait=0.0):
        self.waits.append(wait)
        if self.fail_at == len(self.waits):
            raise connection.EngineError("bad_preset", f"{self.name} failed")
        self.fraction = min(1.0, len(self.waits) / self.steps)
        if len(self.waits) >= self.steps:
            self.reply = f"reply {self.name}"
        return self.reply is not None

    def cancel(self):
        self.cancelled = True


def test_job_batch_steps_every_job_and_replies_in_order():
    jobs = [FakeJob("a", 3), FakeJob("b", 1), FakeJob("c", 2)]
    batch = variants.JobBatch(jobs).start()
    assert all(j.started for j in jobs)
    assert batch.step(0.5) is False
    assert jobs[0].waits == [0.5] and jobs[1].waits == [0.0] and jobs[2].waits == [0.0]  # one blocking wait
    assert batch.fraction == pytest.approx((1 / 3 + 1 + 1 / 2) / 3)
    assert batch.run(0.01).reply == ["reply a", "reply b", "reply c"]
    assert len(jobs[1].waits) == 1  # a finished job is not stepped again
    assert batch.step() is True and batch.fraction == 1.0
    assert not any(j.cancelled for j in jobs)


def test_job_batch_failure_cancels_the_other_jobs():
    jobs = [FakeJob("a", 5), FakeJob("b", 5, fail_at=2), FakeJob("c", 5)]
    batch = variants.JobBatch(jobs).start()
    batch.step()
    with pytest.raises(connection.EngineError, match="b failed"):
        batch.step()
    assert jobs[0].cancelled and jobs[2].cancelled and not jobs[1].cancelled and batch.reply is None


def test_job_batch_that_cannot_start_withdraws_what_it_sent():
    jobs = [FakeJob("a", 1), FakeJob("b", 1, fail_at="start"), FakeJob("c", 1)]
    with pytest.raises(connection.EngineError, match="b cannot be sent"):
        variants.JobBatch(jobs).start()
    assert jobs[0].cancelled and jobs[0].started and not jobs[2].started
