# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export INCEPTIONZOO_TEST_MNIST ?= $(abspath ../shared/data/mnist)
export MXNET_STORAGE_FALLBACK_LOG_VERBOSE ?= 0

.PHONY: setup demo test clean torch-env

setup: $(STAMP)

$(STAMP): setup.cfg setup.py pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e '.[cpu,onnx,onnxruntime,gluoncv,recordio,convert,serve,test]'
	touch $(STAMP)

demo: setup
	$(BIN)/inceptionzoo demo

# INCEPTIONZOO_REQUIRE_SIDE_ENVS=1: a test whose side environment is missing fails (a bare
# `pytest` skips it, naming `make test`)
test: setup torch-env
	INCEPTIONZOO_REQUIRE_SIDE_ENVS=1 $(BIN)/python -m pytest

# The PyTorch side environment of the conversion tests (tests/reference/make_references.py):
# torchvision / timm need torch >= 2.14 and numpy 2, which MXNet 1.9.1 cannot live with.
TORCH_VENV ?= .venv-torch
TORCH_STAMP := $(TORCH_VENV)/.installed

torch-env: $(TORCH_STAMP)

$(TORCH_STAMP):
	$(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		torch==2.14.1 torchvision==0.29.1 timm==1.0.31 safetensors==0.8.0
	touch $(TORCH_STAMP)

clean:
	rm -rf $(VENV) $(TORCH_VENV) build src/*.egg-info .pytest_cache
