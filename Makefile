# Two entry points (see README): `make demo` runs the main job, `make test` passes the tests.
# Both create the virtualenv and the pinned toolchain when missing; a second run only checks.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.archon-deps

.PHONY: demo test venv toolchain lint typecheck pytest docs docs-check clean

demo: toolchain
	$(BIN)/archon demo

test: toolchain lint typecheck pytest

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

toolchain: venv
	$(BIN)/archon toolchain install

lint: venv
	$(BIN)/ruff check tools tests charts/archon/files
	$(BIN)/ruff format --check tools tests charts/archon/files
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy
	$(BIN)/mypy charts/archon/files/archon_hook.py

# The offline tests on two workers, then the tests on the real cluster on their own: a control
# plane starting beside two busy workers misses its start-up deadline on two cores.
pytest: venv
	$(BIN)/pytest -n 2 -m "not integration"
	$(BIN)/pytest -m integration

# Regenerate the chart's values schema and README table from the `# --` comments in values.yaml.
docs: venv
	$(BIN)/archon chart docs --write

docs-check: venv
	$(BIN)/archon chart docs --check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
