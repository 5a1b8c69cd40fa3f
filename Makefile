# The course's commands. The first use of any target creates .venv with pip
# from pyproject.toml; later uses reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
EXTRAS ?= cpu,course,dev

.PHONY: demo test lint lab bench browser clean help
help:
	@echo "make demo   device report, reference training run (cpu profile), summary"
	@echo "make test   lint and the whole test suite"
	@echo "make lab    JupyterLab on the course"
	@echo "make bench  the benchmark scripts (figures printed as JSON)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10+ is required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/course demo

test: $(STAMP) lint browser
	$(PY) -m pytest

# The browser tests drive Debian's Chromium (not a browser downloaded by a test tool).
# Installed with apt-get where we can (root, as in CI); elsewhere set CHROMIUM=/path.
browser:
	@if [ -z "$$CHROMIUM" ] && ! command -v chromium >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq chromium >/dev/null \
	      || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; \
	  else \
	    echo "The browser tests need Chromium: apt-get install chromium (Debian/Ubuntu)," \
	         "or set CHROMIUM=/path/to/chromium"; exit 1; \
	  fi; \
	fi

lint: $(STAMP)
	$(PY) -m ruff check .

lab: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/jupyter lab --notebook-dir=.

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) runs build *.egg-info .pytest_cache
