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
- MXNet ``.params`` (gluoncv): :func:`read_ndarray_file` walks the NDArray list format and checks
  every count, shape, dtype and length against the file's size before MXNet parses it (MXNet
  itself allocates whatever a corrupt header claims).
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

from ._errors import install_hint, mxnet_message

__all__ = ["ConversionError", "read_checkpoint", "check_ndarray_file", "check_ndarray_bytes",
           "read_ndarray_file", "load_ndarray_bytes", "read_params", "named_arrays",
           "without_prefixes"]


from .errors import ConversionError  # noqa: E402  (defined in errors; this import path stays)


#: most dimensions a tensor may claim (numpy's limit)
MAX_RANK = 32
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


def _show(value, limit=60, depth=0):
    """A short, always-printable description of a value a file claims (no deep recursion, no
    giant integer or string)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        bits = value.bit_length()
        return repr(value) if bits <= 64 else f"an integer of {bits} bits"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= limit else text[:limit] + "...'"
    if isinstance(value, tuple) and len(value) <= 8 and depth < 2:
        items = [_show(v, 20, depth + 1) for v in value]
        return "(" + ", ".join(items) + ("," if len(value) == 1 else "") + ")"
    return f"a {type(value).__name__}"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


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
                             f"{_show(args)}")
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
        raise _Refused(f"{_show(f'{module}.{name}')} is not allowed in a weights file "
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
            raise ConversionError(f"{path!r}: the archive has two entries named {_show(dup)} "
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
            shown = _show(order[:20].decode("latin-1"))
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
            raise _Bad(f"storage reference {_show(pid)} is not ('storage', TYPE, KEY, "
                       "LOCATION, NUMEL)")
        _, stype, key, location, numel = pid
        if not isinstance(stype, _StorageType):
            raise _Bad(f"storage type {_show(stype)} is not one of torch."
                       f"{{{', '.join(_STORAGES)}}}")
        if not (isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_]{1,64}", key)):
            raise _Bad(f"storage key {_show(key)} is not a plain entry name")
        if not isinstance(location, str):
            raise _Bad(f"storage location {_show(location)} is not a string")
        if not _is_int(numel) or numel < 0:
            raise _Bad(f"storage {key!r} claims {_show(numel)} elements")
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
            raise _Bad(f"its storage is {_show(storage)}, not a storage reference")
        if not (_is_int(offset) and offset >= 0):
            raise _Bad(f"storage offset {_show(offset)} is not an integer >= 0")
        for what, dims in (("size", size), ("stride", stride)):
            if not (isinstance(dims, tuple) and len(dims) <= MAX_RANK
                    and all(_is_int(d) and d >= 0 for d in dims)):
                raise _Bad(f"{what} {_show(dims)} is not a tuple of at most {MAX_RANK} integers "
                           ">= 0")
        if len(size) != len(stride):
            raise _Bad(f"size {_show(size)} and stride {_show(stride)} differ in rank")
        if not isinstance(requires_grad, bool) or not isinstance(args[5], dict):
            raise _Bad("requires_grad / backward hooks are not a bool and a dict")
        data, stype = self.storage(storage.pid)
        count = math.prod(size)
        numel = data.size
        if count == 0:
            if math.prod(max(d, 1) for d in size) > 1 << 31 or offset > numel:
                raise _Bad(f"empty tensor of size {_show(size)} at offset {offset} is not "
                           f"sane over a storage of {numel} elements")
            return self._native(np.zeros(size, dtype=data.dtype), stype)
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= numel:
            raise _Bad(f"size {_show(size)} with stride {_show(stride)} at offset {offset} "
                       f"reaches element {_show(last)}; its storage holds {numel}")
        if count > max(numel, MAX_EXPANDED):
            raise _Bad(f"size {_show(size)} claims {count} elements from a storage of "
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
        if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and not (_is_int(arg) and 0 <= arg <= count):
            raise _Refused(f"memo index {_show(arg)} at byte {pos} of data.pkl (at most {count})")


def _state_dict(obj, path):
    """The state dict inside an unpickled object (a checkpoint may wrap it)."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "state_dict_ema"):
            if isinstance(obj.get(key), dict):
                return obj[key]
        return obj
    raise ConversionError(f"{path!r} holds {_show(obj)}, not a state dict")


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
                                      f" in data.pkl ({_show(str(err), 120)})") from None
            state = _state_dict(obj, path)
            tensors = {}
            for key, value in state.items():
                if not isinstance(key, str):
                    raise ConversionError(f"{path!r}: state dict key {_show(key)} is not a "
                                          "tensor name (a string)")
                if not isinstance(value, _Tensor):
                    raise ConversionError(f"{path!r}: {_show(key)} holds {_show(value)}, not a "
                                          "tensor")
                try:
                    tensors[key] = archive.tensor(value)
                except _Bad as err:
                    raise ConversionError(f"{path!r}: tensor {_show(key)}: {err}") from None
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
                              f"{_show(str(err), 120)})") from None


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
            raise ConversionError(f"{path!r}: tensor {_show(key)} is {_show(value)} of dtype "
                                  f"{getattr(value, 'dtype', None)}, not a numeric array")
    return tensors


