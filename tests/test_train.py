import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from inceptionzoo.mnist import MNIST_FILES, load_mnist, write_idx
from inceptionzoo.train import RECIPES, evaluate, parse_ctx, train
from _sample_data import write_mnist_subset


def _subset(folder, mnist_dir, n_train, n_test):
    return write_mnist_subset(folder, mnist_dir, n_train, n_test, gzip_labels=True)


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory, mnist_dir):
    """600 real training digits and 300 real test digits, as IDX files."""
    return write_mnist_subset(str(tmp_path_factory.mktemp("mnist_small")), mnist_dir, 600, 300)


@pytest.fixture(scope="module")
def one_batch_mnist(tmp_path_factory, mnist_dir):
    """100 training digits: one update of the seed recipe."""
    return write_mnist_subset(str(tmp_path_factory.mktemp("mnist_one")), mnist_dir, 100, 100)


def _params(net):
    return {k: v.data().asnumpy() for k, v in net.collect_params().items()}


def test_outputs_and_checkpoints(small_mnist, tmp_path):
    m = train(data_dir=small_mnist, recipe="seed", epochs=2, out=str(tmp_path),
              progress=False, log=lambda *a: None)
    names = sorted(os.listdir(tmp_path))
    assert names == ["curves.png", "inception_mnist-0001.params", "inception_mnist-0001.states",
                     "inception_mnist-0002.params", "inception_mnist-0002.states",
                     "metrics.json"]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["recipe"] == dict(RECIPES["seed"].__dict__, epochs=2)
    assert [e["epoch"] for e in saved["epochs"]] == [1, 2]
    assert saved["accuracy"] == m["accuracy"] == saved["epochs"][-1]["test_accuracy"]
    assert saved["num_train"] == 600 and saved["num_test"] == 300
    assert saved["epochs"][1]["train_loss"] < saved["epochs"][0]["train_loss"]
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the checkpoint evaluates to the recorded accuracy
    r = evaluate(params=saved["params"], data_dir=small_mnist)
    assert r["accuracy"] == saved["accuracy"] and r["num_samples"] == 300
    assert not [n for n in names if n.endswith(".tmp")]


def test_resume_continues_where_it_stopped(small_mnist, tmp_path):
    quiet = dict(data_dir=small_mnist, recipe="default", batch_size=50, progress=False,
                 log=lambda *a: None)
    straight = train(epochs=2, out=str(tmp_path / "a"), **quiet)
    train(epochs=1, out=str(tmp_path / "b"), **quiet)
    lines = []
    resumed = train(epochs=2, out=str(tmp_path / "b"), resume=True,
                    **dict(quiet, log=lines.append))
    assert any("resuming from" in line and "-0001.params" in line for line in lines)
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2]
    a, b = _params(straight["net"]), _params(resumed["net"])
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_two_cpu_contexts_match_one(one_batch_mnist):
    """One update with the batch split over two contexts and reduced by the KVStore equals one
    update on one context (a missing reduction or a wrong scale would differ by ~1e-2)."""
    quiet = dict(data_dir=one_batch_mnist, recipe="seed", epochs=1, progress=False,
                 log=lambda *a: None)
    one = train(ctx="cpu", **quiet)
    two = train(ctx="cpu0,cpu1", **quiet)
    assert two["contexts"] == ["cpu(0)", "cpu(1)"]
    a, b = _params(one["net"]), _params(two["net"])
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("spec,expected", [
    ("cpu", [mx.cpu(0)]), ("cpu0,cpu1", [mx.cpu(0), mx.cpu(1)]), (" cpu1 ", [mx.cpu(1)])])
def test_parse_ctx(spec, expected):
    assert parse_ctx(spec) == expected


@pytest.mark.parametrize("spec,words", [("tpu0", "expected cpu, cpuN or gpuN"),
                                        ("gpu0", "MXNet sees 0 GPU")])
def test_parse_ctx_errors(spec, words):
    with pytest.raises(ValueError, match=words):
        parse_ctx(spec)


def test_bad_arguments(small_mnist, tmp_path):
    with pytest.raises(ValueError, match="unknown recipe 'fast'"):
        train(data_dir=small_mnist, recipe="fast")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="cannot create the output folder"):
        train(data_dir=small_mnist, out=str(blocker / "sub"))
    with pytest.raises(ValueError, match="exactly one"):
        evaluate(data_dir=small_mnist)


