"""Folders and names that hold glob characters (``[``, ``]``, ``*``, ``?``) are taken literally
by every lookup: the Predictor, ``predict``, ``tune``, ``export --overwrite``, the MMS handler,
train's checkpoint lookup and the shipped example digits. A glob over such a path found nothing
(``run[1]/``) or, worse, the files of another folder (``run?/`` matched ``runA/``)."""
import os
import shutil
import subprocess
import sys

import pytest

from inceptionzoo import get_model
from inceptionzoo.mnist import example_images
from inceptionzoo.export import export
from inceptionzoo.serving import PredictionError, Predictor

EXE = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")
ODD = ["run[1]", "a*b", "what?", "[x]"]


@pytest.fixture(scope="module")
def net():
    return get_model("inception_mnist", pretrained=True)


@pytest.mark.slow
@pytest.mark.parametrize("folder", ODD)
def test_predictor_predict_tune_and_overwrite_in_a_glob_folder(net, tmp_path, folder):
    out = tmp_path / folder
    export(net, str(out) + os.sep)
    image = example_images()[0]
    truth = os.path.basename(image).split("-")[1]
    assert Predictor(str(out)).predict_files([image], top_k=1)[0][0][0] == truth
    run = subprocess.run([EXE, "predict", str(out), image], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split(": ", 1)[1].startswith(f"{truth} (")
    run = subprocess.run([EXE, "tune", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert os.path.isfile(out / "inception_mnist-tuning.json")
    run = subprocess.run([EXE, "export", "inception_mnist", "--pretrained", "--out", str(out),
                          "--overwrite"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert Predictor(str(out)).meta["model"] == "inception_mnist"


def test_export_name_with_glob_characters(net, tmp_path):
    export(net, str(tmp_path / "exports[2]" / "net[1]"))
    pred = Predictor(str(tmp_path / "exports[2]"), name="net[1]")
    assert pred.meta["params_file"] == "net[1]-0000.params"


def test_a_glob_folder_never_finds_another_folders_export(net, tmp_path):
    export(net, str(tmp_path / "runA") + os.sep)
    os.makedirs(tmp_path / "run?")
    with pytest.raises(PredictionError, match=r"run\?'.*found none"):
        Predictor(str(tmp_path / "run?"))


def test_mms_handler_in_a_glob_folder(net, tmp_path):
    from inceptionzoo.mms_handler import InceptionZooService

    out = tmp_path / "model[1]"
    export(net, str(out) + os.sep)

    class Context:
        system_properties = {"model_dir": str(out), "batch_size": 1}

    service = InceptionZooService()
    service.initialize(Context())
    assert service.initialized and service.meta["model"] == "inception_mnist"


def _tiny_mnist(folder, mnist_dir):
    from inceptionzoo.mnist import MNIST_FILES, load_mnist, write_idx

    os.makedirs(folder)
    for split in (True, False):
        x, y = load_mnist(mnist_dir, train=split)
        write_idx(os.path.join(folder, MNIST_FILES[split][0]), x[:50])
        write_idx(os.path.join(folder, MNIST_FILES[split][1]), y[:50])
    return folder


@pytest.mark.slow
def test_train_resumes_in_a_glob_folder_and_only_from_it(tmp_path, mnist_dir):
    from inceptionzoo.train import train

    data = _tiny_mnist(str(tmp_path / "data[1]"), mnist_dir)
    quiet = dict(data_dir=data, recipe="seed", batch_size=50, progress=False)
    train(epochs=1, out=str(tmp_path / "run[1]"), log=lambda *a: None, **quiet)
    lines = []
    m = train(epochs=2, out=str(tmp_path / "run[1]"), resume=True, log=lines.append, **quiet)
    assert any("resuming from" in line and "run[1]" in line for line in lines), lines
    assert [e["epoch"] for e in m["epochs"]] == [1, 2]
    # `run?` matches `runA` as a glob: its checkpoints are not this folder's
    shutil.copytree(tmp_path / "run[1]", tmp_path / "runA")
    lines = []
    train(epochs=1, out=str(tmp_path / "run?"), resume=True, log=lines.append, **quiet)
    assert not any("resuming from" in line for line in lines), lines
    assert sorted(os.listdir(tmp_path / "run?")) == [
        "curves.png", "inception_mnist-0001.params", "inception_mnist-0001.states",
        "metrics.json"]


def test_example_digits_found_in_a_glob_install_folder(tmp_path):
    import inceptionzoo

    site = tmp_path / "site[1]"
    shutil.copytree(os.path.dirname(inceptionzoo.__file__), site / "inceptionzoo")
    run = subprocess.run([sys.executable, "-c", "from inceptionzoo.mnist import example_images;"
                          " import inceptionzoo; print(inceptionzoo.__file__);"
                          " print(len(example_images()))"],
                         env=dict(os.environ, PYTHONPATH=str(site)), capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    where, count = run.stdout.split()
    assert where.startswith(str(site))
    assert int(count) == len(example_images()) > 0
