"""Reading other frameworks' weight files into numpy arrays without trusting them (one job: a
checkpoint file -> ``{name: array}``, or one :class:`ConversionError` naming the file and the
tensor).

Three formats:

- ``torch.save`` zip archives (``.pth``/``.pt``/``.bin``), read without torch: ``ARCHIVE/data.pkl``
  is a pickle (protocol 2) whose tensors are ``torch._utils._rebuild_tensor_v2(storage, offset,
  size, stride, requires_grad, hooks[, metadata])`` calls over storages named by persistent ids
  ``('storage', torch.FloatStorage, key, location, numel)``; storage ``key``'s bytes are the
  archive entry ``ARCHIVE/data/KEY`` (``ARCHIVE/byteorder`` says their byte order). The unpickler
  allows only the globals a state dict needs and builds nothing from them while unpickling: each
  tensor is a record, checked against the bytes before any array is made (storage type, entry
  present and ``numel * itemsize`` bytes long, offset / size / stride non-negative integers of
  sane rank, the furthest element inside the storage) -- so no view ever reaches past a buffer.
- ``.safetensors`` through the ``safetensors`` package (which checks its header), then the
  dtypes and values it gives.
- MXNet ``.params`` (gluoncv): through :mod:`inceptionzoo.ndarray_file`, which checks every
  count, shape, dtype and length against the file's size before MXNet parses it.
"""
import collections
import io
import math
import os
import pickle
import pickletools
import re
import struct
import zipfile
import zlib

import numpy as np

from ._checks import brief, is_integer
from ._errors import install_hint
from .ndarray_file import MAX_RANK, read_params

__all__ = ["ConversionError", "read_checkpoint"]


from .errors import ConversionError  # noqa: E402  (defined in errors; this import path stays)


#: a tensor may hold more elements than its storage (stride-0 views) only up to this many
MAX_EXPANDED = 1 << 20
#: largest ``data.pkl`` read (a state dict's pickle is kilobytes; the data are separate entries)
MAX_PICKLE_BYTES = 256 << 20

# torch storage type -> (numpy dtype read from the bytes, bytes per element)
_STORAGES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "u2",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}


# --- torch zip archives -----------------------------------------------------------------------

class _Refused(Exception):
    """Raised inside the unpickler for input no tensor can be named for."""


class _Inert:
    """What the unpickler hands out instead of torch's objects: plain records that refuse
    pickle's BUILD (state set after the call)."""

    __slots__ = ()
    what = "record"

    def __setstate__(self, state):
        raise _Refused(f"a {self.what} with state")


class _StorageType(_Inert):
    """What ``torch.FloatStorage`` (etc.) unpickles to: only its name."""

    __slots__ = ("name",)
    what = "storage type"

    def __init__(self, name):
        self.name = name


class _Storage(_Inert):
    """A storage a persistent id names; its bytes are read (once) when a tensor uses it."""

    __slots__ = ("pid",)
    what = "storage"

    def __init__(self, pid):
        self.pid = pid


class _Tensor(_Inert):
    """The arguments of one ``_rebuild_tensor_v2`` call, checked when the tensor is made
    (``error``: what was wrong with a call, reported then, naming the tensor)."""

    __slots__ = ("args", "error")
    what = "tensor"

    def __init__(self, args, error=None):
        self.args, self.error = args, error


def _rebuild_tensor(*args):
    return _Tensor(args)


def _rebuild_parameter(*args):
    if len(args) != 3 or not isinstance(args[0], _Tensor) or not isinstance(args[1], bool):
        return _Tensor(args, f"_rebuild_parameter takes (tensor, requires_grad, hooks); got "
                             f"{brief(args)}")
    return args[0]


def _ordered_dict(*args):
    if args:
        raise _Refused(f"collections.OrderedDict called with {len(args)} argument(s)")
    return collections.OrderedDict()


