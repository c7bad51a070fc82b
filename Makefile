# kelpseg developer and user entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchvision must be a matching pair; the CUDA builds run fine on a CPU.
TORCH_PKGS ?= torch==2.14.1 torchvision==0.29.1
DEMO_DIR ?= demo-output
DEMO_AOI ?= 40
PYTEST_ARGS ?=
LIGHT_VENV ?= .venv-light

.PHONY: help install demo test test-fast light-check lint format typecheck clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PKGS)
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	touch $@

install: $(BIN)/.installed  ## create .venv with kelpseg and every extra

demo: install  ## generate demo data and run the whole chain on it
	bash scripts/demo.sh "$(DEMO_DIR)" "$(DEMO_AOI)"

# Two workers on two cores: one torch/OpenMP thread each. With torch's default (a thread per core
# in each process) the spinning threads fight over the cores: two demo trainings side by side took
# 37-43 s against 18 s with one thread each (measured 2026-12-08 on the 2-core CI machine).
test: install  ## the full test suite with coverage on 2 xdist workers (what CI runs)
	OMP_NUM_THREADS=1 $(BIN)/pytest -n 2 --dist worksteal --cov --cov-report=term $(PYTEST_ARGS)

test-fast: install  ## inner-loop subset: skips slow tests
	$(BIN)/pytest -q -m "not slow" -x $(PYTEST_ARGS)

# The light install: core dependencies only (no extras), as `pip install kelpseg` gets them.
$(LIGHT_VENV)/.installed: pyproject.toml
	rm -rf $(LIGHT_VENV)
	$(PYTHON) -m venv $(LIGHT_VENV)
	$(LIGHT_VENV)/bin/python -m pip install --quiet -e .
	touch $@

light-check: install $(LIGHT_VENV)/.installed  ## the light install (no torch) runs an exported package
	bash scripts/light_check.sh "$(LIGHT_VENV)" "$(DEMO_DIR)/light-check"

lint: install  ## ruff lint and format check
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: install  ## apply ruff formatting and autofixes
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

typecheck: install  ## mypy over the package
	$(BIN)/mypy

clean:  ## remove demo outputs and caches (keeps .venv)
	rm -rf "$(DEMO_DIR)" .pytest_cache .mypy_cache .ruff_cache .coverage
