# The two commands: `make demo` and `make test`. Each sets up what it needs on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean packages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

tests/interop/node_modules/.package-lock.json: tests/interop/package-lock.json
	cd tests/interop && npm ci --silent --no-audit --no-fund

# The browser tests drive Debian's Chromium (Playwright never downloads a browser here); the
# production-layout tests put Debian's nginx in front as a TLS-terminating proxy.
PACKAGES := chromium nginx libseccomp2
packages:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "install Debian's $$missing to run the browser and proxy tests"; fi

demo: $(STAMP)
	$(BIN)/python -m demo

test: $(STAMP) tests/interop/node_modules/.package-lock.json packages
	$(BIN)/ruff check idp tests bench demo
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check idp tests bench demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) tests/interop/node_modules .pytest_cache
