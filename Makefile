# The README's two commands: `make demo` and `make test`. Each sets up the virtualenv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck audit lock unit bench chaos migration wheel clean chart-files

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/recovery demo

lint: install
	$(BIN)/ruff check recovery tests bench
	$(BIN)/ruff format --check recovery tests bench

typecheck: install
	$(BIN)/mypy

# Known vulnerabilities in what the image installs (requirements.lock), from PyPI's advisory data. Without
# internet access the probe fails within 5 s and the audit is skipped with one line (it never blocks tests).
AUDIT_PROBE := import urllib.request; urllib.request.urlopen('https://pypi.org/pypi/pip/json', timeout=5)
audit: install
	@if $(BIN)/python -c "$(AUDIT_PROBE)" >/dev/null 2>&1; then \
		$(BIN)/pip-audit --requirement requirements.lock --require-hashes --disable-pip --progress-spinner off \
			&& $(BIN)/pip-audit --requirement requirements-base.lock --require-hashes --disable-pip --progress-spinner off; \
	else echo "pip-audit skipped: pypi.org (advisory source) not reachable"; fi

# Regenerate the image's hashed locks after changing dependencies in pyproject.toml (pip-tools in the venv).
lock: install
	$(BIN)/python -m pip install --quiet 'pip-tools>=7.4'
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --extra report --no-emit-index-url \
		--no-emit-find-links --output-file requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links \
		--output-file requirements-base.lock requirements-base.in

# coverage of recovery/ over the whole suite; the floor (fail_under) is in pyproject [tool.coverage.report].
# Two pytest processes (pytest-xdist), a test file each at a time (--dist loadfile keeps a file's tests in
# their written order, as a serial run): most tests wait on service processes they start, and the suite ran
# 37 min in one process, over CI's 30-minute budget. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: lint typecheck audit
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --cov --cov-report=term --durations=25

unit: install
	$(BIN)/pytest tests/unit

# regenerates the single initial migration from recovery/store/schema/ (only while no release exists)
migration: install
	./regen_migration.sh

# the wheel a deployment installs (ships config/ and templates/ as recovery/default_files/)
wheel: install
	$(BIN)/python -m pip wheel --no-deps --wheel-dir dist .

# the speed benches (issue 13), quick sizes; `make bench BENCH_ARGS=--full` for the issue's sizes
bench: install
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

# The Helm chart's optional template override (config.templatesFromImage=false) ships a copy of templates/,
# samples included (`recovery check` renders every template against them); flows come from the image.
chart-files:
	rm -rf helm/cart-recovery/files/templates && mkdir -p helm/cart-recovery/files/templates
	for dir in templates/*/; do cp -r "$$dir" helm/cart-recovery/files/templates/; done

# Long (not in CI): 20 000 events, 20 random SIGKILLs, 2 PostgreSQL cuts of 30 s; prints the table.
chaos: install
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .coverage
