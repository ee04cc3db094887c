"""The checkpoint readers are a security boundary: every claim of a torch archive, a safetensors
file or an MXNet .params file is checked against its bytes, each failure is one ConversionError
naming the file and the tensor, and seeded fuzzing finds no crash, hang or other exception.

The torch archives are written without torch (inceptionzoo/torch_archive.py reproduces
torch.save's format); one slow test checks that a real torch.save file reads identically."""
import collections
import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from inceptionzoo import torch_archive as torchzip
from conftest import ROOT, address_space_limit, side_env_python
from inceptionzoo.checkpoints import ConversionError, read_checkpoint
from inceptionzoo.convert import convert
from inceptionzoo.convert import read_checkpoint as convert_read_checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH_PYTHON = os.environ.get("INCEPTIONZOO_TORCH_PYTHON",
                              os.path.join(ROOT, ".venv-torch", "bin", "python"))
F4 = np.float32


def _storage(n, key="0", dtype=F4, **kwargs):
    return torchzip.Storage(key, np.arange(n, dtype=dtype) + 1, **kwargs)


def _refused(path, *fragments):
    """The ConversionError of reading ``path``: one line, naming the file and ``fragments``."""
    with pytest.raises(ConversionError) as exc:
        read_checkpoint(str(path), "timm")
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


class _WithState:
    """A tensor that pickles with a BUILD (state set after the call)."""

    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce__(self):
        return (*self.tensor.__reduce__(), {"evil": 1})


# name -> (state dict, fragments of the error)
def _bad_state_dicts():
    one = _storage(1)
    four = _storage(4)
    T = torchzip.Tensor
    return {
        "size past the storage": (
            {"conv1.weight": T(one, 0, (64, 3, 7, 7), (147, 49, 7, 1))},
            ["'conv1.weight'", "reaches element 9407", "its storage holds 1"]),
        "stride 1e9": ({"w": T(four, 0, (2, 2), (10 ** 9, 1))}, ["'w'", "reaches element"]),
        "offset past the storage": ({"w": T(four, 3, (2,), (1,))}, ["'w'", "reaches element 4"]),
        "huge size": ({"w": T(four, 0, (2 ** 70,), (0,))}, ["'w'", "elements from a storage"]),
        "negative stride": ({"w": T(four, 0, (3,), (-1,))}, ["'w'", "stride (-1,)"]),
        "negative offset": ({"w": T(four, -1, (1,), (1,))}, ["'w'", "storage offset -1"]),
        "one storage, two types": ({"w": T(four, 0, (2,), (1,)),
                                    "v": T(_storage(4, dtype=np.int32), 0, (2,), (1,))},
                                   ["'v'", "storage '0' is claimed as 4 x FloatStorage and as "
                                           "4 x IntStorage"]),
        "numel smaller than the bytes": ({"w": T(_storage(4, numel=2), 0, (2,), (1,))},
                                         ["'w'", "claims 2 x FloatStorage = 8 bytes", "holds 16"]),
        "rank 40": ({"w": T(four, 0, (1,) * 40, (1,) * 40)}, ["'w'", "at most 32"]),
        "ranks differ": ({"w": T(four, 0, (2, 2), (1,))}, ["'w'", "differ in rank"]),
        "offset a string": ({"w": T(four, "0", (2,), (1,))}, ["'w'", "storage offset '0'"]),
        "size a list": ({"w": _Call("torch._utils", "_rebuild_tensor_v2",
                                    (four, 0, [2], (1,), False, collections.OrderedDict()))},
                        ["'w'", "size [2] is not a tuple"]),
        "size a bool": ({"w": T(four, 0, (True,), (1,))}, ["'w'", "size (True,)"]),
        "storage an int": ({"w": T(5, 0, (2,), (1,))}, ["'w'", "its storage is 5"]),
        "numel larger than the bytes": ({"w": T(_storage(4, numel=9), 0, (2,), (1,))},
                                        ["'w'", "claims 9 x FloatStorage = 36 bytes",
                                         "holds 16"]),
        "storage type not allowed": ({"w": T(_storage(4, type_name="ComplexFloatStorage"), 0,
                                             (2,), (1,))},
                                     ["'torch.ComplexFloatStorage' is not allowed"]),
        "storage key a path": ({"w": T(_storage(4, key="../data.pkl"), 0, (2,), (1,))},
                               ["'w'", "not a plain entry name"]),
        "integer key": ({3: T(four, 0, (2,), (1,))}, ["state dict key 3 is not a tensor name"]),
        "nested dict": ({"layer": {"w": T(four, 0, (2,), (1,))}},
                        ["'layer' holds {'w': a _Tensor}, not a tensor"]),
        "a number": ({"w": 1.5}, ["'w' holds 1.5, not a tensor"]),
        "BUILD on a tensor": ({"w": _WithState(T(four, 0, (2,), (1,)))}, ["a tensor with state"]),
        "a disallowed global": ({"w": _Call("os", "system", ("true",))},
                                ["'os.system' is not allowed"]),
        "OrderedDict with arguments": ({"w": _Call("collections", "OrderedDict", ([1],))},
                                       ["OrderedDict called with 1 argument"]),
        "rebuild with 3 arguments": ({"w": _Call("torch._utils", "_rebuild_tensor_v2",
                                                 (four, 0, (2,)))},
                                     ["'w'", "takes 6 or 7 arguments; got 3"]),
        "parameter of a number": ({"w": _Call("torch._utils", "_rebuild_parameter",
                                              (1, False, collections.OrderedDict()))},
                                  ["'w'", "_rebuild_parameter takes"]),
        "a storage id nested 10000 deep": ({"w": T(_DeepPid(), 0, (2,), (1,))},
                                           ["'w'", "storage reference ((((...),),),) is not"]),
        "storage id not a 5-tuple": ({"w": T(_BadPid(), 0, (2,), (1,))},
                                     ["'w'", "is not ('storage', TYPE, KEY, LOCATION, NUMEL)"]),
    }


