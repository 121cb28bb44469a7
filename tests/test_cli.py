import pytest

from tests.conftest import make_tiny_preset, run_cli


def test_synth_errors_are_clear(isolated_home, tmp_path):
    env = {"MGAN_HOME": str(isolated_home)}
    r = run_cli("synth", "--preset", "does-not-exist", "-o", str(tmp_path / "x.png"), env=env)
    assert r.returncode == 2 and "preset 'does-not-exist' not found; known:" in r.stderr
    assert "Traceback" not in r.stderr
    make_tiny_preset(isolated_home / "presets", name="tiny")
    r = run_cli("synth", "--preset", "tiny", "--size", "0x5", "-o", str(tmp_path / "x.png"), env=env)
    assert r.returncode == 2 and "out of range" in r.stderr
    for seed in ("-5", str(2 ** 64)):   # the engine protocol's range, not a traceback from deep inside
        r = run_cli("synth", "--preset", "tiny", "--size", "16x16", f"--seed={seed}", "-o", str(tmp_path / "x.png"), env=env)
        assert r.returncode == 2 and "seed must be in 0..2^63-1" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "afile").write_text("")
    for maps in ((), ("--maps", "all")):   # a file where the output folder should be
        r = run_cli("synth", "--preset", "tiny", "--size", "16x16", *maps, "-o", str(tmp_path / "afile" / "x.png"), env=env)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert f"cannot write {tmp_path / 'afile'}" in r.stderr and "afile is a file, not a folder" in r.stderr
    assert not list(tmp_path.glob(".*tmp*"))


def test_presets_lists_builtins(isolated_home):
    r = run_cli("presets", env={"MGAN_HOME": str(isolated_home)})
    assert r.returncode == 0
    assert "texture" in r.stdout


def test_train_options_reach_the_config():
    """``mgan train`` options set the same-named TrainConfig fields; left out, the defaults."""
    from engine.cli import _train_config, build_parser
    from training.texture import TrainConfig

    args = build_parser().parse_args(["train", "photo.png", "--name", "n", "--relu5", "--steps", "40", "--lr-decay", "0",
                                      "--boards", "52.5", "--repeat", "226x292.5"])
    cfg = _train_config(TrainConfig, args)
    assert cfg.relu5 is True and cfg.steps == 40 and cfg.lr_decay == 0.0 and cfg.boards == 52.5
    assert cfg.repeat == (292.5, 226.0)  # WIDTHxHEIGHT on the command line, (h, w) in the config
    auto = _train_config(TrainConfig, build_parser().parse_args(["train", "p.png", "--name", "n", "--repeat", "auto"]))
    assert auto.repeat == "auto" and auto.validate().repeat == "auto"
    plain = _train_config(TrainConfig, build_parser().parse_args(["train", "photo.png", "--name", "n"]))
    assert plain.relu5 is False and plain.boards is None and plain.repeat is None


@pytest.mark.parametrize("option", [["--relu5"], ["--boards", "40"], ["--repeat", "40x40"]])
def test_texture_options_on_a_style_preset_are_a_clear_error(isolated_home, tmp_path, option):
    r = run_cli("train", "--style", str(tmp_path / "s.png"), "--content-dir", str(tmp_path), "--name", "x", *option,
                env={"MGAN_HOME": str(isolated_home)})
    assert r.returncode == 2 and f"{option[0]} is for texture presets" in r.stderr and "Traceback" not in r.stderr


def test_synth_into_a_folder_names_the_file_after_the_preset(isolated_home, tmp_path):
    """``-o out/`` (or an existing folder) writes out/<preset>.png, as ``--maps`` writes its
    set into a folder; a file name stays a file name."""
    env = {"MGAN_HOME": str(isolated_home)}
    make_tiny_preset(isolated_home / "presets", name="tiny")
    (tmp_path / "existing").mkdir()
    for out, expected in ((str(tmp_path / "new") + "/", tmp_path / "new" / "tiny.png"),
                          (str(tmp_path / "existing"), tmp_path / "existing" / "tiny.png"),
                          (str(tmp_path / "plain"), tmp_path / "plain.png")):
        r = run_cli("synth", "--preset", "tiny", "--size", "16x16", "-o", out, "--tiled", str(tmp_path / "existing"),
                    "-q", env=env)
        assert r.returncode == 0, r.stderr
        assert expected.is_file(), sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
        assert (tmp_path / "existing" / "tiny-2x2.png").is_file()


def test_synth_says_where_a_patterns_repeat_is_stretched_and_which_size_holds_it():
    """A repeat preset's canvas holds whole repeats: the synthesizer says how far a size
    stretched them (over 3%) and the size, in multiples of 8, that holds them nearly as is."""
    from engine.synth import Synthesizer

    synth = Synthesizer.load("fabric")
    assert synth.generator.config.repeat == (292, 226)
    note, fit = synth.repeat_note((512, 512))
    assert "226x292 px repeat is stretched by up to 13%" in note and "2x2 whole repeats" in note
    assert "a size of 456x584 holds them within 1%" in note and fit == (584, 456)
    assert synth.repeat_note((2048, 2048)) == ("", None)   # 7 and 9 repeats, under 1%
    assert "a period of 456x584" in synth.repeat_note((64, 64), period=(512, 512))[0]
    assert Synthesizer.load("stone").repeat_note((512, 512)) == ("", None)


