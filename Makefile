# Everything a fresh machine needs: `make demo` and `make test` set themselves up.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: setup demo test bench lint clean

setup: $(STAMP) chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian's chromium for the browser tests (Playwright cannot download browsers here).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	  else echo "chromium missing: run 'sudo apt-get install chromium chromium-driver'"; fi; \
	fi

demo: setup
	rm -f demo.duckdb demo.duckdb.wal demo.duckdb.audit-journal demo.duckdb.audit-journal.sealed
	$(BIN)/credo --db demo.duckdb demo --residents $${RESIDENTS:-100000}

test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider
	if [ -f ../shared/conformance.py ]; then $(BIN)/python ../shared/conformance.py; fi

bench: setup
	$(BIN)/python -m bench

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo.duckdb* .pytest_cache .mypy_cache .ruff_cache
