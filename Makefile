# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export INCEPTIONZOO_TEST_MNIST ?= $(abspath ../shared/data/mnist)
export MXNET_STORAGE_FALLBACK_LOG_VERBOSE ?= 0

.PHONY: setup demo test clean torch-env system-deps

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
test: setup torch-env system-deps
	INCEPTIONZOO_REQUIRE_SIDE_ENVS=1 $(BIN)/python -m pytest

# What the suite needs outside Python, installed with apt-get when missing (as root, or through
# sudo): a Java runtime for MXNet Model Server (tests/test_mms.py) and OpenSSH's server and client
# for the ssh launcher's tests (tests/test_launch.py, tests/test_distributed.py start their own
# sshd on a loopback port). Present: nothing runs. Without apt-get or root the step stops and
# names what to install.
SUDO ?= $(shell [ "$$(id -u)" = 0 ] || command -v sudo)
APT_INSTALL = $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends
JAVA_PACKAGE = openjdk-17-jre-headless
SSH_PACKAGES = openssh-server openssh-client
SSHD ?= /usr/sbin/sshd

system-deps:
	@command -v java >/dev/null 2>&1 || { \
		echo "make: installing $(JAVA_PACKAGE) (MXNet Model Server needs Java)"; \
		$(APT_INSTALL) $(JAVA_PACKAGE); }
	@{ command -v ssh && { command -v sshd || test -x $(SSHD); }; } >/dev/null 2>&1 || { \
		echo "make: installing $(SSH_PACKAGES) (the ssh launcher's tests)"; \
		$(APT_INSTALL) $(SSH_PACKAGES); }

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
