# The course's commands. The first use of any target creates .venv with pip
# from pyproject.toml; later uses reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
EXTRAS ?= cpu,course,dev,postgres,cluster

.PHONY: demo test claims lint lab lab-args bench browser postgres sandbox clean help
help:
	@echo "make demo   device report, reference training run (cpu profile), summary"
	@echo "make test   lint and the whole test suite"
	@echo "make claims every lesson run in the cpu profile, and the claims its text makes"
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

# What each lesson's text says its runs show, checked on runs in the cpu profile (the
# profile of laptops, JupyterHub and Colab's default): about 6 minutes a lesson. Also
# every kept submission graded in the smoke profile against the grading profile
# (make test compares the few that cover every hidden test).
claims: $(STAMP) sandbox
	COURSE_CLAIMS_PROFILE=cpu $(PY) -m pytest tests/test_lesson00.py tests/test_lesson01.py \
	  tests/test_lesson02.py tests/test_lesson03.py tests/test_lesson04.py tests/test_lesson05.py \
	  "tests/test_grading.py::test_the_grading_profile_gives_every_submission_the_points_of_the_smoke_profile"

# Debian packages the tests start for real, installed with apt-get where we can (root, as
# in CI); elsewhere the message says what to install. $(call apt_need,FOUND,PACKAGE,WHAT
# FOR,OTHERWISE): FOUND is a shell test that succeeds when the tool is already there.
define apt_need
	@if ! { $(1); }; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's $(2) $(3)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq $(2) >/dev/null \
	      || { apt-get update -qq && apt-get install -y -qq $(2) >/dev/null; }; \
	  else \
	    echo "$(4)"; exit 1; \
	  fi; \
	fi
endef

# The browser tests drive Debian's Chromium (not a browser downloaded by a test tool).
browser:
	$(call apt_need,[ -n "$$CHROMIUM" ] || command -v chromium >/dev/null 2>&1,chromium,for the browser tests,The browser tests need Chromium: apt-get install chromium (Debian/Ubuntu) or set CHROMIUM=/path/to/chromium)

# The shared-gradebook tests start a throw-away PostgreSQL server.
postgres:
	$(call apt_need,[ -n "$$PG_BIN" ] || command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1,postgresql,for the gradebook tests,The gradebook tests need PostgreSQL's server: apt-get install postgresql (Debian/Ubuntu) or set PG_BIN=/path/to/postgresql/bin)

# `course grade` runs students' kernels in bubblewrap's sandbox; its tests need it as
# graders do.
sandbox:
	$(call apt_need,command -v bwrap >/dev/null 2>&1,bubblewrap,for the grading sandbox,Grading needs bubblewrap: apt-get install bubblewrap (Debian/Ubuntu) or dnf install bubblewrap (Fedora))

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
