# The README names these targets. `make run` needs only Python 3.11; `make test` needs PostgreSQL and Redis
# (started here if installed but stopped) and Debian's chromium for the browser tests.
PYTHON ?= python3.11
VENV := .venv
# The packages of the portal, bottom layer first (pyproject.toml's import-linter contract keeps them so).
APPS := ckycportal institutions accounts kwikid codelists records uploads registry bulkdata reports api kwikid_standin
BIN := $(VENV)/bin

TEST_ENV := DJANGO_SECRET_KEY=test-only-secret-key DJANGO_DEBUG=false DJANGO_ALLOWED_HOSTS=localhost,127.0.0.1,testserver \
	DJANGO_HTTPS=false \
	DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ckycportal} \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} \
	FIELD_ENCRYPTION_KEYS=oT9ZQ6t3u9c1Q0m0lBvV6b7w3mQyq2d9rQ2lq0x8k5E=,8m3Rz0x3Jb1cVQk2l7qkqWm2s9o0bJd5wKQ3t1f2eYk= \
	PII_HASH_KEY=test-only-pii-hash-key \
	PORTAL_LOCAL_DIR=$(CURDIR)/.local/test DJANGO_ALLOW_ASYNC_UNSAFE=true

.PHONY: run test lint format audit bench bench-import bench-api bench-list services clean totp

$(VENV): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)

run: $(VENV)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(BIN)/python manage.py runlocal

services:
	@scripts/ensure-services

test: $(VENV) services
	mkdir -p .local/test
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	DJANGO_DEBUG=true $(BIN)/mypy $(APPS)
	$(TEST_ENV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DJANGO_DEBUG=true $(BIN)/mypy $(APPS)

# Known advisories against the pinned dependencies (pip-audit); an unreachable advisory service is said,
# not failed on.
audit: $(VENV)
	$(BIN)/python scripts/audit_dependencies.py

format: $(VENV)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every benchmark row in one run, each goal met, MISSED or not judged (bench/run.py: uploads against KwikID's stand-in,
# the upload and import floors, scaling, memory, registry checks, the API). BENCH_ARGS=--quick makes every
# row small (about 2 minutes); --full measures the memory rows at a million; --profile py-spy profiles the
# worker. Table and figures in bench/results/latest.txt and latest.json.
bench: $(VENV) services
	$(TEST_ENV) $(BIN)/python bench/run.py $(BENCH_ARGS)

# The bulk import against a plain CSV -> regex -> COPY script; BENCH_ARGS="--memory-rows 1000000" adds the
# peak memory of a million-row import.
bench-import: $(VENV) services
	$(TEST_ENV) $(BIN)/python bench/import_bench.py $(BENCH_ARGS)

# 100,000 records through POST /api/v1/records/ (1,000 a request) against the bulk import, and ten clients
# at once (bench/api_bench.py).
bench-api: $(VENV) services
	$(TEST_ENV) $(BIN)/python bench/api_bench.py $(BENCH_ARGS)

# The records list, queue and searches over 1,000,000 records (seeded once into ckycportal_bench_list);
# BENCH_ARGS="--records 100000" for a quicker run, "--explain" for PostgreSQL's plans.
bench-list: $(VENV) services
	$(TEST_ENV) $(BIN)/python bench/list_bench.py $(BENCH_ARGS)

clean:
	rm -rf .local staticfiles

# The current two-factor code of a `make run` demo user (admin, checker): make totp WHO=checker
totp: $(VENV)
	@DJANGO_DEBUG=true $(BIN)/python manage.py demo_totp_code "$(WHO)"