_GLOBALS = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _TorchUnpickler(pickle.Unpickler):
    """Unpickles a ``data.pkl`` allowing only what a state dict needs (like
    ``torch.load(weights_only=True)``); no class is ever handed to the pickle machine."""

    def find_class(self, module, name):
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGES:
            return _StorageType(name)
        raise _Refused(f"{brief(f'{module}.{name}')} is not allowed in a weights file "
                       "(only tensors, dicts and plain values)")

    def persistent_load(self, pid):
        return _Storage(pid)


class _TorchArchive:
    """The entries of a ``torch.save`` zip archive, checked as they are read."""

    def __init__(self, path, archive):
        self.path, self.archive = path, archive
        names = [info.filename for info in archive.infolist()]
        seen, dup = set(), None
        for n in names:
            if n in seen:
                dup = n
            seen.add(n)
        if dup is not None:
            raise ConversionError(f"{path!r}: the archive has two entries named {brief(dup)} "
                                  "(a tampered torch.save archive)")
        pkl = [n for n in names if re.fullmatch(r"[^/]+/data\.pkl", n)]
        if len(pkl) != 1:
            raise ConversionError(f"{path!r} is not a torch.save archive: expected one "
                                  f"ARCHIVE/data.pkl entry, found {len(pkl)}")
        self.root = pkl[0][:-len("/data.pkl")]
        self.size = os.path.getsize(path)
        self.read = 0  # bytes of all entries read: overlapping entries would exceed the file
        self.storages = {}  # key -> (dtype, numel, array)
        order = self.entry("byteorder", optional=True, most=16)
        if order not in (None, b"little", b"big"):
            shown = brief(order[:20].decode("latin-1"))
            raise ConversionError(f"{path!r}: byteorder entry is {shown}; expected 'little' or "
                                  "'big'")
        self.order = ">" if order == b"big" else "<"

    def entry(self, name, optional=False, most=None):
        """The bytes of ``ROOT/name``, after checking its declared size against the file."""
        full = f"{self.root}/{name}"
        try:
            info = self.archive.getinfo(full)
        except KeyError:
            if optional:
                return None
            raise ConversionError(f"{self.path!r}: the archive has no entry {full!r}") from None
        if info.compress_type != zipfile.ZIP_STORED:
            raise ConversionError(f"{self.path!r}: entry {full!r} is compressed (torch.save stores "
                                  "entries uncompressed)")
        limit = self.size if most is None else min(most, self.size)
        if info.file_size > limit:
            raise ConversionError(f"{self.path!r}: entry {full!r} claims {info.file_size} bytes; "
                                  f"at most {limit} possible")
        self.read += info.file_size
        if self.read > self.size:
            raise ConversionError(f"{self.path!r}: its entries hold more bytes than the file "
                                  f"({self.read} > {self.size}): entries overlap")
        return self.archive.read(full)

    def storage(self, pid):
        """The numpy array of the storage a persistent id names (read once per key)."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Bad(f"storage reference {brief(pid)} is not ('storage', TYPE, KEY, "
                       "LOCATION, NUMEL)")
        _, stype, key, location, numel = pid
        if not isinstance(stype, _StorageType):
            raise _Bad(f"storage type {brief(stype)} is not one of torch."
                       f"{{{', '.join(_STORAGES)}}}")
        if not (isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_]{1,64}", key)):
            raise _Bad(f"storage key {brief(key)} is not a plain entry name")
        if not isinstance(location, str):
            raise _Bad(f"storage location {brief(location)} is not a string")
        if not is_integer(numel) or numel < 0:
            raise _Bad(f"storage {key!r} claims {brief(numel)} elements")
        dtype = np.dtype(self.order + _STORAGES[stype.name])
        if key in self.storages:
            seen_type, seen_numel, array = self.storages[key]
            if (seen_type, seen_numel) != (stype.name, numel):
                raise _Bad(f"storage {key!r} is claimed as {seen_numel} x {seen_type} and as "
                           f"{numel} x {stype.name}")
            return array, stype.name
        want = numel * dtype.itemsize
        full = f"{self.root}/data/{key}"
        try:
            info = self.archive.getinfo(full)
        except KeyError:
            raise _Bad(f"its storage entry {full!r} is missing from the archive") from None
        if info.file_size != want:
            raise _Bad(f"storage {key!r} claims {numel} x {stype.name} = {want} bytes; the "
                       f"entry {full!r} holds {info.file_size}")
        array = np.frombuffer(self.entry(f"data/{key}"), dtype=dtype)
        self.storages[key] = (stype.name, numel, array)
        return array, stype.name

    def tensor(self, record):
        """The array of a ``_rebuild_tensor_v2`` record, every claim checked first."""
        args = record.args
        if record.error:
            raise _Bad(record.error)
        if len(args) not in (6, 7):
            raise _Bad(f"_rebuild_tensor_v2 takes 6 or 7 arguments; got {len(args)}")
        storage, offset, size, stride, requires_grad = args[:5]
        if not isinstance(storage, _Storage):
            raise _Bad(f"its storage is {brief(storage)}, not a storage reference")
        if not (is_integer(offset) and offset >= 0):
            raise _Bad(f"storage offset {brief(offset)} is not an integer >= 0")
        for what, dims in (("size", size), ("stride", stride)):
            if not (isinstance(dims, tuple) and len(dims) <= MAX_RANK
                    and all(is_integer(d) and d >= 0 for d in dims)):
                raise _Bad(f"{what} {brief(dims)} is not a tuple of at most {MAX_RANK} integers "
                           ">= 0")
        if len(size) != len(stride):
            raise _Bad(f"size {brief(size)} and stride {brief(stride)} differ in rank")
        if not isinstance(requires_grad, bool) or not isinstance(args[5], dict):
            raise _Bad("requires_grad / backward hooks are not a bool and a dict")
        data, stype = self.storage(storage.pid)
        count = math.prod(size)
        numel = data.size
        if count == 0:
            if math.prod(max(d, 1) for d in size) > 1 << 31 or offset > numel:
                raise _Bad(f"empty tensor of size {brief(size)} at offset {offset} is not "
                           f"sane over a storage of {numel} elements")
            return self._native(np.zeros(size, dtype=data.dtype), stype)
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= numel:
            raise _Bad(f"size {brief(size)} with stride {brief(stride)} at offset {offset} "
                       f"reaches element {brief(last)}; its storage holds {numel}")
        if count > max(numel, MAX_EXPANDED):
            raise _Bad(f"size {brief(size)} claims {count} elements from a storage of "
                       f"{numel} (overlapping strides)")
        item = data.itemsize
        strides = [0 if n == 1 else s * item for n, s in zip(size, stride)]
        view = np.lib.stride_tricks.as_strided(data[offset:], shape=size, strides=strides,
                                               writeable=False)
        return self._native(np.array(view), stype)

    @staticmethod
    def _native(array, stype):
        array = array.astype(array.dtype.newbyteorder("="), copy=False)
        if stype == "BFloat16Storage":  # the upper half of a float32: exact
            return (array.astype(np.uint32) << 16).view(np.float32)
        return array


class _Bad(Exception):
    """A tensor's claims do not hold; the caller names the tensor."""


