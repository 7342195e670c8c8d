# `make test` and `make demo` do all the set-up themselves: they create .venv when it is missing,
# install torch 2.13.0 (CPU) first, then this package with a constraint that keeps that torch.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lesionseg-installed
DEMO_DIR ?= demo-output
PYTEST_ARGS ?=

.PHONY: test demo venv clean benchmarks

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest Testing $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/lesionseg demo $(DEMO_DIR)

benchmarks: $(STAMP)
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
