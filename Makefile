# The README's two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test unit integration e2e fault lint mutate bench clean bench-peer bench-accuracy bench-profile

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/claimledger run

# Coverage of the pure domain (shared/) is reported, with a floor (docs/testing.md): the
# services run as processes in most of the suite, so their lines are not measured here.
COV_FLOOR ?= 90
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider --cov=shared --cov-report=term-missing:skip-covered --cov-fail-under=$(COV_FLOOR)

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

integration: $(STAMP)
	$(PY) -m pytest -q tests/integration

e2e: $(STAMP)
	$(PY) -m pytest -q tests/e2e

fault: $(STAMP)
	$(PY) -m pytest -q tests/fault

# CI runs this before the suite: a lint error or an unformatted file fails the build
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared services claimledger

# Mutation testing (mutmut) of consensus, time axes, the time-axis SQL and the watermark, one
# module at a time with the tests that cover it; not in CI (tens of minutes). Survivors are
# listed in docs/testing.md. MUTATE="timeaxes views" for some targets only.
mutate: $(STAMP)
	$(PY) scripts/mutate.py $(MUTATE)

$(VENV)/.bench-installed: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	touch $@

# Defaults fit in ~10 minutes (200k claims sustained, replay of that log, 20k-claim peer);
# BENCH_ARGS="--claims 1000000 --peer-claims 100000" for RSS at 1M claims and the full peer.
bench: $(VENV)/.bench-installed
	$(PY) -m bench.run $(BENCH_ARGS)

# py-spy samples of the reconciler's apply path, bucketed (consensus, SQL, encoding, ...)
bench-profile: $(VENV)/.bench-installed
	$(PY) -m bench.profile

clean:
	rm -rf var .pytest_cache

# Accuracy benchmark (issue #8). The truthdiscovery peer pins old numpy/pytest, so it gets
# its own virtualenv; pycairo (its dependency) builds from source and needs
# `apt-get install -y libcairo2-dev pkg-config` first.
.venv-bench/.installed:
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install -q truthdiscovery==1.0.4
	touch .venv-bench/.installed

bench-peer: .venv-bench/.installed

bench-accuracy: $(STAMP) .venv-bench/.installed
	$(PY) -m bench.accuracy
