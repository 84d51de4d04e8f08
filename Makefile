# fedtwin: `make demo` sets up and runs the whole loop; `make test` runs the unit and integration suites.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell (cat pyproject.toml; echo $(CURDIR)) | sha256sum | cut -c1-16)

.PHONY: setup demo test test-unit test-integration lint bench mutation stack-up stack-down clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/fedtwin stack up
	$(BIN)/fedtwin demo

# Three workers on two cores: the integration tests mostly wait on services, so their waits overlap with each
# other and with the CPU-bound unit tests (tests/conftest.py gives each worker its lane; see README "Tests").
test: setup
	$(BIN)/python -m pytest tests/unit tests/integration -n 3 --dist worksteal --durations=15

test-unit: setup
	$(BIN)/python -m pytest tests/unit

test-integration: setup
	$(BIN)/python -m pytest tests/integration

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy fedtwin federated plant_models monitoring tasks flows

bench: setup
	$(BIN)/python -m benchmarks.plant
	$(BIN)/python -m benchmarks.federated
	$(BIN)/python -m benchmarks.streaming
	$(BIN)/python -m benchmarks.drift_loop

# Mutation testing of the pure cores (slow; not part of `make test`). MODULES narrows it to folders/files,
# e.g. `make mutation MODULES=federated/strategy`; MUT_PYTHON runs it with another interpreter (e.g. a shared
# venv) without `setup`; MUTATION_ARGS=--cached re-tests only mutants not killed before.
# Ends with `mutation_score=<f> mutants=<n> survived=<n> equivalent=<n> minutes=<f>`.
MODULES       ?=
MUT_PYTHON    ?=
MUTATION_ARGS ?=
mutation: $(if $(MUT_PYTHON),,setup)
	$(or $(MUT_PYTHON),$(BIN)/python) tools/mutation_report.py --run $(MUTATION_ARGS) $(MODULES)

stack-up: setup
	$(BIN)/fedtwin stack up

stack-down:
	$(BIN)/fedtwin stack down

clean: stack-down
	rm -rf .fedtwin out
