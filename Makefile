# maas: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

LINTED := handlers infra training maas maas_local maas_contract tests bench app.py setup.py

.PHONY: demo test test-localstack fuzz lint bench venv clean optimum-env

venv: $(STAMP)

# Re-installs only when the dependency declarations change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24.2"
	$(PY) -m pip install -q -c constraints.txt -e '.[train,infra,local,dev]'
	@touch $(STAMP)

# The CDK CLI (aws-cdk@2) and cdklocal, for `npx cdk deploy` and the LocalStack tier.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

# Hugging Face Optimum in a folder of its own (bench/optimum-requirements.txt says why), for
# benchmark 1's baseline and the test that its answers match maas's.
OPTIMUM_SITE := .venv-optimum
OPTIMUM_STAMP := $(OPTIMUM_SITE)/.installed
optimum-env: $(OPTIMUM_STAMP)
$(OPTIMUM_STAMP): bench/optimum-requirements.txt $(STAMP)
	rm -rf $(OPTIMUM_SITE)
	$(PY) -m pip install -q --no-deps --target $(OPTIMUM_SITE) -r bench/optimum-requirements.txt
	@touch $(OPTIMUM_STAMP)

demo: $(STAMP)
	$(PY) -m maas.demo $(DEMO_ARGS)

# ruff runs first (seconds); mypy, which takes minutes on a cold cache, is `make lint`.
# Two workers, one per core of the reference machine: most tests wait on servers and
# processes, so two overlap well (tests/conftest.py says how the suite is split).
TEST_WORKERS ?= 2
test: $(STAMP) $(NODE_STAMP) $(OPTIMUM_STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

# The LocalStack tier alone (make test runs it too); LocalStack gets its own Python 3.13 venv.
test-localstack: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest tests/localstack $(PYTEST_ARGS)

# Schemathesis's full run (every phase, every check; make test runs a capped one) against a
# fresh local stack with a trained model: tests/reliability/test_fuzz.py says what it checks.
fuzz: $(STAMP)
	MAAS_FUZZ_FULL=1 $(PY) -m pytest tests/reliability/test_fuzz.py $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy handlers infra training maas maas_local maas_contract app.py

bench: $(STAMP) $(OPTIMUM_STAMP)
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) $(OPTIMUM_SITE) cdk.out .pytest_cache build dist