class _Call:
    """``module.name(*args)`` as a REDUCE."""

    def __init__(self, module, name, args):
        self.module, self.name, self.args = module, name, args

    def __reduce__(self):
        return torchzip.Global(self.module, self.name), self.args


class _BadPid(torchzip.Storage):
    def __init__(self):
        super().__init__("0", np.zeros(4, F4))


class _DeepPid(torchzip.Storage):
    def __init__(self):
        super().__init__("0", np.zeros(4, F4))


class _BadPidPickler(torchzip._Pickler):
    def persistent_id(self, obj):
        return ("storage", "FloatStorage") if isinstance(obj, _BadPid) else None

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _DeepPid):  # a persistent id of 10000 nested 1-tuples
            self.write(pickle.EMPTY_TUPLE + pickle.TUPLE1 * 10000 + pickle.BINPERSID)
            return
        super().save(obj, save_persistent_id)


@pytest.mark.parametrize("case", list(_bad_state_dicts()))
def test_every_claim_is_checked_against_the_bytes(case, tmp_path, monkeypatch):
    monkeypatch.setattr(torchzip, "_Pickler", _BadPidPickler if "storage id" in case
                        else torchzip._Pickler)
    sd, fragments = _bad_state_dicts()[case]
    path = tmp_path / "model.pth"
    torchzip.save(sd, str(path))
    _refused(path, *fragments)


def test_zip_entries_are_checked(tmp_path):
    sd = torchzip.state_dict({"w": np.arange(4, dtype=F4)})
    items = torchzip.entries(sd)
    cases = {
        "missing storage": ([i for i in items if not i[0].endswith("data/0")],
                            ["'w'", "'archive/data/0' is missing"]),
        "truncated storage": ([(n, d[:-1] if n.endswith("data/0") else d) for n, d in items],
                              ["'w'", "the entry 'archive/data/0' holds 15"]),
        "duplicate entry": (items + [items[2]], ["two entries named 'archive/data/0'"]),
        "no data.pkl": (items[1:], ["expected one ARCHIVE/data.pkl entry, found 0"]),
        "two data.pkl": (items + [("other/data.pkl", items[0][1])], ["found 2"]),
        "byteorder middle": ([(n, b"middle" if n.endswith("byteorder") else d)
                              for n, d in items], ["byteorder entry is 'middle'"]),
        "truncated pickle": ([(items[0][0], items[0][1][:-5])] + items[1:],
                             ["cannot read", "data.pkl"]),
        "memo index 2**31 - 1": ([(items[0][0], b"\x80\x02}r\xff\xff\xff\x7f.")] + items[1:],
                                 ["memo index 2147483647 at byte 3 of data.pkl (at most 2)"]),
        "a list, not a dict": ([(items[0][0], torchzip.dumps([sd["w"]]))] + items[1:],
                               ["holds [a _Tensor], not a state dict"]),
    }
    for name, (entries, fragments) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.pth"
        torchzip.write_entries(str(path), entries)
        _refused(path, *fragments)
    path = tmp_path / "deflated.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in items:
            zf.writestr(n, d)
    _refused(path, "is compressed")
    path = tmp_path / "cut.pth"
    torchzip.write_entries(str(path), items)
    path.write_bytes(path.read_bytes()[:-30])  # the central directory cut
    _refused(path, "zip")


