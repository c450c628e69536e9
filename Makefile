# One set of entry points for people and CI. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `clean` deletes the demo's folder, so it is named here; HOST and PORT (`make demo PORT=8080`)
# are passed on only when set, the demo's own defaults applying otherwise.
DEMO_DIR ?= demo-data

.PHONY: install demo serve test lint typecheck unit e2e clean browser postgres

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Debian's chromium drives the browser tests (Playwright never downloads a browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  || { echo "could not install chromium: install it with your package manager" >&2; exit 1; }; }

# A local PostgreSQL for the PostgreSQL half of the tests (CI runs this before `make test`).
postgres:
	bash scripts/postgres-for-tests.sh

demo: $(STAMP)
	$(BIN)/python -m deconflict.scenario.demo --dir $(DEMO_DIR) $(if $(HOST),--host $(HOST)) \
	  $(if $(PORT),--port $(PORT))

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: $(STAMP) browser lint typecheck unit

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
