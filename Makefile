# points_service — run `make help` for the targets.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
# Test processes (pytest-xdist): one per core by default; PYTEST_WORKERS=0 runs in this process.
PYTEST_WORKERS ?= auto
PYTEST := $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup
export FLASK_APP := wsgi.py

.DEFAULT_GOAL := help

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed ## Create the virtualenv and install pinned requirements

run: venv ## Migrate + seed the demo city (SQLite in instance/) and serve on 127.0.0.1:$(PORT)
	$(BIN)/flask db upgrade
	$(BIN)/flask demo seed --if-empty
	$(BIN)/flask demo info --port $(PORT)
	$(BIN)/flask run --host 127.0.0.1 --port $(PORT)

test: venv test-miniprogram ## Run the whole suite on SQLite, then on PostgreSQL if POINTS_TEST_DATABASE_URL is set
	POINTS_TEST_DATABASE_URL= $(PYTEST)
	@if [ -n "$$POINTS_TEST_DATABASE_URL" ]; then \
		echo "== PostgreSQL run: $$POINTS_TEST_DATABASE_URL"; \
		$(PYTEST); \
	else \
		echo "NOTE: PostgreSQL run skipped (set POINTS_TEST_DATABASE_URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"; \
	fi

miniprogram/node_modules/.installed: miniprogram/package-lock.json
	npm ci --prefix miniprogram --no-audit --no-fund
	touch $@

test-miniprogram: venv miniprogram/node_modules/.installed ## Mini-program tests (node --test), incl. the contract test against a live service
	npm test --prefix miniprogram

fuzz: venv ## Fuzz the API with schemathesis, long profile (500 examples per operation, random seed), SQLite then PostgreSQL if set
	POINTS_TEST_DATABASE_URL= POINTS_FUZZ_PROFILE=long $(PYTEST) -m fuzz tests/api/test_fuzz_openapi.py
	@if [ -n "$$POINTS_TEST_DATABASE_URL" ]; then \
		POINTS_FUZZ_PROFILE=long $(PYTEST) -m fuzz tests/api/test_fuzz_openapi.py; \
	fi

crash: venv ## The crash tests at full size (10,000 requests; needs POINTS_TEST_DATABASE_URL, PostgreSQL)
	@test -n "$$POINTS_TEST_DATABASE_URL" || { echo "set POINTS_TEST_DATABASE_URL (PostgreSQL)"; exit 1; }
	POINTS_CRASH_REQUESTS=10000 $(BIN)/pytest -n 0 -s -m crash tests/crash

lint: venv ## Lint with ruff
	$(BIN)/ruff check points_service config tests bench scripts wsgi.py

migration: venv ## Autogenerate a migration: make migration m="what changed" (review it!)
	$(BIN)/flask db migrate -m "$(m)"

screenshots: venv ## Rewrite docs/screenshots/*.png from a live console (needs Debian's chromium + fonts-noto-cjk)
	$(BIN)/python scripts/screenshots.py

jobs: venv ## Run the scheduler process (one per deployment)
	$(BIN)/flask jobs run

clean: ## Remove the virtualenv and caches (keeps instance/)
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache

.PHONY: help venv run test test-miniprogram fuzz crash lint migration jobs screenshots clean
