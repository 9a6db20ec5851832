# edge-bridge: `make run` starts the daemon on config.example.toml, `make test` runs the checks, `make demo` runs
# the daemon with the bundled mock province. Only Python 3.11+ and make are needed; everything goes in .venv/.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config.example.toml

.PHONY: run test test-reliability lint demo bench venv constraints install uninstall clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "edge-bridge needs Python 3.11 or newer (PYTHON=$(PYTHON))")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
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

# the newest versions pyproject.toml allows, in a fresh venv, written to constraints.txt (then: make test, commit both)
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/pip install --quiet --upgrade pip
	.venv-constraints/bin/pip install --quiet -e '.[test]'
	{ sed -n '1,2p' constraints.txt; .venv-constraints/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-constraints

# as root on the gateway (DESTDIR, PREFIX, SYSCONFDIR, UNITDIR: see packaging/install.sh)
install:
	PYTHON=$(PYTHON) sh packaging/install.sh install

uninstall:
	sh packaging/install.sh uninstall

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
