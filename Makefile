# The README's two commands: `make demo` and `make test`. Each sets up the virtualenv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench clean chart-files

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

# The Helm chart ships copies of the default flows and templates (a chart cannot read outside its folder).
chart-files:
	cp config/flows.yaml helm/cart-recovery/files/flows.yaml
	rm -rf helm/cart-recovery/files/templates && mkdir -p helm/cart-recovery/files/templates
	for dir in templates/*/; do [ "$$dir" = templates/samples/ ] || cp -r "$$dir" helm/cart-recovery/files/templates/; done

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
