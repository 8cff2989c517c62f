# Every target installs what it needs into .venv first; a fresh clone needs only python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-cluster lint demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test,lint]'
	touch $@

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not cluster"

# Real Slurm and Grid Engine on this machine (root, Debian packages); see README "Clusters".
test-cluster: $(STAMP)
	cluster/test.sh $(BIN)/python

lint: $(STAMP)
	$(BIN)/ruff check alcapctl tests benchmarks
	$(BIN)/ruff format --check alcapctl tests benchmarks
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/python demo/run.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache build *.egg-info
