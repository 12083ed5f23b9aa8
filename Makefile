# The two commands: `make demo` and `make test`. Each sets up what it needs on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

tests/interop/node_modules/.package-lock.json: tests/interop/package-lock.json
	cd tests/interop && npm ci --silent --no-audit --no-fund

demo: $(STAMP)
	$(BIN)/python -m demo

test: $(STAMP) tests/interop/node_modules/.package-lock.json
	$(BIN)/ruff check idp tests bench demo
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check idp tests bench demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) tests/interop/node_modules .pytest_cache
