# Two commands a new user runs: `make setup` then `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv

.PHONY: setup test docs preview-dev preview-prod bench clean

# A ready .venv: uv installs with bytecode compiled (the machines set PYTHONDONTWRITEBYTECODE=1,
# so without it every import of pulumi_aws costs about twice as much). System tools the tests use
# (cloud-init for `cloud-init schema`) come from apt when we are root and they are missing.
# The project's own modules are compiled too (an offline preview imports ~170 of them: 0.3 s a
# process), and so are the test modules as pytest rewrites them for its assertion messages: pytest
# keeps that rewrite in __pycache__ only when bytecode may be written, and redoing it cost ~2.8 s of
# every test worker's collection. A file edited later is recompiled in memory (stale bytecode is
# never used), so this only ever saves time.
setup:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(BIN)/python -m pip install -q "uv>=0.5"
	$(UV) pip install -q --python $(BIN)/python --compile-bytecode -e ".[test]"
	./scripts/install-system-tools.sh
	./scripts/install-scan-tools.sh
	$(BIN)/python -m compileall -q -j 0 components programs policy tests scripts benchmarks >/dev/null
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -q --collect-only $(NO_XDIST) >/dev/null

# Test workers forked from the process that collected the suite and made the shipped stacks'
# offline runs (tests/forked_workers.py), each taking whole files (module fixtures are not built
# twice), heaviest first. On 2 cores the suite measured ~6 s less than with pytest-xdist's fresh
# interpreters, each of which imports, collects and warms up again (README "Benchmarks"). One more
# worker than CPUs: about a tenth of the suite's time is tests waiting (on a subprocess, a server,
# a timeout they check), and the extra worker's files use a core meanwhile (2 cores: wall time 0.53
# of the CPU seconds with 3 workers, 0.56 with 2, for the same CPU time).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 2) + 1 )))
# A test still running after this many seconds (the slowest takes ~8) prints its worker's stacks and
# fails, instead of holding the run until CI's limit.
TEST_TIMEOUT ?= 300
# pytest-xdist (for `pytest -n N`) is not used here: not loading its plugins saves 0.4 s of start-up.
NO_XDIST := -p no:xdist -p no:xdist.looponfail

test:
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q $(NO_XDIST) --forked-workers $(TEST_WORKERS) --forked-worker-timeout $(TEST_TIMEOUT)

# README's configuration reference, rendered from the config models' Field descriptions
# (tests/test_config_docs.py fails when they disagree).
docs:
	$(BIN)/python scripts/gen_config_docs.py

preview-dev:
	$(BIN)/platformctl preview --stack dev --offline --json plan-dev.json

preview-prod:
	$(BIN)/platformctl preview --stack prod --offline --json plan-prod.json

bench:
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) plan-*.json *.egg-info .platformctl