def test_overlapping_entries_are_refused(tmp_path):
    """Entries nested in one another (each storage's bytes hold the next one's local header and
    bytes) would make a small file read as many times its size."""
    import zlib

    names = [f"archive/data/{k}" for k in range(4)]
    payload, infos = np.arange(1000, dtype=F4).tobytes(), {}
    for name in reversed(names):  # innermost first: each payload holds the next entry
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.CRC, info.file_size = zlib.crc32(payload), len(payload)
        info.compress_size = len(payload)
        infos[name] = info
        if name != names[0]:
            payload = info.FileHeader() + payload
    sd = {f"w{k}": torchzip.Tensor(torchzip.Storage(str(k), np.zeros(1, F4),
                                                    numel=infos[names[k]].file_size // 4),
                                   0, (1,), (1,)) for k in range(4)}
    path = tmp_path / "nested.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", torchzip.dumps(sd))
        zf.writestr(names[0], payload)
        outer = zf.getinfo(names[0])
        start = outer.header_offset + len(outer.FileHeader())
        for name in names[1:]:  # central directory records pointing inside data/0
            infos[name].header_offset = start
            zf.filelist.append(infos[name])
            zf.NameToInfo[name] = infos[name]
            start += len(infos[name].FileHeader())
    with zipfile.ZipFile(path) as zf:  # the nesting is what zipfile reads
        assert sum(zf.getinfo(n).file_size for n in names) > 2 * path.stat().st_size
        assert zf.read(names[3]) == np.arange(1000, dtype=F4).tobytes()
    _refused(path, "its entries hold more bytes than the file", "entries overlap")


def test_valid_archives_read_exactly(tmp_path):
    """Shared storages, offsets, transposed views, zero-size and scalar tensors, parameters,
    a wrapped state dict, big-endian bytes and bfloat16: all read to the right arrays."""
    w = np.arange(24, dtype=F4).reshape(2, 3, 4) - 3.5
    sd = torchzip.state_dict({"w": w, "h": np.arange(3, dtype=np.float16),
                              "n": np.array(7, np.int64), "e": np.zeros((0, 5), F4)},
                             parameters=("w",))
    ws = sd["w"].storage
    sd["tied"] = torchzip.Tensor(ws, 0, (2, 3, 4), (12, 4, 1))          # same storage
    sd["tail"] = torchzip.Tensor(ws, 20, (2, 2), (1, 2))                # offset, strides
    sd["t"] = torchzip.Tensor(ws, 0, (4, 3), (1, 4))                    # transposed
    sd["bcast"] = torchzip.Tensor(ws, 5, (3, 2), (0, 1))                # stride 0
    bf = np.array([1.5, -2.25, 1.5 * 2.0 ** 100], F4)  # exact in bfloat16
    sd["bf"] = torchzip.Tensor(torchzip.Storage("9", (bf.view(np.uint32) >> 16).astype(
        np.uint16), type_name="BFloat16Storage"), 0, (3,), (1,))
    want = {"w": w, "h": np.arange(3, dtype=np.float16), "n": np.array(7), "e": np.zeros((0, 5)),
            "tied": w, "tail": w.ravel()[[[20, 22], [21, 23]]], "t": w.ravel()[:12].reshape(3, 4).T,
            "bcast": np.tile(w.ravel()[5:7], (3, 1)), "bf": bf}
    for order in (b"little", b"big"):
        for wrap in (None, "state_dict", "model"):
            path = tmp_path / f"{order.decode()}-{wrap}.pth"
            obj = sd if wrap is None else {wrap: sd, "epoch": 3, "optimizer": {"lr": [0.1]}}
            torchzip.save(obj, str(path), byteorder=order)
            got = read_checkpoint(str(path), "timm")
            assert list(got) == list(want)
            for key, arr in want.items():
                assert got[key].dtype == (np.dtype(np.int64) if key == "n" else
                                          np.dtype(np.float16) if key == "h" else F4), key
                assert got[key].dtype.isnative and got[key].flags.writeable, key
                assert key == "w" or not np.shares_memory(got[key], got["w"]), key
                np.testing.assert_array_equal(got[key], arr, err_msg=key)
    assert convert_read_checkpoint is read_checkpoint  # still importable from convert


