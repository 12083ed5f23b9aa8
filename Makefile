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

# The browser tests drive Debian's Chromium (Playwright never downloads a browser here).
/usr/bin/chromium:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "install Debian's chromium package to run the browser tests"; fi

demo: $(STAMP)
	$(BIN)/python -m demo

test: $(STAMP) tests/interop/node_modules/.package-lock.json /usr/bin/chromium
	$(BIN)/ruff check idp tests bench demo
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check idp tests bench demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) tests/interop/node_modules .pytest_cache
