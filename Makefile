# The two commands: `make run` (install + start the server) and `make test` (install + lint,
# type check and pytest). Everything else is a habit of its own.
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
N ?= 2

.PHONY: install system-deps run run-cluster worker test quick lint typecheck pytest bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	touch $@

install: $(VENV)/.installed

# Debian packages the tests use: a real redis-server, openssl (TLS test certificates), DejaVu
# and emoji fonts, espeak-ng, Chromium's headless shell for the browser tests (tests/web), and
# nginx in front of several instances (tests/cluster/test_nginx.py, `make run-cluster`).
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing="$$missing fonts-noto-color-emoji"; \
	[ -e /usr/lib/chromium/chromium-headless-shell ] || missing="$$missing chromium-headless-shell"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "Please install:$$missing (sudo apt-get install -y$$missing)"; exit 1; fi; \
	fi

# uvicorn with the settings' server options: the h11 parser with HTTP_MAX_HEADER_BYTES, and
# X-Forwarded-For trusted from FORWARDED_ALLOW_IPS only (see README, "Running behind a proxy").
run: install
	$(PY) -m app.main --host $(HOST) --port $(PORT)

# A render worker on the durable queue (app/video/queue.py); start as many as you like.
worker: install
	$(PY) -m app.worker

# N instances (ports PORT+1..PORT+N) on REDIS_URL, with nginx in front on HOST:PORT, configured
# as in docs/deploy.md. Several instances need Redis: without it, it says so and stops.
run-cluster: install
	$(PY) -m deploy.run_cluster --instances $(N) --host $(HOST) --port $(PORT)

lint: install
	$(VENV)/bin/ruff check app tests bench deploy

typecheck: install
	$(VENV)/bin/mypy

# One worker per core: the tests spend most of their time waiting on real servers.
pytest: install system-deps
	$(VENV)/bin/pytest -n auto

test: system-deps lint typecheck pytest

# The inner loop: every test not marked slow, stopping at the first failure.
quick: install
	$(VENV)/bin/pytest -n auto -m "not slow" -x -q

bench: install system-deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
