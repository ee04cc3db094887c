import contextlib
import os
import resource
import sys

import inceptionzoo  # noqa: F401  (before MXNet: this process and every process a test starts
#                          run MXNet on the same OpenMP threads, MXNET_OMP_MAX_THREADS, so that
#                          their float sums agree: inceptionzoo/_openmp.py)
import mxnet as mx
import pytest

from inceptionzoo.blocks import Branches, Inception, NaiveInception

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# no test writes into the user's weights folder (~/.inceptionzoo): a test that means the default
# folder sets INCEPTIONZOO_HOME itself (monkeypatch), or deletes it to test the default
if "INCEPTIONZOO_HOME" not in os.environ:
    import tempfile

    os.environ["INCEPTIONZOO_HOME"] = tempfile.mkdtemp(prefix="inceptionzoo-test-home-")
# the benchmarks' helpers, for their tests: the PyTorch twin's batch-norm randomiser and
# _sample_data.py (the small data sets of the tests and the benchmarks)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))  # the benchmarks' helpers, for their tests
from peers.gluon_twin import randomise_bn_statistics  # noqa: E402,F401


class FakeContext:
    """What MMS hands a handler: system properties and per-request response status."""

    def __init__(self, model_dir, batch_size=1):
        self.system_properties = {"model_dir": model_dir, "batch_size": batch_size}
        self.status, self.content_type = {}, {}

    def set_response_status(self, code=200, phrase="", idx=0):
        self.status[idx] = (code, phrase)

    def set_response_content_type(self, idx, value):
        self.content_type[idx] = value
MNIST_DIR = os.environ.get("INCEPTIONZOO_TEST_MNIST",
                           os.path.join(ROOT, "..", "shared", "data", "mnist"))


def torch_references(script, out, *args, reuse_env=None):
    """Run ``tests/reference/SCRIPT OUT ARGS...`` in the PyTorch side environment
    (``.venv-torch``, or ``$INCEPTIONZOO_TORCH_PYTHON``) and return ``OUT``; or, while
    developing, the existing folder that ``$REUSE_ENV`` names."""
    import pathlib
    import subprocess

    if reuse_env and os.environ.get(reuse_env):
        return pathlib.Path(os.environ[reuse_env])
    python = side_env_python(os.environ.get("INCEPTIONZOO_TORCH_PYTHON",
                                            os.path.join(ROOT, ".venv-torch", "bin", "python")),
                             "the PyTorch side environment (`make torch-env`, or set "
                             "INCEPTIONZOO_TORCH_PYTHON)")
    proc = subprocess.run([python, os.path.join(ROOT, "tests", "reference", script), str(out),
                           *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return pathlib.Path(out)


def inception_blocks(block):
    """Every Inception block (either variant) inside ``block``."""
    found = [block] if isinstance(block, (Inception, NaiveInception, Branches)) else []
    for child in block._children.values():
        found += inception_blocks(child)
    return found


#: networks above this input size are "big": their registry-driven tests are marked slow and
#: run on a small input (``test_shape``)
SMALL_HW = 64


def is_big(name):
    from inceptionzoo import model_info

    return model_info(name).input_shape[1] > SMALL_HW


def model_params(names=None):
    """Registry names for ``pytest.mark.parametrize``: the big (ImageNet) networks marked slow,
    so that ``pytest -m "not slow"`` keeps the MNIST ones."""
    from inceptionzoo import list_models

    return [pytest.param(n, marks=pytest.mark.slow) if is_big(n) else n
            for n in (list_models() if names is None else names)]


def test_shape(name):
    """``(C, H, W)`` a test feeds to model ``name``: the design shape of a small network, the
    smallest square input a big one takes (its ``check_input_shape`` decides)."""
    from inceptionzoo import get_model, model_info

    c, h, w = model_info(name).input_shape
    if not is_big(name):
        return (c, h, w)
    net = get_model(name)
    side = max(SMALL_HW, net.taken_sizes(0)[0], net.taken_sizes(1)[0])
    return (c, side, side)


test_shape.__test__ = False  # a helper, not a test


def built(name, batch=2, seed=0, **kwargs):
    """A registered model, initialised, with a random input batch of ``test_shape(name)``."""
    from inceptionzoo import get_model

    mx.random.seed(seed)
    net = get_model(name, **kwargs)
    net.initialize(mx.init.Xavier(magnitude=2))
    x = mx.nd.random.uniform(shape=(batch,) + test_shape(name))
    return net, x


#: set by `make test` (and so by CI): a missing side environment fails the tests that need it
#: instead of skipping them
REQUIRE_SIDE_ENVS = "INCEPTIONZOO_REQUIRE_SIDE_ENVS"


def side_env_python(python, what):
    """``python`` of a side environment built by `make test` (it cannot live beside MXNet 1.9.1),
    for a test that runs it in a subprocess. When it is missing the test is skipped, with a
    reason that names `make test`, or fails when ``$INCEPTIONZOO_REQUIRE_SIDE_ENVS`` is 1."""
    if os.path.isfile(python):
        return python
    message = f"{what} is missing ({python}): `make test` builds it"
    if os.environ.get(REQUIRE_SIDE_ENVS) == "1":
        pytest.fail(f"{message} ({REQUIRE_SIDE_ENVS}=1: this run needs every side environment)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def mnist_dir():
    if not os.path.isfile(os.path.join(MNIST_DIR, "t10k-images-idx3-ubyte.gz")):
        pytest.fail(f"real MNIST not found in {MNIST_DIR} (set INCEPTIONZOO_TEST_MNIST)")
    return MNIST_DIR


@contextlib.contextmanager
def address_space_limit(extra=2 << 30):
    """Cap this process's address space at its current size plus ``extra`` bytes for the body,
    so that code which allocates what a corrupt file claims fails with an error instead of
    exhausting the machine's memory."""
    with open("/proc/self/status") as f:
        size = int(next(line for line in f if line.startswith("VmSize:")).split()[1]) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
