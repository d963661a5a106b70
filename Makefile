# One-command entry points. Everything runs inside .venv, created on first use (and updated when
# pyproject.toml changes). Extra Snakemake arguments go in ARGS, e.g.
#   make reproduce ARGS="--configfile config/paper.yaml --cores all"

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
SNAKEMAKE := $(VENV)/bin/snakemake
PROFILE ?= workflow/profiles/default
ARGS ?=
# Before Snakemake: one line for a missing or broken --configfile, and a lock left by a killed run removed when
# nothing works in this folder any more (src/zfrepro/preflight.py). Dry runs and reports are not blocked by a lock.
PREFLIGHT := $(VENV)/bin/python -m zfrepro.preflight
# The configuration's results folder (config key results_dir: results/demo by default, results/paper for
# config/paper.yaml), where the report goes.
RESULTS_DIR = $$($(PREFLIGHT) --results-dir -- $(ARGS))

.PHONY: help reproduce report report-zip test test-fast lint dry-run unlock clean venv

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

venv: $(STAMP)  ## create .venv and install the package with its dev tools

# pip compiles bytecode up front (its default): with PYTHONDONTWRITEBYTECODE set, as on the CI machine,
# --no-compile would make every job compile torch's modules again (+4 s per job, +6 min per study).
$(STAMP): pyproject.toml
	if [ ! -x $(VENV)/bin/python ]; then $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install --upgrade pip; fi
	$(VENV)/bin/pip install -e '.[dev]'
	touch $@

reproduce: $(STAMP)  ## run the whole study (default config), then write results/demo/report.html
	@$(PREFLIGHT) -- $(ARGS)
	$(SNAKEMAKE) --profile $(PROFILE) $(ARGS)
	$(SNAKEMAKE) --profile $(PROFILE) $(ARGS) --report "$(RESULTS_DIR)/report.html"

report: $(STAMP)  ## only (re)write <results_dir>/report.html from finished results
	@$(PREFLIGHT) --if-running note -- $(ARGS)
	$(SNAKEMAKE) --profile $(PROFILE) $(ARGS) --report "$(RESULTS_DIR)/report.html"

report-zip: $(STAMP)  ## the report as one self-contained zip (<results_dir>/report.zip), for large reports or sharing
	@$(PREFLIGHT) --if-running note -- $(ARGS)
	$(SNAKEMAKE) --profile $(PROFILE) $(ARGS) --report "$(RESULTS_DIR)/report.zip"

test: $(STAMP)  ## the test suite (unit tests, the whole workflow on tests/config/tiny.yaml and paper_shape.yaml)
	$(VENV)/bin/pytest -q

test-fast: $(STAMP)  ## the tests without the workflow runs and multi-process training (a few minutes)
	$(VENV)/bin/pytest -q -m "not slow"

lint: $(STAMP)  ## ruff on the package and tests, snakemake --lint on the workflow
	$(VENV)/bin/ruff check .
	$(SNAKEMAKE) --lint $(ARGS)

dry-run: $(STAMP)  ## print the jobs `make reproduce` would run, and why
	@$(PREFLIGHT) --if-running note -- $(ARGS)
	$(SNAKEMAKE) --profile $(PROFILE) --dry-run $(ARGS)

# Both refuse what could lose work: unlock while a process still works in the folder (FORCE=1 overrides), clean of
# a folder that is not the configuration's own results folder marked by the workflow (src/zfrepro/preflight.py).
unlock: $(STAMP)  ## remove the lock a killed run left in .snakemake/locks (refused while a run goes on; FORCE=1)
	@$(PREFLIGHT) --unlock $(if $(FORCE),--force) -- $(ARGS)

clean: $(STAMP)  ## delete the configuration's results folder (results/demo by default; others are kept)
	@$(PREFLIGHT) --clean -- $(ARGS)