def test_zero_size_classifier_is_refused(tmp_path):
    path = tmp_path / "v4.pth"
    torchzip.save(torchzip.state_dict({"last_linear.weight": np.zeros((0, 1536), F4),
                                       "last_linear.bias": np.zeros(0, F4)}), str(path))
    with pytest.raises(ConversionError, match=r"classifier 'last_linear.weight' has shape "
                                              r"\(0, 1536\): no classes"):
        convert("timm:inception_v4", str(path), str(tmp_path / "v4.params"))
    assert not list(tmp_path.glob("v4.json")) and not list(tmp_path.glob("*.tmp"))


def test_safetensors_dtypes_are_checked(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "m.safetensors"
    save_file({"w": np.zeros((2, 2), np.complex64)}, str(path))
    with pytest.raises(ConversionError) as exc:
        read_checkpoint(str(path), "timm")
    assert str(path) in str(exc.value)
    save_file({"w": np.arange(4, dtype=F4), "b": np.ones(2, bool)}, str(path))
    got = read_checkpoint(str(path), "timm")
    np.testing.assert_array_equal(got["w"], np.arange(4, dtype=F4))
    data = path.read_bytes()
    path.write_bytes(data[:-3])  # truncated data
    _refused(path, "cannot read", "as safetensors")


def _run_fuzz(fmt, seed, cases, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(ROOT, "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, os.path.join(HERE, "fuzz_checkpoints.py"), fmt,
                           str(seed), str(cases), str(tmp_path)], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-4000:], proc.stderr[-3000:])
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["cases"] == cases and not summary["failures"]
    assert summary["errors"] + summary["reads"] == cases
    return summary


@pytest.mark.slow
def test_fuzzed_torch_archives_end_in_an_error_or_a_correct_read(tmp_path):
    """400 seeded mutations of a valid archive's pickle (byte flips, truncation, insertion,
    deletion, opcode swaps, huge numbers) and zip entries (truncated, missing, renamed,
    duplicated, extended): each a clean ConversionError or a read whose values all come from
    the storages (zip-only mutations: exactly the original), never a crash or a hang; in a
    process of its own with a 3 GB address-space limit."""
    summary = _run_fuzz("pth", 19, 400, tmp_path)
    assert summary["errors"] > 200 and summary["reads"] > 10  # both outcomes exercised


@pytest.mark.slow
def test_fuzzed_mxnet_params_end_in_an_error_or_a_read(tmp_path):
    """Every truncation of a small .params file and 300 random byte mutations: a clean error
    or a read with no array larger than the file (MXNet alone allocates what a corrupt header
    claims: tens of GB, or a segmentation fault)."""
    summary = _run_fuzz("mxnet", 7, 500, tmp_path)
    assert summary["errors"] > 200 and summary["reads"] > 10


@pytest.mark.slow
def test_fuzzed_safetensors_end_in_an_error_or_a_read(tmp_path):
    """400 byte flips, truncations, insertions and changed header numbers of a .safetensors
    file: a clean error (never a Rust panic, which is not an Exception) or a read no larger
    than the file."""
    summary = _run_fuzz("safetensors", 3, 400, tmp_path)
    assert summary["errors"] > 200 and summary["reads"] > 10


