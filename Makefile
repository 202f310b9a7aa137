# Two set-up commands for a fresh machine (see README.md):
#   make report   installs into .venv/ and writes the Thurrock board report
#   make test     installs into .venv/ and runs the test suite
PYTHON := $(shell scripts/find-python)
VENV := .venv
BIN := $(VENV)/bin
LA ?= E06000034
export PYTENSOR_FLAGS ?= blas__ldflags=
export MPLBACKEND ?= Agg
# Python writes the bytecode of the package, the tests and the notebooks' imports (in
# __pycache__, ignored by git) even where the machine sets PYTHONDONTWRITEBYTECODE: otherwise every
# new process (CLI command, test worker, notebook kernel) compiles each module it imports again,
# and pytest rewrites every test module again in each worker.
export PYTHONDONTWRITEBYTECODE =

.PHONY: install install-dev report test test-fast clean

# Two installs into one environment: the package with what its commands need (make report),
# and the development extra on top (make test: test tools, notebooks' runner, numpyro, Dask).
# The report's environment leaves out the optional Dask extra: where Dask can be imported,
# xarray imports dask.array (and scipy with it) in every command that reads a run, about 0.5-1 s
# of each analysis command (bench/results/imports.txt).
#
# uv resolves and installs in parallel: about 60 s from an empty cache, against about 2 minutes
# for pip (measured on 2 cores). It compiles the bytecode as pip does: where
# PYTHONDONTWRITEBYTECODE is set, nothing else would, and each new process (CLI, notebook
# kernel, worker) would compile every module it imports. pip is used if uv cannot be had.
define pip_install
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv \
	  && $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '$(1)' \
	  || $(BIN)/python -m pip install --quiet -e '$(1)'
endef

$(VENV)/.installed: pyproject.toml
	$(call pip_install,.)
	touch $@

$(VENV)/.installed-dev: pyproject.toml
	$(call pip_install,.[dev])
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The report is written even if the fit fails its convergence checks, and then says so on
# every page; `bayes-lac report` without --allow-unconverged refuses such a fit. It is named
# after the authority (reports/thurrock.html for the default LA); --overwrite replaces the run
# of an earlier `make report` (reports/<name>_run.nc). Without Chromium, Chrome or Edge the
# PDF is skipped with a note and the HTML and workbook are still written.
report: install
	$(BIN)/bayes-lac compare --la $(LA) --out reports
	$(BIN)/bayes-lac report --la $(LA) --pdf --xlsx --allow-unconverged --overwrite

test: install-dev
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=15

# No fits: a test that samples fails here and must be marked slow.
test-fast: install-dev
	BAYES_LAC_NO_FITS=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow and not install"

clean:
	rm -rf $(VENV) .pytest_cache