def test_cli_train_and_evaluate_json(small_mnist, tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "inceptionzoo")
    run = subprocess.run([exe, "train", "inception_mnist", "--data-dir", small_mnist,
                          "--recipe", "seed", "--epochs", "1", "--out", str(tmp_path),
                          "--no-progress"],
                         capture_output=True, text=True, check=True)
    assert "final test accuracy" in run.stdout
    out = subprocess.run([exe, "evaluate", "inception_mnist", "--params",
                          str(tmp_path / "inception_mnist-0001.params"), "--data-dir",
                          small_mnist, "--json"], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    assert r["model"] == "inception_mnist" and r["num_samples"] == 300
    assert r["accuracy"] == json.loads((tmp_path / "metrics.json").read_text())["accuracy"]
    bad = subprocess.run([exe, "evaluate", "inception_mnist", "--params",
                          str(tmp_path / "nope.params"), "--data-dir", small_mnist],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "does not exist" in bad.stderr


@pytest.mark.slow
def test_seed_recipe_on_full_mnist(mnist_dir):
    """The seed's result, reproduced: 2 epochs of the seed recipe on the real 60k/10k split."""
    m = train(data_dir=mnist_dir, recipe="seed", seed=1, progress=False)
    assert m["num_train"] == 60000 and m["num_test"] == 10000
    assert m["accuracy"] >= 0.98


def test_resume_from_a_corrupt_checkpoint_is_a_clear_error(small_mnist, tmp_path):
    from inceptionzoo.weights import WeightsError

    train(data_dir=small_mnist, recipe="seed", epochs=1, out=str(tmp_path), progress=False,
          log=lambda *a: None)
    (tmp_path / "inception_mnist-0001.params").write_bytes(b"\0" * 64)
    with pytest.raises(WeightsError, match="inception_mnist-0001.params.*corrupt"):
        train(data_dir=small_mnist, recipe="seed", epochs=2, out=str(tmp_path), resume=True,
              progress=False, log=lambda *a: None)


# --- issue #10: bad hyper-parameters, divergence, small last batches, bad states -------------

def _cli(argv, capsys):
    from inceptionzoo.cli import main

    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("flags,words", [
    (["--lr", "nan"], "lr (learning rate) must be a finite number > 0; got nan"),
    (["--lr", "inf"], "lr (learning rate) must be a finite number > 0; got inf"),
    (["--lr", "-0.1"], "lr (learning rate) must be a finite number > 0; got -0.1"),
    (["--wd", "nan"], "wd (weight decay) must be a finite number >= 0; got nan"),
    (["--momentum", "1.5"], "momentum must be a finite number in [0, 1); got 1.5"),
    (["--epochs", "0"], "epochs must be an integer >= 1; got 0"),
    (["--epochs", "-1"], "epochs must be an integer >= 1; got -1"),
    (["--batch-size", "0"], "batch size must be an integer >= 1; got 0"),
    (["--batch-size", "-5"], "batch size must be an integer >= 1; got -5"),
    (["--optimizer", "adamm"], "optimizer must be an MXNet optimizer name"),
    (["--resume", "--overwrite"], "give --resume (continue the run in --out) or --overwrite "
     "(replace it), not both"),
    (["--seed", "-1"], "seed must be an integer in 0..4294967; got -1"),
    (["--seed", "5000000"], "seed must be an integer in 0..4294967; got 5000000"),
    (["--data-threads", "0"], "data threads must be an integer >= 1; got 0"),
    (["--data-threads", "-2"], "data threads must be an integer >= 1; "
     "got -2"),
])
def test_bad_hyper_parameters_are_one_line_and_write_nothing(flags, words, one_batch_mnist,
                                                             tmp_path, capsys):
    out = tmp_path / "run"
    code, err = _cli(["train", "inception_mnist", "--data-dir", one_batch_mnist, "--recipe",
                      "seed", "--epochs", "1", "--out", str(out), "--no-progress"] + flags, capsys)
    assert code == 2
    assert err.count("\n") == 1 and words in err, err
    assert not out.exists()


def test_empty_training_set_is_a_clear_error(tmp_path, capsys):
    for t in (True, False):
        write_idx(str(tmp_path / MNIST_FILES[t][0]), np.zeros((0 if t else 5, 28, 28)))
        write_idx(str(tmp_path / MNIST_FILES[t][1]), np.zeros((0 if t else 5,)))
    code, err = _cli(["train", "inception_mnist", "--data-dir", str(tmp_path), "--epochs", "1",
                      "--out", str(tmp_path / "run"), "--no-progress"], capsys)
    assert code == 2 and "no images (expected at least one)" in err, err
    assert str(tmp_path) in err and not (tmp_path / "run").exists()


def _strict_json(path):
    def refuse(name):
        raise AssertionError(f"{path} holds {name}: not valid JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_divergence_stops_without_overwriting_the_last_checkpoint(one_batch_mnist, tmp_path):
    quiet = dict(data_dir=one_batch_mnist, recipe="seed", epochs=1, out=str(tmp_path),
                 progress=False, log=lambda *a: None)
    train(**quiet)
    good = (tmp_path / "inception_mnist-0001.params").read_bytes()
    metrics = (tmp_path / "metrics.json").read_text()
    with pytest.raises(ValueError, match=r"training diverged in epoch 1.*(nan|inf).*"
                       r"last good checkpoint .*inception_mnist-0001.params is kept"):
        train(**dict(quiet, lr=1e6, batch_size=20, overwrite=True))
    assert (tmp_path / "inception_mnist-0001.params").read_bytes() == good
    assert (tmp_path / "metrics.json").read_text() == metrics
    _strict_json(tmp_path / "metrics.json")
    assert sorted(os.listdir(tmp_path)) == ["curves.png", "inception_mnist-0001.params",
                                            "inception_mnist-0001.states", "metrics.json"]


def test_last_batch_smaller_than_the_contexts(mnist_dir, tmp_path):
    """200 images, batch 199: the last batch has 1 image for 2 contexts. It trains, saves, and
    matches one context (the idle context adds a zero-weight blank)."""
    (tmp_path / "d").mkdir()
    data = write_mnist_subset(str(tmp_path / "d"), mnist_dir, 200, 50)
    quiet = dict(data_dir=data, recipe="seed", epochs=1, batch_size=199, progress=False,
                 log=lambda *a: None)
    two = train(ctx="cpu0,cpu1", out=str(tmp_path / "two"), **quiet)
    one = train(ctx="cpu", **quiet)
    assert os.path.isfile(two["params"])
    a, b = _params(one["net"]), _params(two["net"])
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.fixture(scope="module")
def checkpointed(one_batch_mnist, tmp_path_factory):
    """A folder with one SGD checkpoint (epoch 1) of the seed recipe."""
    out = tmp_path_factory.mktemp("ckpt")
    train(data_dir=one_batch_mnist, recipe="seed", epochs=1, out=str(out), progress=False,
          log=lambda *a: None)
    return out


@pytest.mark.parametrize("damage,flags,words", [
    ("truncate", [], "not a trainer state file: truncated or corrupt"),
    ("garbage", [], "not a trainer state file: truncated or corrupt"),
    ("none", ["--optimizer", "adam"], "holds the state of optimizer 'sgd'; this run uses "
     "'adam': resume with --optimizer sgd"),
])
def test_resume_with_bad_states_is_a_clear_error(damage, flags, words, checkpointed,
                                                 one_batch_mnist, tmp_path, capsys):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(checkpointed, out)
    states = out / "inception_mnist-0001.states"
    if damage == "truncate":
        states.write_bytes(states.read_bytes()[:len(states.read_bytes()) // 2])
    elif damage == "garbage":
        states.write_bytes(b"this is not a pickle\n" * 10)
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    code, err = _cli(["train", "inception_mnist", "--data-dir", one_batch_mnist, "--recipe",
                      "seed", "--epochs",
                      "2", "--out", str(out), "--resume", "--no-progress"] + flags, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert words in err and str(states) in err, err
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before


# --- issue #19: an output folder holds one run; evaluation data fits the network --------------

def _files(folder):
    return {n: (folder / n).read_bytes() for n in sorted(os.listdir(folder))}


@pytest.mark.parametrize("flags,words", [
    (["inception_naive_mnist", "--resume"],
     "--resume: {out} holds a run of model 'inception_mnist' (1 epoch(s), 10 classes), this "
     "run trains 'inception_naive_mnist': resume it as `inceptionzoo train inception_mnist "
     "--resume`"),
    (["inception_mnist", "--classes", "12", "--resume"],
     "--resume: {out} holds a run of model 'inception_mnist' (1 epoch(s), 10 classes); this "
     "run has 12 classes"),
    (["inception_mnist"], "{out} holds a run of model 'inception_mnist' (1 epoch(s), 10 "
     "classes) already: pass --resume to continue it, --overwrite to replace it, or give "
     "another --out folder"),
    (["inception_naive_mnist"], "{out} holds a run of model 'inception_mnist'"),
])
def test_a_folder_holding_another_run_is_not_replaced(flags, words, checkpointed,
                                                      one_batch_mnist, tmp_path, capsys):
    """On main each of these trained from scratch and replaced the run's metrics and curves
    (a fresh run of the same model also replaced its checkpoints)."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(checkpointed, out)
    before = _files(out)
    code, err = _cli(["train", "--data-dir", one_batch_mnist, "--recipe", "seed", "--epochs",
                      "2", "--out", str(out), "--no-progress"] + flags, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert words.format(out=out) in err, err
    assert _files(out) == before


def test_resume_on_other_class_names_is_refused(digits_5, tmp_path):
    import shutil

    quiet = dict(recipe="seed", lr=0.01, batch_size=50, epochs=1, progress=False,
                 log=lambda *a: None, out=str(tmp_path / "run"))
    train(data_dir=str(digits_5), **quiet)
    other = tmp_path / "other"
    for split in ("train", "val"):
        for i, name in enumerate("abcde"):
            shutil.copytree(digits_5 / split / str(i), other / split / name)
    before = _files(tmp_path / "run")
    with pytest.raises(ValueError, match=r"holds a run of model 'inception_mnist' \(1 epoch\(s\), "
                       r"5 classes\) on classes \[0, 1, 2, 3, 4\]; this data has classes "
                       r"\[a, b, c, d, e\]"):
        train(data_dir=str(other), resume=True, **dict(quiet, epochs=2))
    assert _files(tmp_path / "run") == before


def test_overwrite_replaces_the_whole_run(checkpointed, one_batch_mnist, tmp_path):
    """--overwrite: the old run's checkpoints go when the new run saves its first epoch (a
    later --resume must not find the old run's epoch 2)."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(checkpointed, out)
    for ext in ("params", "states"):
        shutil.copy(out / f"inception_mnist-0001.{ext}", out / f"inception_mnist-0002.{ext}")
    m = train(data_dir=one_batch_mnist, recipe="seed", epochs=1, lr=0.05, out=str(out),
              overwrite=True, progress=False, log=lambda *a: None)
    assert sorted(os.listdir(out)) == ["curves.png", "inception_mnist-0001.params",
                                       "inception_mnist-0001.states", "metrics.json"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["recipe"]["lr"] == 0.05 and saved["accuracy"] == m["accuracy"]
    # a metrics.json that is not JSON: refused, named, unless --overwrite
    (out / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match=f"{out / 'metrics.json'}: cannot read the metrics of "
                       "the run"):
        train(data_dir=one_batch_mnist, recipe="seed", epochs=1, out=str(out), resume=True,
              progress=False, log=lambda *a: None)
    train(data_dir=one_batch_mnist, recipe="seed", epochs=1, out=str(out), overwrite=True,
          progress=False, log=lambda *a: None)
    assert json.loads((out / "metrics.json").read_text())["model"] == "inception_mnist"


@pytest.fixture(scope="module")
def digits_5(tmp_path_factory, mnist_dir):
    """``train/`` (10 per digit 0..4) and ``val/`` (10 per digit) image folders."""
    from _sample_data import write_image_folder

    root = tmp_path_factory.mktemp("digits5")
    for split, t in (("train", True), ("val", False)):
        x, y = load_mnist(mnist_dir, train=t)
        write_image_folder(str(root / split), x, y, 10, classes=range(5))
    return root


def test_evaluate_refuses_data_of_another_class_count(digits_5, small_mnist, tmp_path,
                                                      capsys):
    """On main: a 10-class network on 5-class data (and a 5-class one on 10-class data)
    reported an accuracy."""
    code, err = _cli(["evaluate", "inception_mnist", "--pretrained", "--data-dir",
                      str(digits_5)], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"{digits_5 / 'val'}: the validation data has 5 classes; the network outputs 10: " \
           "expected data with 10 classes" in err
    m = train(data_dir=str(digits_5), recipe="seed", lr=0.01, batch_size=50, epochs=1,
              out=str(tmp_path / "five"), progress=False, log=lambda *a: None)
    code, err = _cli(["evaluate", "inception_mnist", "--params", m["params"], "--data-dir",
                      small_mnist], capsys)
    assert code == 2 and "the validation data has 10 classes; the network outputs 5" in err
    # training: validation data with another class count than the training data
    with pytest.raises(ValueError, match="the validation data has 10 classes, the training "
                       "data .* has 5: expected the same classes"):
        train(train_data=str(digits_5 / "train"), val_data=small_mnist, epochs=1,
              progress=False, log=lambda *a: None)


@pytest.mark.parametrize("argv,words", [
    (["evaluate", "inception_mnist", "--pretrained", "--classes", "-1"],
     "classes must be an integer >= 1; got -1"),
    (["evaluate", "inception_mnist", "--pretrained", "--classes", "0"],
     "classes must be an integer >= 1; got 0"),
    (["tune", "/nonexistent-export", "--batch-sizes", "0"],
     "--batch-sizes must be comma-separated integers >= 1; got '0'"),
    (["demo", "--out", "{blocker}/sub"], "cannot create the output folder '{blocker}/sub'"),
])
def test_cli_numbers_and_paths_are_checked_first(argv, words, tmp_path, capsys):
    """Checked before any work: on main `evaluate --classes 0` reported an accuracy, `-1`
    blamed the data, `tune` loaded the export first and `demo` ran every model first."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = [a.format(blocker=blocker) for a in argv]
    from inceptionzoo.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1, err
    assert words.format(blocker=blocker) in err and out == "", (out, err)


def test_train_keywords_are_the_fields_of_its_options_record():
    """train's and evaluate's keyword forms are generated from their records (names and
    defaults); the records are frozen."""
    import dataclasses
    import inspect

    from inceptionzoo.errors import WrongTypeError
    from inceptionzoo.train import TrainOptions

    params = dict(inspect.signature(train).parameters)
    assert params.pop("options").kind == inspect.Parameter.POSITIONAL_ONLY
    fields = {f.name: f.default for f in dataclasses.fields(TrainOptions)}
    assert fields == {n: p.default for n, p in params.items()}
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainOptions().epochs = 3
    with pytest.raises(TypeError):
        train(no_such_option=1)
    with pytest.raises(WrongTypeError, match="a TrainOptions record or a model name; got int"):
        train(3)
    from inceptionzoo.options import EvaluateOptions

    params = dict(inspect.signature(evaluate).parameters)
    assert params.pop("options").kind == inspect.Parameter.POSITIONAL_ONLY
    assert {f.name: f.default for f in dataclasses.fields(EvaluateOptions)} == \
        {n: p.default for n, p in params.items()}


def test_train_on_a_record_is_train_on_its_fields(one_batch_mnist):
    from inceptionzoo.train import TrainOptions

    quiet = dict(data_dir=one_batch_mnist, recipe="seed", epochs=1, progress=False,
                 log=lambda *a: None)
    a = train(**quiet)
    b = train(TrainOptions(**dict(quiet, epochs=5)), epochs=1)  # keywords replace fields
    assert b["recipe"]["epochs"] == 1 and len(b["epochs"]) == 1
    assert a["epochs"][0]["train_loss"] == b["epochs"][0]["train_loss"]
    for name, value in _params(a["net"]).items():
        np.testing.assert_array_equal(value, _params(b["net"])[name])


def test_data_workers_is_the_old_name_of_data_threads():
    """The decoding threads are ``data_threads`` (``workers`` are processes): the old keyword
    gives the same record with one deprecation warning; both at once is an error."""
    from inceptionzoo.errors import InceptionZooError
    from inceptionzoo.options import TrainOptions, record_of

    with pytest.warns(DeprecationWarning, match="data_workers=.*is deprecated"):
        old = record_of(TrainOptions, "googlenet", {"data_workers": 3})
    assert old == TrainOptions(model="googlenet", data_threads=3)
    with pytest.raises(InceptionZooError, match="give data_threads= only"):
        record_of(TrainOptions, None, {"data_workers": 3, "data_threads": 2})
