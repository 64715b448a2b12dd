# Two commands on a fresh machine: `make demo` and `make test`. Each builds its own venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-quick bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,data,bench]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m lstmkit demo

test: $(STAMP) browser
	$(PY) -m pytest -q tests

# Test set-up: the browser tests of `lstmkit serve` drive Debian's headless Chromium through its chromedriver.
# Installed with apt-get when missing (as root, or with passwordless sudo); never downloaded from a CDN.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "make: chromium and chromium-driver are missing and I cannot install them without root:" \
	    "the browser tests will fail (sudo apt-get install chromium chromium-driver)"; exit 0; fi; \
	  echo "make: installing Debian's chromium and chromium-driver for the browser tests"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    chromium chromium-driver >/dev/null; }

test-quick: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) runs .pytest_cache
