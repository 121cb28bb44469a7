"""The benchmarks' measures: the copy measure (verbatim copies of the photo are found, a fresh
texture of the same kind is not one, and on a photo of little contrast neither;
bench/metrics.py), the boards' width read from photos against hand counts (bench/boards.py), and a
pattern's repeat read from photos (bench/repeats.py)."""
import numpy as np
import pytest

from bench.metrics import COPY_RMSE, copy_fraction, copy_threshold
from engine.noise import brown_noise


def _field(seed: int, contrast: float) -> np.ndarray:
    """Periodic brown noise as a uint8 photo (160 px): a texture with no two parts alike."""
    return (np.clip(brown_noise(seed, (160, 160), contrast=contrast), 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8)


@pytest.mark.parametrize("contrast", [0.3, 0.03])
def test_copies_are_found_and_a_fresh_texture_of_the_same_kind_is_not_one(contrast):
    photo = _field(0, contrast=contrast)
    copy = photo[20:148, 30:158]  # a cut-out of the photo
    fresh = _field(1, contrast=contrast)[:128, :128]
    threshold = copy_threshold(photo)
    assert 0 < threshold <= COPY_RMSE
    assert copy_fraction(copy, photo) == 1.0
    assert copy_fraction(fresh, photo) == 0.0
    if contrast < 0.1:
        # (little contrast: the fixed threshold alone would call the fresh texture a copy)
        assert threshold < COPY_RMSE and copy_fraction(fresh, photo, threshold=COPY_RMSE) > 0.3


def test_the_boards_bench_reads_the_shipped_board_photos_against_their_hand_counts(tmp_path):
    """``python -m bench.boards``: the planks' and the wood built-in's boards are read as
    stripes, 57.5 and 58.9 px against the hand counts of 42.7 and 64 (docs/MEASURED.md)."""
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    photos = [{"name": "planks", "path": str(ROOT / "bench" / "exemplars" / "planks.png"), "width": 42.7},
              {"name": "wood", "path": str(ROOT / "training" / "exemplars" / "wood.png"), "width": 64.0}]
    (tmp_path / "boards.json").write_text(json.dumps(photos))
    r = subprocess.run([sys.executable, "-m", "bench.boards", "--photos", str(tmp_path / "boards.json")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "| planks | 256x256 | 42.7 | stripes | 57.5 | +35% |" in r.stdout
    assert "| wood | 512x512 | 64.0 | stripes | 58.9 | -8% |" in r.stdout
    assert "read as stripes: 2 of 2; within 10%: 1; median error" in r.stdout


def test_the_repeats_bench_reads_the_carpets_repeat_and_refuses_rock():
    """``python -m bench.repeats``: the fabric built-in's carpet repeats every 226x292 px, as
    measured by hand; the rock photo does not repeat (docs/MEASURED.md, a pattern's repeat)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    r = subprocess.run([sys.executable, "-m", "bench.repeats", str(ROOT / "training" / "exemplars" / "fabric.png"),
                        str(ROOT / "bench" / "exemplars" / "rock.png")], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "| training/exemplars/fabric.png | 320x512 | 226x292 | 0.33, 0.41 |" in r.stdout
    assert "| bench/exemplars/rock.png | 512x512 | refused |" in r.stdout


def test_pattern_match_sees_a_patterns_motifs_in_place_and_not_their_statistics():
    """bench.metrics.pattern_match: the photo's pattern at another phase matches as the photo
    matches itself (~1); the same pixels shuffled in 8 px blocks (the same colours and much
    the same patches, the motifs gone) match far less."""
    import numpy as np

    from bench.metrics import pattern_floor, pattern_match

    rng = np.random.default_rng(0)
    unit = np.kron(rng.random((12, 10, 3)), np.ones((6, 6, 1)))  # a 72x60 px motif of 6 px blocks
    photo = (np.tile(unit, (4, 5, 1)) * 255).astype(np.uint8)  # 288x300 px, whole repeats
    shifted = np.roll(photo, (29, 17), (0, 1))
    blocks = photo[:, :296].reshape(36, 8, 37, 8, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 8, 8, 3)
    shuffled = blocks[rng.permutation(len(blocks))].reshape(36, 37, 8, 8, 3).transpose(0, 2, 1, 3, 4).reshape(288, 296, 3)
    assert pattern_floor(photo, (72, 60)) > 0.99
    assert pattern_match(shifted, photo, (72, 60)) > 0.95
    assert pattern_match(shuffled, photo, (72, 60)) < 0.6


def test_preset_quality_prints_the_fabric_built_ins_pattern_match_at_whole_repeats():
    """``python -m bench.preset_quality fabric``: the built-in that follows its carpet's
    226x292 px repeat gets the pattern table, on textures that hold whole repeats (456x584),
    where it draws the carpet's motifs in place about as well as the photo's repeats match
    each other (docs/MEASURED.md, a repeat's finer map: 0.65 against the photo's 0.66)."""
    import re
    import subprocess
    import sys

    from tests.conftest import ROOT

    r = subprocess.run([sys.executable, "-m", "bench.preset_quality", "fabric"], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^\| fabric \| 1650 \| \d\.\d\d \|", r.stdout, re.M), r.stdout
    row = re.search(r"^\| fabric \| 226x292 \| 456x584 \| (\d\.\d\d) \| (\d\.\d\d) \|$", r.stdout, re.M)
    assert row, r.stdout
    match, own = float(row[1]), float(row[2])
    assert own == 0.66 and match > 0.6
