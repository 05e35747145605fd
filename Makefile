# The README's two commands: `make demo` and `make test`. Both bootstrap what they need:
# uv (from PATH, or installed into .tools/ inside the repository), then `uv sync --frozen`.

SHELL := /bin/bash
PYTHON ?= python3
UV_HOME := .tools/uv
UV := $(shell command -v uv 2>/dev/null || echo $(UV_HOME)/bin/uv)
RUN := $(UV) run --frozen --no-sync
PYTEST_WORKERS ?= auto

.PHONY: help bootstrap sync test lint typecheck actionlint pytest demo demo-busy plan bench docs clean sdk-parity

help:
	@echo "make demo   run the delivery demo end to end on the embedded default (no cloud, no Pulumi CLI)"
	@echo "make test   everything CI runs: ruff, ruff format --check, mypy, actionlint, pytest"
	@echo "make bench  the benchmarks against their named peers"
	@echo "make demo-busy  the demo beside a CPU hog (load about 4 on 2 cores): same story, or a reason"
	@echo "make sdk-parity  the sagemaker SDK builds the same pipeline definition (own env: tests/sdk/sdk_parity.py.lock)"

$(UV):
	@echo "uv not found on PATH: installing it into $(UV_HOME)"
	@$(PYTHON) -m venv $(UV_HOME) && $(UV_HOME)/bin/python -m pip install --quiet uv \
	  || { rm -rf $(UV_HOME); $(PYTHON) -m pip install --quiet --target $(UV_HOME)/lib uv \
	       && mkdir -p $(UV_HOME)/bin && ln -sf ../lib/bin/uv $(UV_HOME)/bin/uv; }

bootstrap: $(UV)

# --compile-bytecode: the tests start hundreds of `modelrail` processes; where PYTHONDONTWRITEBYTECODE
# is set (as on this project's CI machines) each would otherwise recompile pandas, scikit-learn and
# boto3 from source: 8.5 s instead of 1.9 s for their imports.
sync: bootstrap
	@$(UV) sync --frozen --quiet --compile-bytecode

lint: sync
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: sync
	$(RUN) mypy

actionlint: sync
	$(RUN) actionlint .github/workflows/*.yml

pytest: sync
	$(RUN) pytest -n $(PYTEST_WORKERS) --dist loadgroup

test: lint typecheck actionlint pytest

demo: sync
	$(RUN) modelrail demo

# The demo's e2e test beside a bounded CPU hog (load average about 4 on 2 cores); opt-in, not in CI.
demo-busy: sync
	MODELRAIL_BUSY_DEMO=1 $(RUN) pytest -n 0 -s tests/e2e/test_demo_under_load.py

plan: sync
	$(RUN) modelrail plan --stack local

bench: sync
	$(RUN) python benchmarks/plan_bench.py
	$(RUN) python benchmarks/startup_bench.py
	$(RUN) python benchmarks/serving_bench.py

# The pipeline definition against the one the sagemaker SDK builds, offline. The SDK lives only in
# the script's own environment (PEP 723, locked in tests/sdk/sdk_parity.py.lock), not in uv.lock.
sdk-parity: bootstrap
	$(UV) run --locked --script tests/sdk/sdk_parity.py

clean:
	rm -rf .modelrail demo-report .pytest_cache .mypy_cache .ruff_cache

docs: sync
	$(RUN) python -m pipelines.config_reference README.md
