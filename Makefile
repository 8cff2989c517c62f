# Every target installs what it needs into .venv first; a fresh clone needs only python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv install test test-cluster lint demo bench bench-cluster clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[postgres,test,lint,report]'
	touch $@

# The development environment (every target below makes it first).
venv: $(STAMP)

# alcapctl for this user, onto PATH: pipx if there is one, else PREFIX/share/alcapctl
# linked as PREFIX/bin/alcapctl (README "Install").  make install PREFIX=/opt/alcap
PREFIX ?= $(HOME)/.local
install:
	PYTHON=$(PYTHON) ./install.sh "$(PREFIX)"

# The report's browser test needs Debian's chromium: installed as cluster/common.sh does.
test: $(STAMP)
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
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

# The peers are installed for the benchmark only: GNU parallel from Debian, Snakemake in
# its own venv (it must not shape the project's).
BENCH_VENV := .venv-bench
# make bench BENCH_ARGS="--dir /mnt/journaled": the loop trees on another file system
BENCH_ARGS ?=
bench: $(STAMP)
	command -v parallel >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq parallel >/dev/null; }
	test -x $(BENCH_VENV)/bin/snakemake || { $(PYTHON) -m venv $(BENCH_VENV) && \
	  $(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check snakemake; }
	$(BIN)/python benchmarks/run.py --snakemake $(BENCH_VENV)/bin/snakemake $(BENCH_ARGS)

# 200 runs on the real single-node Slurm: arrays, one sbatch per run, Snakemake's Slurm
# executor plugin (in the bench venv).  Root; run it under the cluster lock, like
# test-cluster: flock /tmp/alcapctl-cluster.lock make bench-cluster
bench-cluster: $(STAMP)
	test -x $(BENCH_VENV)/bin/snakemake || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check \
	  snakemake snakemake-executor-plugin-slurm
	cluster/bench.sh $(BIN)/python --snakemake $(BENCH_VENV)/bin/snakemake $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) .demo .pytest_cache .mypy_cache .ruff_cache build *.egg-info
