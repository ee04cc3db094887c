"""Trainer states on disk without pickle (inceptionzoo/trainer_state.py): a crafted .states file
runs nothing and is refused before MXNet reads it; a resume restores every state tensor and
update counter."""
import os
import pickle
import shutil

import mxnet as mx
import numpy as np
import pytest

from inceptionzoo.errors import InceptionZooError
from inceptionzoo.train import train
from inceptionzoo.trainer_state import load_trainer_state, save_trainer_state
from _sample_data import write_mnist_subset


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory, mnist_dir):
    """One epoch of the seed recipe on 100 digits, checkpointed (epoch 1)."""
    data = write_mnist_subset(str(tmp_path_factory.mktemp("mnist_one")), mnist_dir, 100, 100)
    out = tmp_path_factory.mktemp("ckpt")
    train(data_dir=data, recipe="seed", epochs=1, out=str(out), progress=False,
          log=lambda *a: None)
    return data, out


def _stack_global_system(marker):
    """Protocol 4: STACK_GLOBAL('numpy', 'os.system') then REDUCE('touch MARKER'): numpy's
    module attribute `os` leads to os.system (the issue's first payload)."""
    def unicode(s):
        b = s.encode()
        return b"\x8c" + bytes([len(b)]) + b
    return (b"\x80\x04" + unicode("numpy") + b"\x94" + unicode("os.system") + b"\x94\x93\x94"
            + unicode(f"touch {marker}") + b"\x94\x85\x94R\x94.")


def _numpy_load_chain(marker, folder):
    """Only numpy names: numpy.load(INNER, None, True) unpickles INNER, whose pickle runs the
    command (the issue's second payload; numpy.savetxt could have written INNER)."""
    class Run:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    inner = folder / "inner.npy"
    inner.write_bytes(pickle.dumps(Run(), protocol=2))

    class Load:
        def __reduce__(self):
            return (np.load, (str(inner), None, True))

    return pickle.dumps(({}, Load()), protocol=4)


def _mxnet_own_pickle(marker, folder):
    """What MXNet's own Trainer.save_states writes (a pickle of the optimizer): earlier
    inceptionzoo versions wrote this; it is refused unread."""
    net = mx.gluon.nn.Dense(2, in_units=3)
    net.initialize()
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"momentum": 0.9})
    path = folder / "mx.states"
    trainer.save_states(str(path))
    return path.read_bytes()


@pytest.mark.parametrize("payload", [_stack_global_system, _numpy_load_chain, _mxnet_own_pickle])
def test_a_crafted_states_file_runs_nothing_and_is_refused_unread(payload, checkpointed,
                                                                  tmp_path, monkeypatch,
                                                                  capsys):
    from inceptionzoo.cli import main

    data, ckpt = checkpointed
    run = tmp_path / "run"
    shutil.copytree(ckpt, run)
    marker = tmp_path / "MARKER"
    states = run / "inception_mnist-0001.states"
    args = (marker,) if payload is _stack_global_system else (marker, tmp_path)
    states.write_bytes(payload(*args))
    parsed = []
    real = mx.nd.load_frombuffer
    monkeypatch.setattr(mx.nd, "load_frombuffer", lambda b: parsed.append(b) or real(b))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("pickle.loads called"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("pickle.load called"))
    code = main(["train", "inception_mnist", "--data-dir", data, "--recipe", "seed", "--epochs",
                 "2", "--out", str(run), "--resume", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"{states}: not a trainer state file: truncated or corrupt" in err, err
    assert not marker.exists()
    assert states.read_bytes() not in parsed  # MXNet never parsed the file


def _net_and_trainer(optimizer, ctxs, seed=3):
    mx.random.seed(seed)
    net = mx.gluon.nn.HybridSequential(prefix="net_")  # the same names in every test: the
    with net.name_scope():                              # Trainer orders parameters by name
        net.add(mx.gluon.nn.Dense(4, in_units=3), mx.gluon.nn.Dense(2, in_units=4))
    net.initialize(mx.init.Xavier(), ctx=ctxs)
    args = {"learning_rate": 0.1}
    if optimizer in ("sgd", "nag"):
        args["momentum"] = 0.9
    return net, mx.gluon.Trainer(net.collect_params(), optimizer, args)


def _steps(net, trainer, ctxs, steps, start):
    rng = np.random.RandomState(start)
    for _ in range(steps):
        x, y = rng.randn(len(ctxs) * 2, 3), rng.randint(0, 2, len(ctxs) * 2)
        with mx.autograd.record():
            losses = [mx.gluon.loss.SoftmaxCrossEntropyLoss()(
                net(mx.nd.array(x[2 * i:2 * i + 2], ctx=c)), mx.nd.array(y[2 * i:2 * i + 2],
                                                                          ctx=c))
                for i, c in enumerate(ctxs)]
        mx.autograd.backward(losses)
        trainer.step(len(ctxs) * 2)
        start += 1


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "nag"])
@pytest.mark.parametrize("n_ctx", [1, 2])
def test_resume_restores_states_and_counters_exactly(optimizer, n_ctx, tmp_path):
    """3 steps straight == 2 steps, save, a fresh net + trainer loads params and state, 1 step:
    momentum / Adam's (mean, var) tuples and the per-device update counts (Adam's bias
    correction reads them) all come back."""
    ctxs = [mx.cpu(i) for i in range(n_ctx)]
    net, trainer = _net_and_trainer(optimizer, ctxs)
    _steps(net, trainer, ctxs, 2, 0)
    net.save_parameters(str(tmp_path / "p.params"))
    save_trainer_state(trainer, str(tmp_path / "s.states"))
    _steps(net, trainer, ctxs, 1, 2)
    net2, trainer2 = _net_and_trainer(optimizer, ctxs, seed=9)
    net2.load_parameters(str(tmp_path / "p.params"), ctx=ctxs)
    load_trainer_state(trainer2, str(tmp_path / "s.states"), optimizer)
    assert trainer2._optimizer.num_update == 2
    _steps(net2, trainer2, ctxs, 1, 2)
    for (k, a), b in zip(net.collect_params().items(), net2.collect_params().values()):
        np.testing.assert_array_equal(a.data(ctxs[0]).asnumpy(), b.data(ctxs[0]).asnumpy(),
                                      err_msg=k)


