"""training.builtin's command line: which budget and recipe each built-in gets (no training)."""
from __future__ import annotations

import pytest

from training import builtin


@pytest.fixture
def configs(monkeypatch, tmp_path):
    """Run builtin.main with the task and trainer replaced by recorders: name -> TrainConfig."""
    seen = {}

    class Task:
        def __init__(self, path, cfg, **kw):
            self.cfg = cfg

    class Trainer:
        def __init__(self, task, name, run_dir, preset_dir=None):
            seen[name] = task.cfg

        def run(self, **kw):
            pass

    monkeypatch.setenv("MGAN_HOME", str(tmp_path))
    monkeypatch.setattr(builtin, "TextureTask", Task)
    monkeypatch.setattr(builtin, "Trainer", Trainer)
    monkeypatch.setattr(builtin, "train_style", lambda *a: pytest.fail("no style preset was asked for"))
    return seen


def test_a_builtin_with_its_own_steps_trains_them_with_its_recipe(configs):
    builtin.main(["stone", "meadow", "bricks", "fabric"])
    assert configs["stone"].steps == 1650 and configs["stone"].relu5
    assert configs["stone"].augment == "none"
    # longer without the relu5_1 term
    assert configs["meadow"].steps == 1650 and not configs["meadow"].relu5 and configs["meadow"].layout
    # the carpet follows its repeat, measured on its photo
    assert configs["fabric"].repeat == (292, 226) and configs["fabric"].relu5
    # one without its own steps gets the default budget
    assert configs["bricks"].steps is None and configs["bricks"].minutes == builtin.TEXTURE_MINUTES
    assert not configs["bricks"].relu5 and not configs["bricks"].layout and configs["bricks"].repeat is None


def test_minutes_or_steps_on_the_command_line_override_a_builtins_steps(configs):
    builtin.main(["stone", "--minutes", "2"])
    assert configs["stone"].steps is None and configs["stone"].minutes == 2.0
    builtin.main(["rust", "--steps", "40"])
    assert configs["rust"].steps == 40 and configs["rust"].relu5


def test_relu5_flag_turns_the_term_on_for_all(configs):
    builtin.main(["meadow", "--relu5"])
    assert configs["meadow"].relu5


def test_a_builtin_trains_at_its_own_seed_unless_the_command_line_names_one(configs):
    builtin.main(["stone", "bricks"])
    assert configs["stone"].seed == 1  # the seed its shipped preset was trained at
    assert configs["bricks"].seed == 0
    builtin.main(["stone", "--seed", "3"])
    assert configs["stone"].seed == 3
    builtin.main(["stone", "--seed", "0"])
    assert configs["stone"].seed == 0
