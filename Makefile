# BacktestLab — `make run` starts the lab, `make test` runs every test. Both set up what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: install run test test-unit test-integration bench lint lint-imports format chromium clean mutation mutation-changed

$(STAMP): pyproject.toml requirements.lock examples/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[test]"
	# The example strategies (docs/strategies.md), installed like a team's own package:
	# their entry points make the lab list them.
	$(BIN)/python -m pip install -q --no-deps -e ./examples
	touch $(STAMP)

# numba's on-disk cache does not notice edits in another module a cached kernel calls, so any
# engine change drops the compiled cache (it rebuilds on first use).
NUMBA_STAMP := $(VENV)/.numba-stamp
ENGINE_SRC := $(shell find backtestlab/engine -name '*.py')
$(NUMBA_STAMP): $(STAMP) $(ENGINE_SRC)
	find backtestlab -name '*.nbi' -delete -o -name '*.nbc' -delete
	touch $(NUMBA_STAMP)

install: $(STAMP) $(NUMBA_STAMP)

# web, worker and beat under supervisord (supervisord.conf, backtestlab/supervise.py): a process
# that dies is started again, the others keep running; Ctrl-C or SIGTERM stops them all.
run: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py bootstrap_demo
	DEBUG=1 exec $(BIN)/python -m backtestlab.supervise

# Debian's chromium for the browser tests (playwright drives /usr/bin/chromium, no download).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Ends with the mutation targets a change touched (nothing to run when mutation/scores.json is
# current; see docs/mutation.md).
test: install chromium lint-imports test-unit test-integration mutation-changed

# The architecture's contracts (pyproject.toml [tool.importlinter]; docs/architecture.md).
lint-imports: install
	$(BIN)/lint-imports

# Unit, service, API and page tests on SQLite. ARGS passes pytest options: ARGS="-k redis".
test-unit:
	$(BIN)/python -m pytest -q -m "not integration" $(ARGS)

# Real PostgreSQL + Redis + celery worker processes (+ headless chromium). Under CI=true a
# missing service fails the run instead of skipping.
test-integration:
	DATABASE_URL=$(PG_URL) CELERY_BROKER_URL=$(REDIS_URL) $(BIN)/python -m pytest -q -m integration $(ARGS)

# Not DEBUG: Django would record every query in the worker. The key only signs nothing here.
bench: install
	SECRET_KEY=$${SECRET_KEY:-bench-only-insecure-key-0123456789abcdefghijklmnopqrstuvwxyz} \
	DATABASE_URL=$(PG_URL) CELERY_BROKER_URL=$(REDIS_URL) $(BIN)/python manage.py bench

# Mutation testing (cosmic-ray) of the money-critical modules listed in mutation/targets.toml;
# prints each target's score and fails below 90 %. TARGETS=metrics,risk runs some of them.
mutation: install
	$(BIN)/python scripts/mutation.py $(if $(TARGETS),--targets $(TARGETS))

# Only the targets whose module, tests or settings changed since their score in
# mutation/scores.json (or that have none yet, or score below 90 %); the last step of `make test`.
mutation-changed: install
	$(BIN)/python scripts/mutation.py --changed

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache
