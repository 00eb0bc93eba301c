# Quick start: `make repro` runs the default pipeline, `make test` runs the tests. Both create .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install repro test test-all clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --requirement requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $@

repro: install
	dvc repro

test: install
	python -m pytest

test-all: install
	python -m pytest -m "slow or not slow"

clean-venv:
	rm -rf $(VENV)
