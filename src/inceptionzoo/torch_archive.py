"""Writes ``torch.save`` zip archives of numpy arrays without torch (one job: state dicts in
torch's exact format, read by ``torch.load(weights_only=True)``): the ``.pth`` files of
:mod:`inceptionzoo.convert_back`, and the tests' checkpoints (so that the reader's tests need no
side environment).

The archive holds ``ROOT/data.pkl`` (pickle protocol 2: an ``collections.OrderedDict`` of
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`` calls,
storages as persistent ids ``('storage', torch.FloatStorage, KEY, 'cpu', NUMEL)``),
``ROOT/data/KEY`` (the storage's bytes), ``ROOT/byteorder`` and ``ROOT/version``, as torch 2.x
writes them. ``Tensor`` describes a view so that tests can write shared storages, offsets and
strides. :func:`save` writes to the path it is given: callers that publish a file write to a
temporary name (:func:`inceptionzoo._io.atomic_path`).
"""
import collections
import io
import pickle
import zipfile

import numpy as np

STORAGE_NAMES = {
    np.dtype("f8"): "DoubleStorage", np.dtype("f4"): "FloatStorage",
    np.dtype("f2"): "HalfStorage", np.dtype("i8"): "LongStorage", np.dtype("i4"): "IntStorage",
    np.dtype("i2"): "ShortStorage", np.dtype("i1"): "CharStorage", np.dtype("u1"): "ByteStorage",
    np.dtype("?"): "BoolStorage",
}


class Global:
    """A name pickled as ``GLOBAL module name`` (torch's classes and functions, which this
    environment does not have)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce wants a callable; never called
        raise NotImplementedError(f"{self.module}.{self.name} is a stand-in")


class Storage:
    """A storage: ``key`` and its flat array (the bytes are ``array.tobytes()``); ``numel``
    overrides the element count the pickle claims."""

    def __init__(self, key, array, type_name=None, numel=None):
        self.key, self.array = key, np.ascontiguousarray(array).reshape(-1)
        self.type_name = type_name or STORAGE_NAMES[self.array.dtype]
        self.numel = self.array.size if numel is None else numel  # what the pickle claims


class Tensor:
    """A view of a storage, pickled as torch pickles a tensor."""

    def __init__(self, storage, offset, size, stride, parameter=False):
        self.storage, self.offset = storage, offset
        self.size, self.stride, self.parameter = tuple(size), tuple(stride), parameter

    def __reduce__(self):
        hooks = OrderedDictCall()
        rebuilt = (Global("torch._utils", "_rebuild_tensor_v2"),
                   (self.storage, self.offset, self.size, self.stride, False, hooks))
        if self.parameter:
            return Global("torch._utils", "_rebuild_parameter"), (_Reduced(rebuilt), False,
                                                                  OrderedDictCall())
        return rebuilt


class _Reduced:
    def __init__(self, rv):
        self.rv = rv

    def __reduce__(self):
        return self.rv


class OrderedDictCall:
    """``collections.OrderedDict()`` as torch pickles it (REDUCE of an empty tuple)."""

    def __reduce__(self):
        return Global("collections", "OrderedDict"), ()


class _Pickler(pickle._Pickler):  # the Python pickler: its save_global can be replaced
    def __init__(self, file):
        super().__init__(file, protocol=2)
        self.types = {}

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", Global("torch", obj.type_name), obj.key, "cpu", obj.numel)
        return None

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            return
        super().save(obj, save_persistent_id)


def dumps(obj):
    """Pickle bytes of ``obj`` (dicts, tuples, Tensors...) as torch's ``data.pkl``."""
    buf = io.BytesIO()
    _Pickler(buf).dump(obj)
    return buf.getvalue()


def state_dict(arrays, parameters=()):
    """``{name: Tensor}`` of contiguous arrays, each in its own storage, in an OrderedDict."""
    out = collections.OrderedDict()
    for i, (name, array) in enumerate(arrays.items()):
        array = np.asarray(array)
        strides = tuple(s // array.itemsize for s in array.strides) if array.ndim else ()
        out[name] = Tensor(Storage(str(i), array), 0, array.shape, strides,
                           parameter=name in parameters)
    return out


def storages_of(obj):
    """Every Storage reachable in a state dict of Tensors, by key."""
    found = {}
    for value in (obj.values() if isinstance(obj, dict) else obj):
        if isinstance(value, Tensor) and isinstance(value.storage, Storage):
            found[value.storage.key] = value.storage
        elif isinstance(value, dict):
            found.update(storages_of(value))
    return found


def entries(obj, root="archive", byteorder=b"little"):
    """The archive's entries ``[(name, bytes)]`` in torch's order."""
    items = [(f"{root}/data.pkl", dumps(obj)), (f"{root}/byteorder", byteorder)]
    for key, storage in storages_of(obj).items():
        array = storage.array
        if byteorder == b"big":
            array = array.astype(array.dtype.newbyteorder(">"))
        items.append((f"{root}/data/{key}", array.tobytes()))
    items.append((f"{root}/version", b"3\n"))
    return items


def write_entries(path, items):
    """Write ``[(name, bytes)]`` as an uncompressed zip (duplicates kept, as given), every
    entry dated 1980-01-01: the same tensors give the same bytes, whenever written."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on duplicate names
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            for name, data in items:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o600 << 16
                zf.writestr(info, data)


def save(obj, path, **kwargs):
    """``torch.save(obj, path)`` for a state dict of Tensors."""
    write_entries(path, entries(obj, **kwargs))
