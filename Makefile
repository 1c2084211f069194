# Two commands on a fresh machine:
#   make demo   -> creates .venv, installs retalk (light: no torch), renders out/demo.mp4 from generated inputs
#   make test   -> creates .venv, installs retalk with the neural, ray and test extras, runs the whole suite
#                  and prints a skip summary (PYTEST_ARGS=... adds options; .ci/run adds --skip-allowlist)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
DEPS   := pyproject.toml constraints.txt
PYTEST_ARGS ?=

.PHONY: demo test install install-test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.base: $(PY) $(DEPS)
	$(PIP) install -c constraints.txt -e .
	touch $@

$(VENV)/.test: $(VENV)/.base $(DEPS)
	$(PIP) install -c constraints.txt -e '.[neural,ray,test]'
	touch $@

install: $(VENV)/.base
install-test: $(VENV)/.test

demo: $(VENV)/.base
	$(PY) -m retalk.demo --out out

test: $(VENV)/.test
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.test
	$(PY) benchmarks/sync_speed.py

clean:
	rm -rf out .pytest_cache
