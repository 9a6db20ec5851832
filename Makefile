# edge-bridge: `make run` starts the daemon on config.example.toml, `make test` runs the checks, `make demo` runs
# the daemon with the bundled mock province. Only Python 3.11+ and make are needed; everything goes in .venv/.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config.example.toml

.PHONY: run test test-reliability lint demo bench venv clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "edge-bridge needs Python 3.11 or newer (PYTHON=$(PYTHON))")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

run: $(VENV)/.installed
	exec $(BIN)/edge-bridge run --config $(CONFIG)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

test-reliability: $(VENV)/.installed-test
	$(BIN)/pytest tests/reliability -m '' -p no:cacheprovider

demo: $(VENV)/.installed
	$(BIN)/python -m simulators.demo --config $(CONFIG)

bench: $(VENV)/.installed
	$(BIN)/python -m bench.suite

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
