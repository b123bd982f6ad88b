# The two commands of the README: `make local` (run it locally) and `make test` (run the tests).
# Both install what they need on a fresh clone: a virtualenv with the Python deps, and the
# pinned CDK CLI from package-lock.json.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: local test lint deps synth deploy bench clean

$(PY_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(PY_STAMP) $(NODE_STAMP)

local: $(PY_STAMP)
	$(PY) -m cmlcm_local $(ARGS)

test: deps lint
	$(PY) -m pytest $(PYTEST_ARGS)

# Static gates: ruff lint and format check over the whole tree (config in pyproject.toml).
lint: $(PY_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

synth: deps
	npx cdk synth --quiet

deploy: deps
	npx cdk deploy

bench: $(PY_STAMP)
	$(PY) benchmarks/collect_fleet.py

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache
