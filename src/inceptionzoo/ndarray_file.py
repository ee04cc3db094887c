"""MXNet's NDArray files (``.params`` of the zoo, of gluoncv and of ``export``; trainer
states), read without trusting them: :func:`check_ndarray_bytes` walks the NDArray list format
and checks every count, shape, dtype and length against the file's size before MXNet parses the
bytes (MXNet itself allocates whatever a corrupt header claims); :func:`load_ndarray_bytes` then
loads the same buffer, so that what was checked is what is loaded. Every reader of an NDArray
file in the package goes through here (:mod:`inceptionzoo.weights`, the serving core,
:mod:`inceptionzoo.trainer_state`, the gluoncv path of :mod:`inceptionzoo.checkpoints`).
"""
import math
import os
import struct

import mxnet as mx

from ._checks import brief
from ._errors import mxnet_message
from .errors import ConversionError

__all__ = ["check_ndarray_file", "check_ndarray_bytes", "read_ndarray_file",
           "load_ndarray_bytes", "read_params", "named_arrays", "without_prefixes", "MAX_RANK"]

#: most dimensions a tensor may claim (numpy's limit)
MAX_RANK = 32

_NDARRAY_LIST_MAGIC = 0x112
_NDARRAY_V2_MAGIC = 0xF993FAC9
# mshadow type flag -> bytes per element (float32, float64, float16, uint8, int32, int8, int64,
# bool, ..., bfloat16)
_MXNET_ITEMSIZE = {0: 4, 1: 8, 2: 2, 3: 1, 4: 4, 5: 1, 6: 8, 7: 1, 12: 2}


class _Walk:
    """A cursor over an NDArray file's bytes: each read checked against the length."""

    def __init__(self, data, path, error):
        self.data, self.path, self.error, self.pos = data, path, error, 0

    @property
    def left(self):
        return len(self.data) - self.pos

    def take(self, fmt, what):
        size = struct.calcsize(fmt)
        if size > self.left:
            raise self.error(f"cannot load parameter file {self.path!r}: truncated ({what} at "
                             f"byte {self.pos}; the file has {len(self.data)})")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values[0] if len(values) == 1 else values

    def bad(self, msg):
        return self.error(f"cannot load parameter file {self.path!r}: corrupt or not an MXNet "
                          f"params file ({msg})")


def _check_array(walk, i):
    """One array record: magic, storage type, rank, shape, dtype, and its bytes skipped."""
    magic, stype = walk.take("<Ii", f"array {i}")
    if magic != _NDARRAY_V2_MAGIC:
        raise walk.bad(f"array {i} has magic {magic:#x}, expected {_NDARRAY_V2_MAGIC:#x} (MXNet "
                       ">= 1.0 dense arrays)")
    if stype != 0:
        raise walk.bad(f"array {i} has storage type {stype}; only dense arrays (0) are read")
    ndim = walk.take("<i", f"array {i} rank")
    if not 0 <= ndim <= MAX_RANK:
        raise walk.bad(f"array {i} claims rank {ndim}")
    if ndim == 0:  # an empty (none) array: nothing follows
        return
    shape = walk.take(f"<{ndim}q", f"array {i} shape")
    shape = (shape,) if ndim == 1 else shape
    if any(d < 0 for d in shape):
        raise walk.bad(f"array {i} claims shape {shape}")
    _, _, flag = walk.take("<iii", f"array {i} context and dtype")
    if flag not in _MXNET_ITEMSIZE:
        raise walk.bad(f"array {i} has unknown dtype flag {flag}")
    nbytes = math.prod(shape) * _MXNET_ITEMSIZE[flag]
    if nbytes > walk.left:
        raise walk.error(f"cannot load parameter file {walk.path!r}: truncated or corrupt (array "
                         f"{i} of shape {shape} needs {nbytes} bytes; {walk.left} left)")
    walk.pos += nbytes


def _check_ndarray_list(data, path, error):
    """Walk MXNet's NDArray list format (``mx.nd.save``) and check every claim against
    ``len(data)``: list magic, array count, each array's magic, storage type, shape, dtype and
    data length, then the names."""
    walk = _Walk(data, path, error)
    magic, _ = walk.take("<QQ", "header")
    if magic != _NDARRAY_LIST_MAGIC:
        raise walk.bad("no NDArray list magic at the start")
    count = walk.take("<Q", "array count")
    if count > walk.left // 12:  # an array record is at least 12 bytes
        raise walk.bad(f"it claims {brief(count)} arrays in {len(data)} bytes")
    for i in range(count):
        _check_array(walk, i)
    names = walk.take("<Q", "name count")
    if names not in (0, count):
        raise walk.bad(f"{brief(names)} names for {count} arrays")
    for i in range(names):
        length = walk.take("<Q", f"name {i}")
        if length > walk.left:
            raise walk.bad(f"name {i} claims {brief(length)} bytes")
        try:
            data[walk.pos:walk.pos + length].decode("utf-8")
        except UnicodeDecodeError:
            raise walk.bad(f"name {i} is not UTF-8") from None
        walk.pos += length
    if walk.left:
        raise walk.bad(f"{walk.left} bytes after the last name")


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
    if not checked:
        _check_ndarray_list(data, os.fspath(path), error)
    try:
        return mx.nd.load_frombuffer(data)
    except mx.base.MXNetError as err:
        raise error(f"cannot load parameter file {os.fspath(path)!r}: corrupt or not an MXNet "
                    f"params file ({mxnet_message(err)})") from None


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
