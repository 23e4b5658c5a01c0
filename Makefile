# promote: `make demo` promotes an example notebook end to end; `make test` runs the test suite.
# Both set everything up first (a virtual environment in .venv, from the pinned requirements-dev.lock).

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
NOTEBOOK ?= examples/notebooks/breast_cancer_classifier.ipynb
# The lock pins PyTorch's CPU build (torch==X+cpu), which PyPI does not have: uv takes it from
# the folders pip's find-links name (PIP_FIND_LINKS, else pip's configuration files), else
# from PyTorch's CPU index.
FIND_LINKS ?= $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
TORCH_SOURCE ?= $(if $(FIND_LINKS),$(foreach d,$(FIND_LINKS),--find-links $(d)),--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)

.DEFAULT_GOAL := help
.PHONY: help setup test test-fast lint docs demo clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/promote: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==0.13.9
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python $(TORCH_SOURCE) -r requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

setup: $(BIN)/promote ## Create .venv with promote and its pinned development tools

lint: setup ## ruff (lint + format check) and mypy
	$(BIN)/ruff check src tests docs/hooks.py
	$(BIN)/ruff format --check src tests docs/hooks.py
	$(BIN)/mypy

test: lint ## Set up, lint, and run every test (unit, CLI, corpus, end to end), a worker per core
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -n auto --dist loadfile

test-fast: setup ## Only the quick tests (no generated-project installs)
	$(BIN)/pytest -m "not slow"

docs: setup ## Build the documentation site into site/ (mkdocs, warnings are errors)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

demo: setup ## Promote NOTEBOOK, install the project, test it, train it, serve it and call /predict
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh $(NOTEBOOK)

clean: ## Remove the virtual environment and the demo project
	rm -rf $(VENV) demo site
