# `make test` and `make demo` work on a fresh clone: they create .venv and install robust-suite when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: install test lint demo suites zoo browser clean docs

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# ruff, and the layers contract in pyproject.toml ([tool.importlinter]): no module imports from a layer above its own
lint: $(STAMP)
	$(VENV)/bin/ruff check robust tests suites bench docs conftest.py
	$(VENV)/bin/lint-imports

test: $(STAMP) lint browser docs
	$(PY) -m pytest -n $(PYTEST_WORKERS) --durations=10

# The main job on the embedded default: the demo leaderboard (digits-m zoo x patch / L-inf attacks x occlusion),
# written to leaderboards/demo/ (README.md, index.html, results.json, results.csv, figures/). Finished cells are
# kept in leaderboards/demo/results.sqlite, so a second run only re-renders.
demo: $(STAMP)
	$(VENV)/bin/robust leaderboard run leaderboards/demo.toml

# The 224-px kernel bench on one CUDA GPU (the CPU when there is none; --quick for tiny sizes): Grad-CAM, gan-patch
# against LaVAN, Patch Mixing, the occlusion sweep and PGD-10 against their peers, per timm model; one JSON line last.
.PHONY: bench-gpu
bench-gpu: $(STAMP)
	$(VENV)/bin/python bench/gpu.py

# The prepared GPU sitting (bench/gpu_run.sh): on a CUDA machine, bench/gpu.sh at 32 px, bench/gpu.py at 224 px (sync-
# debug included), then a generator's training on fresh images for the minutes left (TRAIN=photos, the default: the
# 224-px N8 generator against Lite0; TRAIN=digits, mixer, whole, mixer-whole, vit-whole, view, pm-whole,
# vit-pm-whole, mixer-pm-whole or 8ep-whole: a digits-m stream run; bench/gpu_train.sh lists them), every result in
# bench/results/DATE-gpu/ (with the interpreter there: PYTHON=python3, no venv). DRY_RUN=1: every step on this CPU
# at tiny sizes, into a temporary folder, the repository untouched (make suites runs it, with TRAIN=digits and photos).
DRY_RUN ?= 0
.PHONY: gpu
gpu: $(if $(filter 1,$(DRY_RUN)),$(STAMP))  # the venv only for the dry run; no $(MAKE) in the recipe: make -n runs it
	@if [ "$(DRY_RUN)" = 1 ]; then DRY_RUN=1 PYTHON=$(PY) bash bench/gpu_run.sh; \
	else PYTHON=$(PYTHON) bash bench/gpu_run.sh; fi

# Every robustness suite, the slow ones included, with a JSON record of each assertion; then the tests marked slow
# (longer SIGKILL runs, the Ray and worker-process executors, batch invariance at the board's budget).
suites: $(STAMP)
	$(PY) -m pytest suites -m "slow or not slow" --robust-report suites-report.json
	$(PY) -m pytest tests -n $(PYTEST_WORKERS) -m slow

# The board page is tested in headless Chromium (Debian's package): install it where apt-get can, as root.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || exit 1; \
	    else echo "note: Chromium is not installed and apt-get is unavailable: the browser test will be skipped"; fi; }

# Retrain every digits-m zoo model with its recorded recipe into the package's zoo (about 90 minutes on 2 CPU cores;
# --publish writes into the source tree, which only a source checkout allows): the architectures, their Patch-Mixing
# twins and resnet-8ep, the CNN trained as long as its twin.
zoo: $(STAMP)
	for arch in resnet vit mixer poolformer convmixer; do $(VENV)/bin/robust zoo train $$arch --publish || exit 1; done
	$(VENV)/bin/robust zoo train resnet --epochs 8 --name resnet-8ep --publish
	$(VENV)/bin/robust zoo train resnet --epochs 8 --augment patch-mixing --publish
	for arch in vit mixer; do $(VENV)/bin/robust zoo train $$arch --augment patch-mixing --publish || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The documentation site (mkdocs, docs/ + mkdocs.yml) into site/, built strict: a warning (a symbol the API page
# names that no longer exists, a page missing from the nav) fails it; not --quiet, which hides the warnings from
# the strict count too. Its tools live in .venv-docs (see the docs extra in pyproject.toml for why not in .venv).
DOCS_STAMP := .venv-docs/.installed-stamp
$(DOCS_STAMP): pyproject.toml
	test -x .venv-docs/bin/python || $(PYTHON) -m venv .venv-docs
	.venv-docs/bin/python -m pip install --quiet --disable-pip-version-check $$($(PYTHON) -c "import tomllib; \
	  print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['docs']))")
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 .venv-docs/bin/mkdocs build --strict
