# The course's commands. The first use of any target creates .venv with pip
# from pyproject.toml; later uses reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
EXTRAS ?= cpu,course,dev,postgres,cluster

.PHONY: demo test lint lab lab-args bench browser postgres sandbox clean help
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

test: $(STAMP) lint browser postgres sandbox
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

# The shared-gradebook tests start a throw-away PostgreSQL server: Debian's package,
# installed with apt-get where we can (root); elsewhere set PG_BIN=/path/to/postgresql/bin.
postgres:
	@if [ -z "$$PG_BIN" ] && ! command -v pg_ctl >/dev/null 2>&1 \
	    && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's postgresql for the gradebook tests"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq postgresql >/dev/null \
	      || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }; \
	  else \
	    echo "The gradebook tests need PostgreSQL's server: apt-get install postgresql" \
	         "(Debian/Ubuntu), or set PG_BIN=/path/to/postgresql/bin"; exit 1; \
	  fi; \
	fi

# `course grade` runs students' kernels in bubblewrap's sandbox (Debian's package); its
# tests need it as graders do. Installed with apt-get where we can (root).
sandbox:
	@if ! command -v bwrap >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's bubblewrap for the grading sandbox"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq bubblewrap >/dev/null \
	      || { apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; }; \
	  else \
	    echo "Grading needs bubblewrap: apt-get install bubblewrap (Debian/Ubuntu)," \
	         "dnf install bubblewrap (Fedora)"; exit 1; \
	  fi; \
	fi

lint: $(STAMP)
	$(PY) -m ruff check .

# JupyterLab from the repository root: students open notebooks/, and nbgrader_config.py
# here points the Formgrader at the course in assignments/. `make lab-args` prints the
# arguments, so tests/test_formgrader.py starts JupyterLab exactly the same way.
LAB_ARGS = --notebook-dir=. $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/jupyter lab $(LAB_ARGS)

lab-args:
	@echo $(LAB_ARGS)

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) runs build *.egg-info .pytest_cache
