# The two commands: `make demo` and `make test`. Each sets up what it needs on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-peer bench-servers wrk clean packages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

# auth0-python v4 shares v5's package name, so it lives beside the venv (tests/interop/auth0_v4.py
# imports it through PYTHONPATH; its dependencies are the venv's).
AUTH0_V4 := $(VENV)/auth0-v4
$(AUTH0_V4)/.installed: $(STAMP)
	$(BIN)/pip install --quiet --no-deps --upgrade --target $(AUTH0_V4) auth0-python==4.13.0
	touch $@

tests/interop/node_modules/.package-lock.json: tests/interop/package-lock.json
	cd tests/interop && npm ci --silent --no-audit --no-fund

# The browser tests drive Debian's Chromium (Playwright never downloads a browser here), which trusts
# the https tests' CA through an NSS database (certutil); the production-layout tests put Debian's nginx
# in front as a TLS-terminating proxy.
PACKAGES := chromium libnss3-tools nginx libseccomp2
packages:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "install Debian's $$missing to run the browser and proxy tests"; fi

demo: $(STAMP)
	$(BIN)/python -m demo

test: $(STAMP) $(AUTH0_V4)/.installed tests/interop/node_modules/.package-lock.json packages
	$(BIN)/ruff check idp tests bench demo
	$(BIN)/mypy
	# Two processes, a file to each at a time: a file's tests share what they set up (a Redis database).
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check idp tests bench demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) tests/interop/node_modules bench/peer/node_modules .pytest_cache

# idp side by side with node-oidc-provider (bench/peer/): `make bench-peer BENCH_PEER_ARGS="--duration 3"`.
bench/peer/node_modules/.package-lock.json: bench/peer/package-lock.json
	cd bench/peer && npm ci --silent --no-audit --no-fund

wrk:
	@command -v wrk >/dev/null || if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	else echo "the load generator is Debian's wrk: apt-get install wrk"; exit 1; fi

bench-peer: $(STAMP) bench/peer/node_modules/.package-lock.json wrk
	$(BIN)/python -m bench.peer $(BENCH_PEER_ARGS)

# The production server, chosen by measurement: every candidate on one core (`--duration 5 --rounds 3`).
bench-servers: $(STAMP) wrk
	$(BIN)/pip install --quiet -e ".[servers]"
	$(BIN)/python -m bench.servers $(BENCH_SERVERS_ARGS)
