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
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/bayes-lac

report: install
	$(BIN)/bayes-lac report --la $(LA) --out reports/thurrock.html --pdf --xlsx

test: install
	$(BIN)/python -m pytest -q -n 2 --durations=15

test-fast: install
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache
