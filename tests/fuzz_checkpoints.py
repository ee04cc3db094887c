"""Seeded fuzzing of the checkpoint readers (one job: mutate valid files, require a clean
ConversionError or a correct read every time). Run as a script, in its own process under an
address-space limit, so that a segmentation fault or a runaway allocation fails the calling test
instead of the test session or the machine:

    python tests/fuzz_checkpoints.py pth SEED CASES FOLDER     (torch zip archives)
    python tests/fuzz_checkpoints.py mxnet SEED CASES FOLDER   (MXNet .params)
    python tests/fuzz_checkpoints.py safetensors SEED CASES FOLDER

It prints one JSON line: ``{"cases", "errors", "reads", "changed", "failures"}``; exit status 0
when no case failed.

A successful read of a mutated archive is correct when every value it returns is a value of
the (distinct-valued, unmutated) storages of its dtype: a view reaching past a storage would
return other bytes. Mutations of zip entries alone must read exactly the original arrays.
"""
import json
import os
import random
import resource
import sys
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inceptionzoo import torch_archive as torchzip  # noqa: E402

from inceptionzoo.checkpoints import ConversionError, read_checkpoint  # noqa: E402

# opcodes a mutation may swap in (one byte each, all of pickle protocol 0-5)
OPCODES = b"()tR.}]ceiQqhKJM\x85\x86\x87\x88\x89\x8a\x8b\x80\x81\x92\x93\x94\x95abdlsuXUBCN"
HUGE = [b"J\xff\xff\xff\x7f", b"J\x00\x00\x00\x80", b"\x8a\x08" + b"\xff" * 7 + b"\x7f",
        b"\x8b\x10\x00\x00\x00" + b"\xff" * 16, b"K\xff", b"M\xff\xff"]


def _attempt(summary, label, path, read):
    """``read()``'s result, or None after counting a clean ConversionError (one line naming
    the file) or recording anything else -- a Rust panic or a KeyboardInterrupt-like
    BaseException included -- as a failure."""
    summary["cases"] += 1
    try:
        got = read()
    except ConversionError as err:
        summary["errors"] += 1
        if "\n" in str(err) or os.path.basename(path) not in str(err):
            summary["failures"].append(f"{label}: error not one line naming the file: {err}")
        return None
    except BaseException as err:  # noqa: B902 -- the point: nothing else may escape
        summary["failures"].append(f"{label}: {type(err).__name__}: {err}\n"
                                   + traceback.format_exc()[-800:])
        return None
    summary["reads"] += 1
    return got


def reference():
    """A small state dict with every feature the reader handles: float32 / float16 / int64
    storages of distinct values, a parameter, a tensor sharing another's storage at an offset,
    a transposed view, a zero-size tensor and a scalar."""
    w = torchzip.Storage("0", (np.arange(2 * 3 * 3 * 3, dtype=np.float32) + 1000.5))
    sd = torchzip.state_dict({"conv.bias": np.arange(2, dtype=np.float32) + 7.25,
                              "bn.weight": np.arange(4, dtype=np.float16) + 3,
                              "bn.num_batches_tracked": np.array(17, np.int64),
                              "fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3) - 50.5,
                              "empty": np.zeros((0, 3), np.float32)},
                             parameters=("conv.bias",))
    for i, t in enumerate(sd.values()):
        t.storage.key = str(i + 1)
    sd["conv.weight"] = torchzip.Tensor(w, 0, (2, 3, 3, 3), (27, 9, 3, 1), parameter=True)
    sd["conv.tail"] = torchzip.Tensor(w, 30, (2, 3), (1, 2))  # shares conv.weight's storage
    sd["fc.t"] = torchzip.Tensor(sd["fc.weight"].storage, 0, (3, 2), (1, 3))
    return sd


def _values(sd):
    """dtype -> every value the storages hold."""
    out = {}
    for storage in torchzip.storages_of(sd).values():
        arr = storage.array
        out.setdefault(arr.dtype, set()).update(arr.tolist())
    return out


def _mutate_pickle(data, rng):
    data = bytearray(data)
    kind = rng.choice(["flip", "truncate", "insert", "opcode", "huge", "delete"])
    pos = rng.randrange(len(data))
    if kind == "flip":
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del data[pos:]
    elif kind == "insert":
        data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    elif kind == "opcode":
        data[pos] = rng.choice(OPCODES)
    elif kind == "huge":
        data[pos:pos + rng.randint(0, 3)] = rng.choice(HUGE)
    else:
        del data[pos:pos + rng.randint(1, 8)]
    return kind, bytes(data)


def _mutate_entries(items, rng):
    items = list(items)
    kind = rng.choice(["truncate", "missing", "rename", "duplicate", "extend"])
    i = rng.randrange(len(items))
    name, data = items[i]
    if kind == "truncate":
        items[i] = (name, data[:rng.randrange(len(data) + 1)])
    elif kind == "missing":
        del items[i]
    elif kind == "rename":
        items[i] = (rng.choice([name + "x", name.replace("archive", "other"),
                                name.rsplit("/", 1)[0] + "/9", "../" + name]), data)
    elif kind == "duplicate":
        items.insert(rng.randrange(len(items) + 1), (name, data[::-1]))
    else:
        items[i] = (name, data + b"\0" * rng.randint(1, 16))
    return kind, items