def _saved(tmp_path, optimizer="adam"):
    net, trainer = _net_and_trainer(optimizer, [mx.cpu()])
    _steps(net, trainer, [mx.cpu()], 1, 0)
    path = str(tmp_path / "s.states")
    save_trainer_state(trainer, path)
    return path, mx.nd.load(path)


def _rewrite(path, arrays, header=None):
    import json

    if header is not None:
        arrays["__header__"] = mx.nd.array(np.frombuffer(json.dumps(header).encode(), np.uint8),
                                           dtype="uint8")
    mx.nd.save(path, arrays)


def _header(arrays):
    import json

    return json.loads(arrays["__header__"].asnumpy().tobytes())


@pytest.mark.parametrize("damage,words", [
    (lambda a, h: h.update(format="pickle"), "header is not format"),
    (lambda a, h: h.update(num_update=-1), "num_update is -1, expected an integer >= 0"),
    (lambda a, h: h.update(num_update=True), "num_update is True"),
    (lambda a, h: h["states"].update({"99": None}), "parameter index '99' is not one of"),
    (lambda a, h: h["states"].update({"-1": None}), "parameter index '-1' is not one of"),
    (lambda a, h: h["states"].update({"0": "s:0:0"}), "structure differs"),
    (lambda a, h: a.update({"s:0:0": mx.nd.zeros((7, 7))}), "is float32 (7, 7), expected"),
    (lambda a, h: a.update({"extra": mx.nd.zeros(1)}), "1 array(s) belong to no state"),
    (lambda a, h: a.pop("s:0:0"), "state array 's:0:0' is missing"),
    (lambda a, h: h["index_update_count"].update({"x": {}}), "update counts of device 'x'"),
    (lambda a, h: h["index_update_count"]["0"].update({"0": "1"}), "update count '1'"),
    (lambda a, h: h.update(optimizer="sgd"), "holds the state of optimizer 'sgd'; this run "
                                             "uses 'adam'"),
])
def test_a_damaged_state_file_is_refused_before_anything_changes(damage, words, tmp_path):
    path, arrays = _saved(tmp_path)
    header = _header(arrays)
    damage(arrays, header)
    _rewrite(path, arrays, header)
    net, trainer = _net_and_trainer("adam", [mx.cpu()])
    with pytest.raises(InceptionZooError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load_trainer_state(trainer, path, "adam")
    assert trainer._optimizer.num_update == 0


def test_a_deeply_nested_header_is_refused(tmp_path):
    path, arrays = _saved(tmp_path)
    arrays["__header__"] = mx.nd.array(np.frombuffer(b"[" * 100000 + b"]" * 100000, np.uint8),
                                       dtype="uint8")
    _rewrite(path, arrays)
    net, trainer = _net_and_trainer("adam", [mx.cpu()])
    with pytest.raises(InceptionZooError, match="nested 100000 levels deep"):
        load_trainer_state(trainer, path, "adam")


def test_the_package_unpickles_only_through_the_torch_reader():
    """One unpickler: the .pth reader's exact allow-list (checkpoints.py); no other module of
    the package reads a pickle (torch_archive.py writes them)."""
    import re

    import inceptionzoo

    root = os.path.dirname(inceptionzoo.__file__)
    readers = re.compile(r"Unpickler|pickle\.loads?\(|allow_pickle=True|\.load_states\(")
    users = sorted(os.path.relpath(os.path.join(d, f), root)
                   for d, _, files in os.walk(root) for f in files if f.endswith(".py")
                   and readers.search(open(os.path.join(d, f)).read()))
    assert users == ["checkpoints.py"]
