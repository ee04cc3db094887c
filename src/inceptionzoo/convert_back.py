"""Zoo ``.params`` files -> checkpoints of torchvision, timm and gluoncv (one job: the way back,
the inverse of :mod:`inceptionzoo.convert`).

``convert_back('torchvision:inception_v3', 'run/inception_v3-0001.params', 'v3.pth')`` loads
the zoo file through the one load path (``get_model(MODEL, pretrained=PATH)``: its sidecar's
SHA-1, model and options checked), renames every tensor with the inverse of the family's
checkpoint filter (:meth:`~inceptionzoo.checkpoint_filter.Source.source_names`, over the source
network's own state-dict keys, which ship in ``checkpoint_keys.json``: the zoo's lower-cased
names cannot give back ``Mixed_5b`` or ``AuxLogits``) and writes

- ``.pth`` / ``.pt`` / ``.bin``: a ``torch.save`` archive (:mod:`inceptionzoo.torch_archive`,
  no torch needed) that ``torch.load(path, weights_only=True)`` reads;
- ``.safetensors``: through the ``safetensors`` package (the ``convert`` extra);
- gluoncv sources: a gluoncv ``.params`` file, named as gluoncv's ``save_parameters`` names it
  (gluoncv's own network gives the names, in the zoo's order, and its aliases such as
  GoogLeNet's ``head.2.*`` = ``output.*``).

The classes are those of the zoo file (a 3-class fine-tune gives a 3-class state dict). A torch
state dict holds what the source network's ``load_state_dict(strict=True)`` needs when it is
built with the zoo network's classes and without auxiliary heads (torchvision:
``aux_logits=False``), or with them when the zoo file has them (``aux_logits=True``);
batch-norm step counters (``num_batches_tracked``), which the zoo does not keep, are written as
0. The output is written under a temporary name and renamed into place; an existing one is
replaced only with ``overwrite=True``.
"""
import os

import numpy as np

from . import torch_archive
from ._errors import install_hint
from ._factory import get_model
from ._gluoncv import import_gluoncv
from ._io import atomic_path, read_json, sha1_file
from .checkpoint_filter import BN_COUNTER
from .checkpoints import ConversionError
from .convert import _refuse_overwriting_the_checkpoint, checkpoint_filter_for, _summary

__all__ = ["convert_back", "checkpoint_keys", "TORCH_SUFFIXES"]

#: what a torch source's output may be called (``.safetensors`` or a torch.save archive)
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def checkpoint_keys():
    """``{'SOURCE:NAME': [state-dict key, ...]}`` of every torch source network (written by
    ``tests/reference/make_checkpoint_keys.py`` in the PyTorch side environment)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoint_keys.json")
    return read_json(path, ConversionError)


def convert_back(source, params, out, overwrite=False):
    """Write a zoo network's weights as a checkpoint of the source library.

    Parameters
    ----------
    source : str
        ``SOURCE:NAME``, case-insensitive: a source the zoo converts from (``convert``'s
        :data:`~inceptionzoo.convert.SOURCES`), e.g. ``torchvision:inception_v3``.
    params : str
        A zoo ``.params`` file of that source's zoo network, with its sidecar (a converted
        file, or a checkpoint of ``inceptionzoo train``).
    out : str
        The checkpoint to write: ``.pth`` / ``.pt`` / ``.bin`` / ``.safetensors`` for torchvision
        and timm, ``.params`` for gluoncv.
    overwrite : bool, default False
        Replace an existing ``out``.

    Returns
    -------
    dict
        ``source``, ``model``, ``classes``, ``aux_logits``, ``params`` (the zoo file), ``file``
        (``out``), ``sha1`` (of ``out``), ``tensors`` (how many were written) and ``load``: a
        line of Python that builds the source network and loads ``out`` into it.
    """
    kind, ckpt_filter = checkpoint_filter_for(source)
    name = source.split(":", 1)[1].lower()
    out = os.path.abspath(os.fspath(out))
    suffixes = (".params",) if kind == "gluoncv" else TORCH_SUFFIXES
    if not out.lower().endswith(suffixes):
        raise ConversionError(f"a {kind} checkpoint is a {' / '.join(suffixes)} file; got "
                              f"{out!r}")
    _refuse_overwriting_the_checkpoint(params, out, out)
    if not overwrite and os.path.lexists(out):
        raise ConversionError(f"{out!r} exists; pass overwrite=True (--overwrite) to replace it")
    net = _zoo_network(ckpt_filter.model, params)
    tensors = {p.name: p.data().asnumpy() for p in net.collect_params().values()}
    aux = bool(getattr(net, "aux_logits", False))
    classes = int(net.classes)
    if kind == "gluoncv":
        arrays = _gluoncv_arrays(name, ckpt_filter, net, tensors, aux, classes)
    else:
        arrays = _torch_arrays(f"{kind}:{name}", ckpt_filter, net, tensors, aux)
    try:
        with atomic_path(out, overwrite=overwrite) as tmp:
            _write(arrays, tmp, out)
    except FileExistsError as err:  # another writer made it meanwhile
        raise ConversionError(str(err)) from None
    return {"source": f"{kind}:{name}", "model": ckpt_filter.model, "classes": classes,
            "aux_logits": aux, "params": os.path.abspath(os.fspath(params)), "file": out,
            "sha1": sha1_file(out), "tensors": len(arrays),
            "load": _load_line(kind, name, classes, aux, out)}


def _zoo_network(model, params):
    """The zoo network with the weights of ``params``, through ``get_model``'s load path."""
    path = os.path.abspath(os.fspath(params))
    if not os.path.isfile(path):
        raise ConversionError(f"zoo weights {path!r} do not exist")
    return get_model(model, pretrained=path)


def _torch_arrays(source, ckpt_filter, net, tensors, aux):
    """``{source key: array}`` in the source network's key order."""
    keys = checkpoint_keys().get(source)
    if keys is None:
        raise ConversionError(f"the way back to {source} needs its state-dict keys, which "
                              "checkpoint_keys.json does not hold (tests/reference/"
                              "make_checkpoint_keys.py writes them)")
    names = ckpt_filter.source_names(keys, net.prefix, aux)
    problems = [f"missing: {zoo} (for {key})" for zoo, key in names.items() if zoo not in tensors]
    problems += [f"unexpected: {zoo} has no place in {source}" for zoo in tensors
                 if zoo not in names]
    _raise_problems(problems, net, source)
    written = {key: zoo for zoo, key in names.items()}
    arrays = {}
    for key in keys:
        if key in written:
            arrays[key] = np.ascontiguousarray(tensors[written[key]])
        elif key.endswith(BN_COUNTER) and key[:-len(BN_COUNTER)] + "running_mean" in written:
            arrays[key] = np.zeros((), np.int64)
    return arrays


def _gluoncv_arrays(name, ckpt_filter, net, tensors, aux, classes):
    """``{gluoncv name: array}`` as gluoncv's ``save_parameters`` writes them: by position,
    the zoo's order being gluoncv's (as in :func:`inceptionzoo.convert.convert`)."""
    try:
        gluoncv = import_gluoncv()
    except ImportError as err:
        raise ConversionError(f"writing a gluoncv checkpoint needs gluoncv: {err}") from None
    theirs = gluoncv.model_zoo.get_model(name, pretrained=False, classes=classes)
    params = theirs._collect_params_with_prefix()
    kept = [k for k in params if ckpt_filter.keeps(k, aux)]
    problems = []
    if len(kept) != len(tensors):
        problems.append(f"the checkpoint has {len(kept)} tensors, the zoo network "
                        f"{len(tensors)}")
    arrays = {}
    for key, (zoo, arr) in zip(kept, tensors.items()):
        want = params[key].shape
        if len(want) != arr.ndim or any(w not in (0, a) for w, a in zip(want, arr.shape)):
            problems.append(f"mis-shaped: {zoo} {arr.shape} -> {key} expects {want}")
        arrays[key] = arr
    _raise_problems(problems, net, f"gluoncv:{name}")
    for key, p in params.items():
        if key not in arrays:  # an alias of a kept parameter (GoogLeNet's head.2 = output)
            same = [k for k in kept if params[k] is p]
            if not same:
                raise ConversionError(f"gluoncv:{name} has a parameter {key!r} that no zoo "
                                      "tensor fills")
            arrays[key] = arrays[same[0]]
    return {k: arrays[k] for k in params}


def _raise_problems(problems, net, source):
    if problems:
        counts, lines = _summary(problems)
        raise ConversionError(f"{net.prefix.rstrip('_')!r} does not fit {source} "
                              f"({len(problems)} problems: {counts}):\n  " + "\n  ".join(lines))


def _write(arrays, tmp, out):
    """``arrays`` into the temporary file ``tmp``, in the format ``out``'s suffix names."""
    if out.lower().endswith(".params"):
        import mxnet as mx

        mx.nd.save(tmp, {k: mx.nd.array(v, dtype=v.dtype) for k, v in arrays.items()})
    elif out.lower().endswith(".safetensors"):
        try:
            from safetensors.numpy import save_file
        except ImportError:
            raise ConversionError("writing .safetensors needs the safetensors package: "
                                  f"{install_hint('convert')}") from None
        save_file(arrays, tmp, metadata={"format": "pt"})
    else:
        torch_archive.save(torch_archive.state_dict(arrays), tmp)


def _load_line(kind, name, classes, aux, out):
    """One line of Python, run where the source library is installed, that builds the source
    network for these weights and loads them (``load_state_dict`` is strict)."""
    if kind == "gluoncv":
        return (f"model = gluoncv.model_zoo.get_model({name!r}, classes={classes}); "
                f"model.load_parameters({out!r})")
    if kind == "torchvision":
        build = (f"torchvision.models.{name}(num_classes={classes}, aux_logits={aux}, "
                 "init_weights=False)")
    else:
        build = (f"timm.create_model({name!r}, num_classes={classes}"
                 + (", aux_logits=True)" if aux else ")"))
    read = (f"safetensors.torch.load_file({out!r})" if out.lower().endswith(".safetensors")
            else f"torch.load({out!r}, weights_only=True)")
    return f"model = {build}; model.load_state_dict({read})"
