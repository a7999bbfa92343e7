# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export THP_MEM_ALLOC_ENABLE := 1

.PHONY: install demo test bench-scan clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ascbench demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench-scan: $(STAMP)
	$(BIN)/ascbench bench scan

clean:
	rm -rf $(VENV) build *.egg-info
