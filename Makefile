# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export INCEPTIONZOO_TEST_MNIST ?= $(abspath ../shared/data/mnist)
export MXNET_STORAGE_FALLBACK_LOG_VERBOSE ?= 0

.PHONY: setup demo test bench docs clean

setup: $(STAMP)

$(STAMP): setup.cfg setup.py pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e '.[cpu,onnx,gluoncv,test]'
	touch $(STAMP)

demo: setup
	$(BIN)/inceptionzoo demo

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
