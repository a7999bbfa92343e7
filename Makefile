# Two entry points for a fresh machine: `make demo` and `make test`.
# Both install from the committed lock (requirements/lock.txt, exported from uv.lock) first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export THP_MEM_ALLOC_ENABLE := 1

# The lock: uv.lock is the universal source; requirements/*.txt are its pip-installable exports
# (requirements/lock.sh makes and checks them). uv, pinned and hash-checked, only makes the lock:
# installing needs nothing but pip.
LOCK := requirements/lock.txt
LOCK_NO_TORCH := requirements/lock-without-torch.txt
BUILD_LOCK := requirements/build.txt
TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv
PIP_LOCKED := -m pip install --require-hashes --no-deps --disable-pip-version-check
EDITABLE := -m pip install --no-deps --no-build-isolation --no-index --disable-pip-version-check -q -e .
WHEELHOUSE ?=
OFFLINE = $(if $(WHEELHOUSE),--no-index --find-links $(WHEELHOUSE))
LATEST := build/latest-venv

.PHONY: install install-system-torch wheelhouse demo test lint bench-scan gpu-check lock lock-check check-latest clean

# A venv made by `make install-system-torch` sees the machine's torch: it takes the lock without
# torch, torchaudio and their CUDA stack, which the install check then holds to pyproject's ranges.
SYSTEM_TORCH = $(shell grep -qs '^include-system-site-packages = true' $(VENV)/pyvenv.cfg && echo yes)
ACTIVE_LOCK = $(if $(SYSTEM_TORCH),$(LOCK_NO_TORCH),$(LOCK))

$(STAMP): $(LOCK) $(LOCK_NO_TORCH) $(BUILD_LOCK) pyproject.toml
	rm -f $(STAMP)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP_LOCKED) $(OFFLINE) -r $(BUILD_LOCK)
	$(BIN)/python $(PIP_LOCKED) $(OFFLINE) --no-build-isolation -r $(ACTIVE_LOCK)
	$(BIN)/python $(EDITABLE)
	$(BIN)/python -m harness.install_check --lock $(ACTIVE_LOCK)
	touch $(STAMP)

install: $(STAMP)

# torch and torchaudio from PYTHON's own site-packages (GPU boxes often ship them), the rest from
# the lock; with WHEELHOUSE=DIR (see `make wheelhouse`) nothing is fetched from a registry.
install-system-torch:
	$(PYTHON) -m venv --clear --system-site-packages $(VENV)
	$(MAKE) --no-print-directory install

# Run on a networked machine of the target's platform and Python; copy WHEELHOUSE across.
wheelhouse:
	$(PYTHON) -m pip download --require-hashes --no-deps -r $(BUILD_LOCK) -r $(LOCK_NO_TORCH) -d $(or $(WHEELHOUSE),wheelhouse)

demo: $(STAMP)
	$(BIN)/ascbench demo

# ruff first (the rule set is in pyproject.toml: complexity <= 15 among others), then every test;
# the slowest are listed at the end so a new slow test is seen and marked.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .

bench-scan: $(STAMP)
	$(BIN)/ascbench bench scan

# On a GPU machine, with nothing but the machine's torch (no venv, no downloads): CUDA parity
# checks, one bf16 training step of ascmamba_base, the scan and train benchmarks on CUDA.
GPU_CHECK_OUT ?= $(if $(OUT),$(OUT),build)/gpu-check.json
gpu-check:
	mkdir -p $(dir $(GPU_CHECK_OUT))
	$(PYTHON) -m harness.bench.gpu_check --out $(GPU_CHECK_OUT)

$(UV): requirements/uv.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python $(PIP_LOCKED) -q -r requirements/uv.txt
	touch $(UV)

# Re-resolve after editing pyproject's dependencies; keeps every pin that still fits.
lock: $(UV)
	UV=$(UV) requirements/lock.sh write

# CI runs this first: pyproject.toml, uv.lock and requirements/*.txt must agree.
lock-check: $(UV)
	@UV=$(UV) requirements/lock.sh check

# The newest versions pyproject admits, in a throwaway venv, against the fast tests. --no-config:
# the lock's [tool.uv] constraints must not apply here; uv also ignores the machine's pip caps.
check-latest: $(UV)
	rm -rf $(LATEST)
	$(UV) venv --no-config --quiet --seed --python $(PYTHON) $(LATEST)
	$(UV) pip install --no-config --quiet --python $(LATEST)/bin/python --resolution highest -e ".[test]"
	$(UV) pip freeze --python $(LATEST)/bin/python > $(LATEST)/versions.txt
	$(LATEST)/bin/python -m harness.install_check
	$(LATEST)/bin/python -m pytest -q -m "not slow" -p no:cacheprovider

clean:
	rm -rf $(VENV) $(TOOLS) build *.egg-info
