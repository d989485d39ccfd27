# Two commands matter: `make run` and `make test`. See README.md.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run serve test bench install install-test system-deps migrate seed worker check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test system-deps

# Debian's chromium drives the browser tests (Playwright never downloads one);
# gettext compiles translations; redis-server runs the system tests' own
# (restartable) Redis; nginx fronts the production topology in the system test
# and the benchmark; pg_dump/pg_restore back up and restore (deploy/backup.sh),
# and let the confidentiality test read a dump of the database for plaintext;
# gpg encrypts the key backup; systemd-analyze checks the units in deploy/.
DEBIAN_PACKAGES := chromium gettext fonts-dejavu-core redis-server postgresql-client nginx-light gpg systemd
system-deps:
	@PATH="$$PATH:/usr/sbin"; for tool in chromium msgfmt redis-server pg_dump pg_restore nginx gpg systemd-analyze; do \
	  command -v $$tool >/dev/null || missing=1; done; [ -z "$$missing" ] || { \
	  echo "Installing Debian packages: $(DEBIAN_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; }

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py seed_demo_agreement

# Daphne (odr/server.py) and the job worker, started and stopped together by
# odr/launcher.py: Ctrl-C, SIGTERM to the terminal's process group or to make
# alone stop both within ODR_SHUTDOWN_GRACE_SECONDS (10) and leave nothing
# behind. `exec`, so that the launcher is make's own child: make passes its
# SIGTERM on to it.
LAUNCH = exec $(BIN)/python -m odr.launcher --bind $(HOST) --port $(PORT)

# The embedded default: SQLite (WAL) and the in-memory channel layer, with the
# job queue's worker beside Daphne. Ctrl-C stops both.
run: export DATABASE_URL :=
run: export REDIS_URL :=
run: export SITE_URL := http://$(HOST):$(PORT)
run: migrate
	@# The development CA and platform seal (kept once made), then seed, deliver
	@# the emails already due (printed here), then list the accounts.
	@$(BIN)/python manage.py make_dev_ca
	@$(BIN)/python manage.py seed_demo >/dev/null
	@$(BIN)/python manage.py seed_demo_agreement >/dev/null
	@$(BIN)/python manage.py db_worker --batch --no-startup-delay --interval 0 2>/dev/null
	@$(BIN)/python manage.py seed_demo
	@echo
	@echo "  Site:  http://$(HOST):$(PORT)/   (sign in with an account above)"
	@echo "  Admin: http://$(HOST):$(PORT)/admin/   (admin@demo.kz)"
	@echo "  Emails (invitation links, verification, signing codes) are printed in this terminal."
	@echo "  Verify a sealed agreement: http://$(HOST):$(PORT)/verify/   (trust root: $(CURDIR)/.pki/ca.pem)"
	@echo
	@$(LAUNCH)

# The same two processes on the database and channel layer the environment
# names (DATABASE_URL, REDIS_URL), without migrating or seeding.
serve: install
	@$(LAUNCH)

worker: install
	$(BIN)/python manage.py db_worker

# The whole suite; on PostgreSQL + Redis when they answer on 127.0.0.1,
# otherwise on SQLite + in-memory (and says so).
test: install-test
	@set -a; eval "$$($(BIN)/python tests/detect_services.py)"; set +a; \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The production topology under load (nginx, 2 Daphne, the worker, PostgreSQL,
# Redis): writes docs/performance.md. Needs PostgreSQL on 127.0.0.1:5432 (it
# creates the database odr_bench there). About 20 minutes; BENCH_ARGS="--rooms
# 40 --duration 20" for a quick look (see `python -m tests.bench.run --help`).
bench: install-test
	@set -a; eval "$$($(BIN)/python tests/detect_services.py)"; set +a; \
	$(BIN)/python -m tests.bench.run $(BENCH_ARGS)

check: install
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) .static .media .test-db.sqlite3* *.egg-info
	@echo "Kept: db.sqlite3, .odr-master-key and .pki/ (delete them yourself to start over)."