# --- MXNet .params ----------------------------------------------------------------------------

_NDARRAY_LIST_MAGIC = 0x112
_NDARRAY_V2_MAGIC = 0xF993FAC9
# mshadow type flag -> bytes per element (float32, float64, float16, uint8, int32, int8, int64,
# bool, ..., bfloat16)
_MXNET_ITEMSIZE = {0: 4, 1: 8, 2: 2, 3: 1, 4: 4, 5: 1, 6: 8, 7: 1, 12: 2}


def _check_ndarray_list(data, path, error):
    """Walk MXNet's NDArray list format (``mx.nd.save``) and check every claim against
    ``len(data)``: list magic, array count, each array's magic, storage type, shape, dtype and
    data length, then the names."""
    pos = 0

    def take(fmt, what):
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(data):
            raise error(f"cannot load parameter file {path!r}: truncated ({what} at byte "
                        f"{pos}; the file has {len(data)})")
        values = struct.unpack_from(fmt, data, pos)
        pos += size
        return values[0] if len(values) == 1 else values

    def bad(msg):
        return error(f"cannot load parameter file {path!r}: corrupt or not an MXNet params "
                     f"file ({msg})")

    magic, _ = take("<QQ", "header")
    if magic != _NDARRAY_LIST_MAGIC:
        raise bad("no NDArray list magic at the start")
    count = take("<Q", "array count")
    if count > (len(data) - pos) // 12:  # an array record is at least 12 bytes
        raise bad(f"it claims {_show(count)} arrays in {len(data)} bytes")
    for i in range(count):
        magic, stype = take("<Ii", f"array {i}")
        if magic != _NDARRAY_V2_MAGIC:
            raise bad(f"array {i} has magic {magic:#x}, expected {_NDARRAY_V2_MAGIC:#x} (MXNet "
                      ">= 1.0 dense arrays)")
        if stype != 0:
            raise bad(f"array {i} has storage type {stype}; only dense arrays (0) are read")
        ndim = take("<i", f"array {i} rank")
        if not 0 <= ndim <= MAX_RANK:
            raise bad(f"array {i} claims rank {ndim}")
        if ndim == 0:  # an empty (none) array: nothing follows
            continue
        shape = take(f"<{ndim}q", f"array {i} shape")
        shape = (shape,) if ndim == 1 else shape
        if any(d < 0 for d in shape):
            raise bad(f"array {i} claims shape {shape}")
        _, _, flag = take("<iii", f"array {i} context and dtype")
        if flag not in _MXNET_ITEMSIZE:
            raise bad(f"array {i} has unknown dtype flag {flag}")
        nbytes = math.prod(shape) * _MXNET_ITEMSIZE[flag]
        if nbytes > len(data) - pos:
            raise error(f"cannot load parameter file {path!r}: truncated or corrupt (array {i} "
                        f"of shape {shape} needs {nbytes} bytes; {len(data) - pos} left)")
        pos += nbytes
    names = take("<Q", "name count")
    if names not in (0, count):
        raise bad(f"{_show(names)} names for {count} arrays")
    for i in range(names):
        length = take("<Q", f"name {i}")
        if length > len(data) - pos:
            raise bad(f"name {i} claims {_show(length)} bytes")
        try:
            data[pos:pos + length].decode("utf-8")
        except UnicodeDecodeError:
            raise bad(f"name {i} is not UTF-8") from None
        pos += length
    if pos != len(data):
        raise bad(f"{len(data) - pos} bytes after the last name")


