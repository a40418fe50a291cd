# `make test` and `make demo` work on a fresh clone: they create .venv and install robust-suite when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: install test lint demo zoo clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check robust tests suites bench conftest.py

test: $(STAMP) lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) --durations=10

# The main job on the embedded default: until the leaderboard runner lands (issue 5) this shows the zoo and
# measures every zoo model's clean accuracy on digits-m.
demo: $(STAMP)
	$(VENV)/bin/robust zoo list
	$(VENV)/bin/robust zoo eval

# Retrain every digits-m zoo model with its recorded recipe (about 30 minutes on 2 CPU cores).
zoo: $(STAMP)
	for arch in resnet vit mixer poolformer convmixer; do $(VENV)/bin/robust zoo train $$arch || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
