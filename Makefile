# Two set-up commands for a fresh machine (see README.md):
#   make report   installs into .venv/ and writes the Thurrock board report
#   make test     installs into .venv/ and runs the test suite
PYTHON := $(shell scripts/find-python)
VENV := .venv
BIN := $(VENV)/bin
LA ?= E06000034
export PYTENSOR_FLAGS ?= blas__ldflags=
export MPLBACKEND ?= Agg

.PHONY: install report test test-fast clean

$(BIN)/bayes-lac: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# uv resolves and installs in parallel: about 60 s from an empty cache, against about 2
	# minutes for pip (measured on 2 cores). It compiles the bytecode as pip does: where
	# PYTHONDONTWRITEBYTECODE is set, nothing else would, and each new process (CLI, notebook
	# kernel, worker) would compile every module it imports. pip is used if uv cannot be had.
	$(BIN)/python -m pip install --quiet uv \
	  && $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]' \
	  || $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/bayes-lac

# The report is written even if the fit fails its convergence checks, and then says so on
# every page; `bayes-lac report` without --allow-unconverged refuses such a fit. It is named
# after the authority (reports/thurrock.html for the default LA); --overwrite replaces the run
# of an earlier `make report` (reports/<name>_run.nc). Without Chromium, Chrome or Edge the
# PDF is skipped with a note and the HTML and workbook are still written.
report: install
	$(BIN)/bayes-lac compare --la $(LA) --out reports
	$(BIN)/bayes-lac report --la $(LA) --pdf --xlsx --allow-unconverged --overwrite

test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=15

# No fits: a test that samples fails here and must be marked slow.
test-fast: install
	BAYES_LAC_NO_FITS=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow and not install"

clean:
	rm -rf $(VENV) .pytest_cache
