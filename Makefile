# The two commands of the README: `make local` (run it locally) and `make test` (run the tests).
# Both install what they need on a fresh clone: a virtualenv with the Python deps, and the
# pinned CDK CLI from package-lock.json.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp
# The dashboard's third-party assets, copied from the versions pinned in package-lock.json.
WEB_VENDOR := web/assets/vendor
WEB_STAMP := $(WEB_VENDOR)/.copied-stamp

.PHONY: local test test-fast lint deps web synth deploy bench bench-broadcast bench-dashboard bench-payload clean

$(PY_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(PY_STAMP) $(NODE_STAMP)

# The dashboard (web/) is plain ES modules; its only library, uPlot, is copied next to them.
$(WEB_STAMP): $(NODE_STAMP)
	mkdir -p $(WEB_VENDOR)
	cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css $(WEB_VENDOR)/
	touch $@

web: $(WEB_STAMP)

local: $(PY_STAMP) web
	$(PY) -m cmlcm_local $(ARGS)

# The suite runs on every core (pytest-xdist): each file, or each folder that shares one local
# mode or one synthesized app (browser, contract, infra), runs whole on one worker (tests/conftest.py),
# handed out in folder order (the slow folders come first), not by test count. PYTEST_ARGS="-n 0"
# runs it serially.
PYTEST_XDIST := -n auto --dist loadgroup --no-loadscope-reorder
test: deps lint web
	$(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

# A quicker loop for developers, not a gate (`make test` is): the unit tests and the contract
# suites that start no local mode process, under 30 s on a 2-core machine. No lint, no moto in the
# unit tests, no test that starts another Python process (marker `spawns`), no browser, no synth.
FAST_TESTS := tests/unit tests/contract/test_contract_document_hook.py tests/contract/test_contract_request_log.py
test-fast: $(PY_STAMP)
	$(PY) -m pytest -m "not spawns" $(FAST_TESTS) $(PYTEST_ARGS)

# Static gates: ruff lint and format check over the whole tree, then mypy (config in
# pyproject.toml): strict on functions/ (the Lambda code), --check-untyped-defs on infra/, local/,
# benchmarks/ and every test folder. Each test folder is checked on its own: they are not packages
# and several hold a conftest.py (the shared helpers in tests/support are a package).
# The strict run and the others run side by side (make -j2), each with its own cache: with one
# cache, each run's options invalidated the other's entries for every shared dependency, so every
# `make lint` analysed pydantic, boto3's stubs and the rest twice, even on a warm cache.
MYPY_TEST_DIRS := tests/conftest.py tests/support tests/unit tests/integration tests/statemachines tests/cml tests/contract \
	tests/e2e tests/browser tests/infra
MYPY := $(VENV)/bin/mypy
lint: $(PY_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory -j2 --output-sync=target mypy-functions mypy-rest

.PHONY: mypy-functions mypy-rest
mypy-functions: $(PY_STAMP)
	$(MYPY) --cache-dir .mypy_cache/strict --strict functions

mypy-rest: $(PY_STAMP)
	$(MYPY) --cache-dir .mypy_cache/untyped --check-untyped-defs infra/cmlcm_infra infra/app.py local benchmarks
	for dir in $(MYPY_TEST_DIRS); do $(MYPY) --cache-dir .mypy_cache/untyped --check-untyped-defs $$dir || exit 1; done

synth: deps web
	npx cdk synth --quiet

deploy: deps web
	npx cdk deploy

bench: $(PY_STAMP)
	$(PY) benchmarks/collect_fleet.py
	$(PY) benchmarks/broadcast_fanout.py

# The live-update fan-out alone (1000 connections, 100 workers, one collection cycle per batch).
bench-broadcast: $(PY_STAMP)
	$(PY) benchmarks/broadcast_fanout.py $(ARGS)

bench-dashboard: $(PY_STAMP) web
	$(PY) benchmarks/dashboard_first_render.py $(ARGS)

# The collection's state payload by fleet size (Distributed Map, batches in S3).
bench-payload: $(PY_STAMP)
	$(PY) benchmarks/collect_state_payload.py

# The fleet policy's schedule and idle decisions for 10,000 workers (CPU and wall per run).
bench-policy: $(PY_STAMP)
	$(PY) benchmarks/policy_decisions.py $(ARGS)

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache $(WEB_VENDOR) test-artifacts
