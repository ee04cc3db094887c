import configparser
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

BLOCK_MXNET = """
import sys
class _NoMXNet:
    def find_spec(self, name, path=None, target=None):
        if name == 'mxnet' or name.startswith('mxnet.'):
            raise ImportError("No module named 'mxnet'")
sys.meta_path.insert(0, _NoMXNet())
"""


def test_import_without_mxnet_names_the_extras():
    code = BLOCK_MXNET + "import inceptionzoo\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: inceptionzoo needs MXNet")
    assert "-e '.[cpu]'" in last and "-e '.[cu112]'" in last
    # one clear message: the traceback does not go into MXNet or our submodules
    assert "_registry" not in proc.stderr and "mxnet/" not in proc.stderr


def test_every_requirement_is_pinned_by_constraints_and_the_pin_fits():
    """make/CI install with -c constraints.txt: a requirement without a pin, or a pin that its
    requirement refuses, would make the install float or fail."""
    from packaging.requirements import Requirement

    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    reqs = [line for line in cfg["options"]["install_requires"].splitlines() if line.strip()]
    for extra, text in cfg["options.extras_require"].items():
        if extra not in ("cu112", "torch"):  # not installed here: no GPU, torch is optional
            reqs += [line for line in text.splitlines() if line.strip()]
    pins = {}
    with open(os.path.join(ROOT, "constraints.txt")) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line:
                name, version = line.split("==")
                pins[name.lower().replace("_", "-")] = version
    for text in reqs:
        req = Requirement(text)
        key = req.name.lower().replace("_", "-")
        assert key in pins, f"{req.name} is required but not pinned in constraints.txt"
        assert req.specifier.contains(pins[key], prereleases=True), \
            f"constraints.txt pins {req.name}=={pins[key]}, outside {text!r}"


def test_installed_numpy_is_one_mxnet_can_use():
    import numpy

    major, minor = (int(v) for v in numpy.__version__.split(".")[:2])
    assert (major, minor) < (1, 24)


def test_console_script():
    exe = shutil.which("inceptionzoo", path=os.path.dirname(sys.executable))
    assert exe, "the inceptionzoo console script is not installed beside this python"
    out = subprocess.run([exe, "list"], capture_output=True, text=True, check=True).stdout
    assert "inception_mnist" in out.split()
    bad = subprocess.run([exe, "info", "nope_net"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown model 'nope_net'" in bad.stderr
    info = subprocess.run([exe, "info", "inception_mnist"], capture_output=True, text=True,
                          check=True).stdout
    assert "37922" in info.replace(",", "")


@pytest.mark.slow
def test_wheel_ships_weights_manifest_and_examples(tmp_path):
    """A regular (non-editable) install must carry the data the package reads at run time."""
    import zipfile

    # as a user builds it: pip reads pyproject.toml's [build-system] and builds in an isolated
    # environment with setuptools + wheel, whatever this venv holds
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                           "-w", str(tmp_path), ROOT],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(tmp_path.glob("inceptionzoo-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    from inceptionzoo import list_models, model_info

    for name in list_models():
        rec = model_info(name).pretrained
        if rec:
            assert f"inceptionzoo/pretrained/{rec['file']}" in names
    assert "inceptionzoo/pretrained/manifest.json" in names
    assert "inceptionzoo/pretrained/imagenet_classes.txt" in names  # labels of 1000 classes
    assert len([n for n in names if n.startswith("inceptionzoo/examples/digit-")]) == 10
    # developer tooling stays in the repository (benchmarks/), out of the installed package
    assert not [n for n in names if "/peers/" in n or n.endswith("/bench.py")], names
    assert "inceptionzoo/mms_handler.py" in names  # copied into every .mar
