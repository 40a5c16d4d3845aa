# The README's two commands: `make demo` and `make test`. Each sets up the virtualenv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench chaos clean

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

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

bench: install
	$(BIN)/python bench/ingest.py

# Long (not in CI): 20 000 events, 20 random SIGKILLs, 2 PostgreSQL cuts of 30 s; prints the table.
chaos: install
	PYTHONPATH=. $(BIN)/python bench/chaos.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