def fuzz_pth(seed, cases, folder):
    rng = random.Random(seed)
    sd = reference()
    items = torchzip.entries(sd)
    original = os.path.join(folder, "original.pth")
    torchzip.write_entries(original, items)
    want = read_checkpoint(original, "timm")
    values = _values(sd)
    summary = {"cases": 0, "errors": 0, "reads": 0, "changed": 0, "failures": []}
    path = os.path.join(folder, "mutated.pth")
    for case in range(cases):
        if case % 3 == 2:
            kind, mutated = _mutate_entries(items, rng)
            kind = "zip " + kind
        else:
            kind, pkl = _mutate_pickle(items[0][1], rng)
            kind = "pickle " + kind
            mutated = [(items[0][0], pkl)] + items[1:]
        torchzip.write_entries(path, mutated)
        got = _attempt(summary, f"case {case} ({kind})", path,
                       lambda: read_checkpoint(path, "timm"))
        if got is None:
            continue
        same = (list(got) == list(want) and all(
            got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]) for k in want))
        if kind.startswith("zip") and not same:
            summary["failures"].append(f"case {case} ({kind}): read differs from the original")
        if not same:
            summary["changed"] += 1
            for key, arr in got.items():
                if not isinstance(arr, np.ndarray) or arr.dtype not in values:
                    summary["failures"].append(f"case {case} ({kind}): {key!r} is {type(arr)}")
                elif not set(arr.ravel().tolist()) <= values[arr.dtype]:
                    summary["failures"].append(f"case {case} ({kind}): {key!r} holds values "
                                               "from outside its storage")
    return summary


def fuzz_mxnet(seed, cases, folder):
    import mxnet as mx

    from inceptionzoo.ndarray_file import read_params

    rng = random.Random(seed)
    original = os.path.join(folder, "original.params")
    arrays = {"arg:a": mx.nd.array(np.arange(12).reshape(3, 4) + 0.5),
              "aux:b": mx.nd.array(np.arange(5) - 9, dtype="int64")}
    mx.nd.save(original, arrays)
    data = open(original, "rb").read()
    summary = {"cases": 0, "errors": 0, "reads": 0, "changed": 0, "failures": []}
    path = os.path.join(folder, "mutated.params")
    for case in range(cases):
        mutated = bytearray(data)
        if case < len(data):  # every truncation, then random mutations
            del mutated[case:]
            kind = "truncate"
        else:
            kind = rng.choice(["flip", "set", "huge"])
            for _ in range(rng.randint(1, 3)):
                pos = rng.randrange(len(mutated))
                if kind == "flip":
                    mutated[pos] ^= 1 << rng.randrange(8)
                elif kind == "set":
                    mutated[pos] = rng.choice([0, 0x7F, 0xFF, rng.randrange(256)])
                else:
                    mutated[pos:pos + 8] = rng.choice([b"\xff" * 8, b"\0\0\0\0\0\0\0\x7f"])
        open(path, "wb").write(bytes(mutated))
        got = _attempt(summary, f"case {case} ({kind})", path,
                       lambda: read_params(path))
        if got is None:
            continue
        if any(v.size > 64 for v in got.values()):
            summary["failures"].append(f"case {case} ({kind}): an array larger than the file")
        if set(got) != {"a", "b"} or any(
                not np.array_equal(got[k].asnumpy(), arrays["arg:a" if k == "a" else "aux:b"]
                                   .asnumpy()) for k in got if k in ("a", "b")):
            summary["changed"] += 1
    return summary


def fuzz_safetensors(seed, cases, folder):
    from safetensors.numpy import save_file

    rng = random.Random(seed)
    original = os.path.join(folder, "original.safetensors")
    want = {"w": np.arange(12, dtype=np.float32).reshape(3, 4) + 0.5,
            "b": np.arange(3, dtype=np.float16)}
    save_file(want, original)
    data = open(original, "rb").read()
    header_end = 8 + int.from_bytes(data[:8], "little")
    summary = {"cases": 0, "errors": 0, "reads": 0, "changed": 0, "failures": []}
    path = os.path.join(folder, "mutated.safetensors")
    for case in range(cases):
        mutated = bytearray(data)
        kind = rng.choice(["flip", "truncate", "insert", "number"])
        pos = rng.randrange(len(mutated))
        if kind == "flip":
            mutated[pos] ^= 1 << rng.randrange(8)
        elif kind == "truncate":
            del mutated[pos:]
        elif kind == "insert":
            mutated[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        else:  # a number of the JSON header (shape, offsets) changed
            pos = rng.randrange(8, header_end)
            mutated[pos:pos + 1] = rng.choice([b"9", b"99999999999", b"-1", b"0"])
        open(path, "wb").write(bytes(mutated))
        got = _attempt(summary, f"case {case} ({kind})", path,
                       lambda: read_checkpoint(path, "timm"))
        if got is None:
            continue
        if any(v.nbytes > len(mutated) for v in got.values()):
            summary["failures"].append(f"case {case} ({kind}): an array larger than the file")
        if set(got) != set(want) or any(not np.array_equal(got[k], want[k]) for k in want):
            summary["changed"] += 1
    return summary


FUZZERS = {"pth": fuzz_pth, "mxnet": fuzz_mxnet, "safetensors": fuzz_safetensors}


def main(argv):
    fmt, seed, cases, folder = argv[0], int(argv[1]), int(argv[2]), argv[3]
    limit = 3 << 30  # a reader that allocates what a corrupt header claims fails here
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    summary = FUZZERS[fmt](seed, cases, folder)
    print(json.dumps(summary))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