def test_mxnet_header_claiming_gigabytes_is_refused_before_mxnet_reads_it(tmp_path):
    import mxnet as mx

    from inceptionzoo.ndarray_file import read_params
    from inceptionzoo.errors import WeightsError

    path = tmp_path / "w.params"
    mx.nd.save(str(path), {"arg:a": mx.nd.ones((3, 4)), "arg:b": mx.nd.ones(5)})
    data = bytearray(path.read_bytes())
    data[36:44] = (1 << 40).to_bytes(8, "little")  # the first array's first dimension
    path.write_bytes(bytes(data))
    with address_space_limit(), pytest.raises(
            WeightsError, match=r"truncated or corrupt \(array 0 of shape \(1099511627776, 4\) "
                                r"needs 17592186044416 bytes"):
        read_params(str(path), error=WeightsError)
    data = bytearray(path.read_bytes())
    data[24:28] = (0x7F93FAC9).to_bytes(4, "little")  # not a known array magic
    path.write_bytes(bytes(data))
    with address_space_limit(), pytest.raises(WeightsError, match="array 0 has magic 0x7f93fac9"):
        read_params(str(path), error=WeightsError)


@pytest.mark.slow
def test_a_real_torch_save_reads_identically(tmp_path):
    """torch.save of parameters, buffers, views, shared storages, float16 / bfloat16 / int64
    and zero-size tensors (torch 2.14 in .venv-torch) == what torch's own .numpy() gives."""
    python = side_env_python(TORCH_PYTHON, "the PyTorch side environment (`make torch-env`)")
    script = r"""
import collections, sys, numpy as np, torch
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Flatten(),
                        torch.nn.Linear(8, 5))
sd = m.state_dict()
base = torch.randn(6, 7)
sd["view.t"] = base.t()
sd["view.slice"] = base[1:4, ::2]
sd["view.tied"] = base
sd["half"] = torch.randn(4).half()
sd["bf16"] = torch.randn(3, 2).to(torch.bfloat16)
sd["empty"] = torch.zeros(0, 4)
sd["scalar"] = torch.tensor(3.5)
sd["param"] = torch.nn.Parameter(torch.randn(2, 2))
torch.save(sd, sys.argv[1] + "/real.pth")
torch.save({"state_dict": sd, "epoch": 4}, sys.argv[1] + "/wrapped.pth")
np.savez(sys.argv[1] + "/want.npz", **{k: (v.detach().float() if v.dtype == torch.bfloat16
                                           else v.detach()).numpy() for k, v in sd.items()})
"""
    proc = subprocess.run([python, "-c", script, str(tmp_path)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    want = np.load(tmp_path / "want.npz")
    for name in ("real.pth", "wrapped.pth"):
        got = read_checkpoint(str(tmp_path / name), "timm")
        assert list(got) == list(want.files)
        for key in want.files:
            assert got[key].dtype == want[key].dtype, key
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_cli_gives_one_line_and_exit_2_for_each_bad_checkpoint(tmp_path, capsys):
    from inceptionzoo.cli import main

    T = torchzip.Tensor
    bad = {
        "past.pth": {"fc.weight": T(_storage(1), 0, (64, 3, 7, 7), (147, 49, 7, 1))},
        "intkey.pth": {3: T(_storage(4), 0, (2,), (1,))},
        "global.pth": {"w": _Call("os", "system", ("true",))},
    }
    for name, sd in bad.items():
        torchzip.save(sd, str(tmp_path / name))
    (tmp_path / "cut.pth").write_bytes((tmp_path / "past.pth").read_bytes()[:100])
    (tmp_path / "junk.params").write_bytes(b"\x12\x01" + b"\0" * 30)
    (tmp_path / "file").write_text("")
    cases = [("timm:inception_v4", name, "o.params") for name in list(bad) + ["cut.pth"]]
    cases += [("gluoncv:googlenet", "junk.params", "o.params"),
              ("gluoncv:googlenet", "junk.params", "junk.params"),
              ("timm:inception_v4", "past.pth", "file/o.params")]
    for spec, ckpt, out in cases:
        folder, name = os.path.split(str(tmp_path / out))
        code = main(["convert", spec, str(tmp_path / ckpt), "--out", folder, "--name",
                     name[:-len(".params")]])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1, (ckpt, err)
        assert err.startswith("inceptionzoo convert: error: ") and "Traceback" not in err
        assert ckpt in err or "file" in err, err
    assert sorted(os.listdir(tmp_path)) == sorted(list(bad) + ["cut.pth", "junk.params", "file"])
