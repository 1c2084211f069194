# Two commands on a fresh machine:
#   make demo   -> creates .venv, installs retalk (light: no torch), renders out/demo.mp4 from generated inputs
#   make test   -> creates .venv, installs retalk with the neural, ray, serve and test extras (and Debian's chromium
#                  for the browser test, when it is missing), runs the whole suite and prints a skip summary
#                  (PYTEST_ARGS=... adds options; .ci/run adds --skip-allowlist)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
DEPS   := pyproject.toml constraints.txt
PYTEST_ARGS ?=

.PHONY: demo test install install-test browser bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.base: $(PY) $(DEPS)
	$(PIP) install -c constraints.txt -e .
	touch $@

$(VENV)/.test: $(VENV)/.base $(DEPS)
	$(PIP) install -c constraints.txt -e '.[neural,ray,serve,test]'
	touch $@

# The browser test drives Debian's chromium (/usr/bin/chromium) with Playwright: no browser download.
# Installed here when missing (as root, or with password-less sudo); if that fails the browser test fails loudly.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
browser:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || { \
	  echo "installing chromium (apt-get) for the browser test"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	} || echo "WARNING: could not install chromium; tests/test_serve_browser.py will fail"

install: $(VENV)/.base
install-test: $(VENV)/.test browser

demo: $(VENV)/.base
	$(PY) -m retalk.demo --out out

test: $(VENV)/.test browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.test
	$(PY) benchmarks/sync_speed.py

clean:
	rm -rf out .pytest_cache