def check_ndarray_file(path, error=ConversionError):
    """The bytes of an MXNet ``.params`` file, after checking its structure against its size.

    Parameters
    ----------
    path : str
        The file (``mx.nd.save`` / ``save_parameters`` / ``export`` format).
    error : type, default ConversionError
        The exception class raised (a ``ValueError`` subclass).

    Returns
    -------
    bytes

    Raises
    ------
    error
        The file cannot be read, is truncated, or claims counts, shapes, dtypes or lengths its
        bytes do not hold (MXNet would try to allocate them).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise error(f"cannot read parameter file {path!r}: {err.strerror}") from None
    return check_ndarray_bytes(data, path, error)


def check_ndarray_bytes(data, path, error=ConversionError):
    """:func:`check_ndarray_file` on bytes read already.

    Parameters
    ----------
    data : bytes
        The file's content.
    path : str
        The file, named in errors.
    error : type, default ConversionError
        The exception class raised.

    Returns
    -------
    bytes
        ``data``.
    """
    _check_ndarray_list(data, os.fspath(path), error)
    return data


def read_ndarray_file(path, error=ConversionError):
    """The arrays of an MXNet ``.params`` file, its structure checked before MXNet parses it
    (:func:`check_ndarray_file`).

    Parameters
    ----------
    path : str
        The file.
    error : type, default ConversionError
        The exception class raised (a ``ValueError`` subclass).

    Returns
    -------
    dict or list of mxnet.nd.NDArray
        What ``mx.nd.load`` returns for the file's bytes.
    """
    return load_ndarray_bytes(check_ndarray_file(path, error), path, error, checked=True)


def load_ndarray_bytes(data, path, error=ConversionError, checked=False):
    """The arrays of the bytes of an MXNet ``.params`` file (read by the caller), their
    structure checked first.

    Parameters
    ----------
    data : bytes
    path : str
        How messages name the file.
    error : type, default ConversionError
    checked : bool
        The structure was checked already (:func:`check_ndarray_file`).

    Returns
    -------
    dict or list of mxnet.nd.NDArray
    """
    import mxnet as mx

    if not checked:
        _check_ndarray_list(data, os.fspath(path), error)
    try:
        return mx.nd.load_frombuffer(data)
    except mx.base.MXNetError as err:
        raise error(f"cannot load parameter file {os.fspath(path)!r}: corrupt or not an MXNet "
                    f"params file ({mxnet_message(err)})") from None


def _read_mxnet(path):
    return {k: v.asnumpy() for k, v in read_params(path).items()}


def without_prefixes(arrays):
    """The arrays of an MXNet parameter file by plain parameter name: the ``arg:`` / ``aux:``
    prefixes that ``export`` and ``mx.model.save_checkpoint`` write are removed.

    Parameters
    ----------
    arrays : dict of str to mxnet.nd.NDArray
        What ``mx.nd.load`` returned for a file of named arrays.

    Returns
    -------
    dict of str to mxnet.nd.NDArray
        The same arrays, by name without prefix.

    >>> sorted(without_prefixes({"arg:fc.weight": 1, "aux:bn.running_mean": 2, "w": 3}))
    ['bn.running_mean', 'fc.weight', 'w']
    """
    return {k.split(":", 1)[1] if k.startswith(("arg:", "aux:")) else k: v
            for k, v in arrays.items()}


def read_params(path, error=ConversionError):
    """The named arrays of an MXNet ``.params`` file (``save_parameters`` or ``export``).

    Parameters
    ----------
    path : str
        The file.
    error : type, default ConversionError
        The exception class raised (a ``ValueError`` subclass), so that each caller reports
        in its own terms (``WeightsError`` for the zoo's own weights).

    Returns
    -------
    dict of str to mxnet.nd.NDArray
        By parameter name, ``arg:`` / ``aux:`` prefixes removed.

    Raises
    ------
    error
        The file is missing, truncated, not an MXNet params file (checked against its size
        before MXNet reads it), or holds unnamed arrays.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise error(f"parameter file {path!r} does not exist")
    loaded = read_ndarray_file(path, error=error)  # its structure checked before MXNet parses it
    return without_prefixes(named_arrays(loaded, path, error))


def named_arrays(loaded, path, error=ConversionError):
    """``loaded`` (what MXNet read from a ``.params`` file), which must be named arrays.

    Parameters
    ----------
    loaded : dict or list of mxnet.nd.NDArray
    path : str
        The file, named in errors.
    error : type, default ConversionError
        The exception class raised.

    Returns
    -------
    dict of str to mxnet.nd.NDArray
    """
    if not isinstance(loaded, dict):
        raise error(f"parameter file {os.fspath(path)!r} holds a list of arrays, expected "
                    "named parameters (save_parameters)")
    return loaded


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
