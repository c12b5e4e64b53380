# sessionward — the two commands of the README, plus the long runs.
#   make demo   set everything up and run the demo app on the embedded SQLite default
#   make test   set everything up (incl. redis-server and chromium via apt-get) and run every test
#   make bench / make bench-quick / make soak   measurements and long runs (not part of `make test`)
#   make faults the fault report (Redis failover, disk full, kill -9): bench/results/faults.md
#   make docs   the documentation site (mkdocs, --strict) in build/site; make dist   the wheel

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

.PHONY: demo test lint typecheck unit system-deps bench bench-quick soak faults walkthrough clean docs dist

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "sessionward needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	@touch $@

# Real services the tests start on loopback: redis-server/redis-cli (single node and a
# 3-master cluster), Debian's chromium for the browser tests, and php-cli, php-fpm,
# nginx and php-redis (phpredis, for the PHP benchmark) for the PHP client's tests.
# Installed when missing; apt waits for another engineer's dpkg lock instead of failing
# (DPkg::Lock::Timeout), and `apt-get update`, whose lists lock has no timeout, is retried.
APT_GET := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -o DPkg::Lock::Timeout=600
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v redis-cli >/dev/null 2>&1 || missing="$$missing redis-tools"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v php >/dev/null 2>&1 || missing="$$missing php-cli"; \
	ls /usr/sbin/php-fpm* >/dev/null 2>&1 || missing="$$missing php-fpm"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	php -m 2>/dev/null | grep -qx redis || missing="$$missing php-redis"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  for i in 1 2 3 4 5 6 7 8 9 10; do $(APT_GET) update -qq && break; \
	    echo "apt-get update failed (another apt holds the lists lock?); retrying in 30 s"; sleep 30; done; \
	  $(APT_GET) install -y -qq $$missing >/dev/null; \
	fi
	@# Debian's redis-server, php-fpm and nginx packages may start system instances; the
	@# tests never use them (they run their own on free ports, in temporary directories).
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v chromium >/dev/null \
	  && command -v php >/dev/null && ls /usr/sbin/php-fpm* >/dev/null 2>&1 && [ -x /usr/sbin/nginx ] \
	  || { echo "system dependencies missing (redis-server, redis-cli, chromium, php-cli, php-fpm, nginx)"; exit 1; }

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy src

test: $(STAMP) system-deps lint typecheck docs
	CI=$${CI:-1} $(BIN)/pytest -p no:cacheprovider

# The documentation site: docs/*.md plus the API reference generated from the
# docstrings (mkdocstrings); --strict turns a broken link or reference into a failure.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

# The wheel (templates, static files, py.typed and LICENSE inside); tests/test_packaging.py
# builds one the same way and installs it into a fresh venv.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir dist .
	@ls dist/*.whl

unit: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider -m "not slow and not browser"

demo: $(STAMP)
	$(BIN)/sessionward demo --data-dir demo-data

walkthrough: $(STAMP)
	$(BIN)/python -m sessionward.demo.walkthrough

bench: $(STAMP) system-deps
	$(BIN)/python -m bench.run

bench-quick: $(STAMP) system-deps
	$(BIN)/python -m bench.run --quick

# The fault scenarios of bench/faults/ (long forms; the short ones run in `make test`),
# each bounded in time, written as one table to bench/results/faults.md.
faults: $(STAMP) system-deps
	$(BIN)/python -m bench.faults.run

# Long runs: hypothesis with many more examples, the multi-process races 10 times over,
# and the long fault scenarios (their report goes to build/, not over the committed one).
soak: $(STAMP) system-deps
	HYPOTHESIS_PROFILE=soak $(BIN)/pytest -p no:cacheprovider tests/core/test_ids.py tests/core/test_codec.py \
	  tests/core/test_record.py tests/protocol tests/daemon
	for i in 1 2 3 4 5 6 7 8 9 10; do \
	  $(BIN)/pytest -p no:cacheprovider -q -m slow tests/contract || exit 1; done
	$(BIN)/python -m bench.faults.run --out build/faults.md

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache demo-data