def _scan_pickle(raw):
    """An opcode pass before unpickling (nothing is built): the C unpickler sizes its memo by
    the largest index a PUT names, so an index of 2**31 would allocate 16 GB -- memo indices
    must not exceed the number of opcodes before them (pickle numbers them 0, 1, 2...)."""
    for count, (op, arg, pos) in enumerate(pickletools.genops(raw)):
        if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and not (is_integer(arg) and 0 <= arg <= count):
            raise _Refused(f"memo index {brief(arg)} at byte {pos} of data.pkl (at most {count})")


def _state_dict(obj, path):
    """The state dict inside an unpickled object (a checkpoint may wrap it)."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "state_dict_ema"):
            if isinstance(obj.get(key), dict):
                return obj[key]
        return obj
    raise ConversionError(f"{path!r} holds {brief(obj)}, not a state dict")


def _read_pth(path):
    try:
        with zipfile.ZipFile(path) as zf:
            archive = _TorchArchive(path, zf)
            raw = archive.entry("data.pkl", most=MAX_PICKLE_BYTES)
            try:
                _scan_pickle(raw)
                obj = _TorchUnpickler(io.BytesIO(raw)).load()
            except _Refused as err:
                raise ConversionError(f"cannot read {path!r} as a state dict: {err}") from None
            except RecursionError:
                raise ConversionError(f"cannot read {path!r} as a state dict: its pickle nests "
                                      "too deep") from None
            except Exception as err:  # any other failure of the pickle machine on bad bytes
                raise ConversionError(f"cannot read {path!r} as a state dict: {type(err).__name__}"
                                      f" in data.pkl ({brief(str(err))})") from None
            state = _state_dict(obj, path)
            tensors = {}
            for key, value in state.items():
                if not isinstance(key, str):
                    raise ConversionError(f"{path!r}: state dict key {brief(key)} is not a "
                                          "tensor name (a string)")
                if not isinstance(value, _Tensor):
                    raise ConversionError(f"{path!r}: {brief(key)} holds {brief(value)}, not a "
                                          "tensor")
                try:
                    tensors[key] = archive.tensor(value)
                except _Bad as err:
                    raise ConversionError(f"{path!r}: tensor {brief(key)}: {err}") from None
            return tensors
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, struct.error,
            NotImplementedError, RuntimeError, ValueError, OSError) as err:
        if isinstance(err, ConversionError):
            raise
        if isinstance(err, zipfile.BadZipFile) and "File is not a zip file" in str(err):
            raise ConversionError(
                f"{path!r} is not a zip-format torch checkpoint (torch >= 1.6 torch.save); "
                "re-save it with torch.save(state_dict, path) or as .safetensors") from None
        raise ConversionError(f"{path!r}: damaged zip archive ({type(err).__name__}: "
                              f"{brief(str(err))})") from None


# --- safetensors ------------------------------------------------------------------------------

def _read_safetensors(path):
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise ConversionError("reading .safetensors needs the safetensors package (the convert "
                              f"extra): {install_hint('convert')}") from None
    try:
        tensors = load_file(path)
    except Exception as err:  # safetensors raises its own SafetensorError
        raise ConversionError(f"cannot read {path!r} as safetensors: {err}") from None
    for key, value in tensors.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
            raise ConversionError(f"{path!r}: tensor {brief(key)} is {brief(value)} of dtype "
                                  f"{getattr(value, 'dtype', None)}, not a numeric array")
    return tensors


def _read_mxnet(path):
    return {k: v.asnumpy() for k, v in read_params(path).items()}


def read_checkpoint(path, source):
    """The tensors of a checkpoint as ``{name: numpy array}``, in the file's order.

    Parameters
    ----------
    path : str
        A ``.pth``/``.pt``/``.bin`` (torch zip archive), ``.safetensors`` or, for ``source ==
        'gluoncv'``, an MXNet ``.params`` file.
    source : str
        ``'torchvision'``, ``'timm'`` or ``'gluoncv'``.

    Returns
    -------
    dict
        Native-byte-order arrays that own their memory.

    Raises
    ------
    ConversionError
        One error naming the file (and the tensor, when one is at fault) for anything the file
        claims that its bytes do not hold.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConversionError(f"checkpoint {path!r} does not exist")
    ext = os.path.splitext(path)[1].lower()
    if source == "gluoncv":
        if ext != ".params":
            raise ConversionError(f"a gluoncv checkpoint is a .params file; got {path!r}")
        return _read_mxnet(path)
    if ext in (".pth", ".pt", ".bin"):
        return _read_pth(path)
    if ext == ".safetensors":
        return _read_safetensors(path)
    raise ConversionError(f"a {source} checkpoint is a .pth, .pt or .safetensors file; got "
                          f"{path!r}")
