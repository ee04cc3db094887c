"""Checkpoints of torchvision, timm and gluoncv -> zoo ``.params`` files (one job: mapping
every tensor, strictly).

``convert('torchvision:inception_v3', 'inception_v3_google-0cc3c7bd.pth', 'v3.params')`` reads
the checkpoint (:func:`inceptionzoo.checkpoints.read_checkpoint`: ``.pth``/``.pt`` state dicts
without torch, ``.safetensors``, gluoncv ``.params``; every claim of the file checked against
its bytes), renames every tensor with the family's checkpoint filter (declared in the model's
file, :mod:`inceptionzoo.checkpoint_filter`), checks names, shapes
and values against the zoo network -- every missing, unexpected, mis-shaped and non-numeric
tensor in ONE :class:`ConversionError` -- and writes ``v3.params`` plus the sidecar ``v3.json``
as a pair (under a lock on the folder; a conversion whose output another process replaced
meanwhile loses, and the checkpoint itself is never an output). The sidecar is the weights' spec
(:class:`~inceptionzoo.weights_spec.WeightsSpec`, the one the model declares for that source,
with the classes, the SHA-1 of the checkpoint and of the params file filled in).
``get_model('inception_v3', pretrained='v3.params')`` loads it back (:mod:`inceptionzoo._builder`),
checks the SHA-1 and puts that preprocessing into ``net.info``.

gluoncv's files name parameters by position (``features.7.1.0.weight``); their layers are in
the same order as the zoo network's, so they are mapped by order, each tensor's shape checked.
"""
import dataclasses
import os
import tempfile
from collections.abc import Mapping

import numpy as np

from . import __version__
from ._builder import source_path
from ._factory import get_model
from ._io import atomic_path, ensure_writable_dir, folder_lock, sha1_file, write_json
from ._registry import checkpoint_sources, model_weights
from .checkpoint_filter import Source
from .checkpoints import ConversionError, read_checkpoint
from .weights_spec import sidecar_path

__all__ = ["ConversionError", "Source", "SOURCES", "convert", "checkpoint_filter_for",
           "read_checkpoint", "sidecar_path"]


class _Sources(Mapping):
    """``(source, source model name) -> Source``: a live view of the checkpoint filters the
    model files declare (``register_model(..., sources=...)``, :func:`checkpoint_sources`)."""

    def __getitem__(self, key):
        return checkpoint_sources()[key]

    def __iter__(self):
        return iter(checkpoint_sources())

    def __len__(self):
        return len(checkpoint_sources())


#: every source network and its filter, read from the registry (see :class:`_Sources`)
SOURCES = _Sources()


def checkpoint_filter_for(source):
    """``(kind, checkpoint filter)`` of the source network ``source``.

    Parameters
    ----------
    source : str
        ``'SOURCE:NAME'`` (``'torchvision:inception_v3'``), case-insensitive.

    Returns
    -------
    (str, inceptionzoo.checkpoint_filter.Source)

    Raises
    ------
    ConversionError
        Not ``SOURCE:NAME``, or a source network no model declares.
    """
    if not isinstance(source, str) or ":" not in source:
        raise ConversionError(f"expected SOURCE:NAME (e.g. torchvision:inception_v3); got "
                              f"{source!r}")
    src, name = source.split(":", 1)
    key = (src.lower(), name.lower())
    sources = checkpoint_sources()
    if key not in sources:
        known = ", ".join(sorted(f"{s}:{n}" for s, n in sources))
        raise ConversionError(f"unknown source network {source!r}; known: {known}")
    return key[0], sources[key]


# --- mapping ----------------------------------------------------------------------------------

def _map(tensors, kind, ckpt_filter, net, aux_logits, checkpoint="the checkpoint"):
    """``{zoo name: array}`` for ``net``, or a ConversionError listing every problem."""
    kept = [(k, v) for k, v in tensors.items() if ckpt_filter.keeps(k, aux_logits)]
    params = net.collect_params()
    expected = {name: p.shape for name, p in params.items()}
    problems = []
    if kind == "gluoncv":  # by position: both lists are in definition order
        names = list(expected)
        if len(kept) != len(names):
            problems.append(f"the checkpoint has {len(kept)} tensors, the zoo network "
                            f"{len(names)}")
        pairs = [(src, zoo, arr) for (src, arr), zoo in zip(kept, names)]
    else:
        pairs = [(src, ckpt_filter.zoo_name(src, net.prefix), arr) for src, arr in kept]
    mapped = {}
    for src, zoo, arr in pairs:
        if zoo not in expected:
            problems.append(f"unexpected: {src} (-> {zoo})")
        elif tuple(arr.shape) != tuple(expected[zoo]):
            problems.append(f"mis-shaped: {src} {tuple(arr.shape)} -> {zoo} expects "
                            f"{tuple(expected[zoo])}")
        elif arr.dtype.kind != "f":
            problems.append(f"non-numeric: {src} has dtype {arr.dtype}; weights are floating "
                            "point")
        elif not np.isfinite(arr).all():
            problems.append(f"non-numeric: {src} holds {int((~np.isfinite(arr)).sum())} NaN or "
                            "infinite value(s)")
        else:
            mapped[zoo] = arr
    covered = {zoo for _, zoo, _ in pairs}
    problems += [f"missing: {zoo} {tuple(shape)}" for zoo, shape in expected.items()
                 if zoo not in covered]
    if problems:
        counts, lines = _summary(problems)
        raise ConversionError(f"{checkpoint} does not fit {net.prefix.rstrip('_')!r} "
                              f"({len(problems)} problems: {counts}):\n  " + "\n  ".join(lines))
    return mapped


def _summary(problems, most=10):
    """``(counts, lines)``: how many problems of each kind, and at most ``most`` of each."""
    counts, lines = [], []
    for kind in ("missing", "unexpected", "mis-shaped", "non-numeric", "the checkpoint has"):
        found = [p for p in problems if p.startswith(kind)]
        if found:
            counts.append(f"{len(found)} {kind.split()[-1] if ' ' in kind else kind}")
            lines += found[:most]
            if len(found) > most:
                lines.append(f"... and {len(found) - most} more {kind}")
    return ", ".join(counts), lines


def convert(source, checkpoint, out, aux_logits=False, overwrite=False):
    """Convert a checkpoint into a zoo ``.params`` file and its JSON sidecar.

    Parameters
    ----------
    source : str
        ``SOURCE:NAME``, case-insensitive: a key of :data:`SOURCES` (the sources the model
        files declare, e.g. ``torchvision:inception_v3``; an unknown one's error lists them).
    checkpoint : str
        The source's weight file.
    out : str
        The ``.params`` file to write (atomically); the sidecar goes to ``sidecar_path(out)``.
        An existing folder: ``MODEL.TAG.params`` there, the tag the model declares for the
        source (where ``get_model(MODEL, pretrained=TAG, root=FOLDER)`` looks).
    aux_logits : bool, default False
        Keep Inception-v3's auxiliary head (the network is then built with it).
    overwrite : bool, default False
        Replace an existing ``out`` (or its sidecar); without it they are refused, as
        ``export`` and :func:`inceptionzoo.convert_back.convert_back` refuse theirs.

    Returns
    -------
    dict
        The sidecar's content: ``WeightsSpec.to_dict()`` (``model``, ``file``, ``sha1``,
        ``source``, ``resize_size`` ...).
    """
    import mxnet as mx

    kind, ckpt_filter = checkpoint_filter_for(source)
    if aux_logits and not ckpt_filter.aux_prefix:
        keep = sorted(f"{k}:{n}" for (k, n), s in checkpoint_sources().items() if s.aux_prefix)
        raise ConversionError(
            f"--aux-logits: {source}'s auxiliary heads, if its checkpoint has them, are not "
            f"converted (the zoo network takes the main classifier only): convert without "
            f"--aux-logits; the sources whose auxiliary head converts: {', '.join(keep)}")
    out = os.path.abspath(os.fspath(out))
    if os.path.isdir(out):
        out = source_path(source, out)
    if not out.endswith(".params"):
        raise ConversionError(f"the output file must end in .params; got {out!r}")
    side = sidecar_path(out)
    _refuse_overwriting_the_checkpoint(checkpoint, out, side)
    if not overwrite:
        for path in (out, side):
            if os.path.lexists(path):
                raise ConversionError(f"{path!r} exists; pass overwrite=True (--overwrite) to "
                                      "replace it")
    before = _output_state(out, side)  # another writer changing it meanwhile makes us lose
    tensors = read_checkpoint(checkpoint, kind)
    head = tensors.get(ckpt_filter.classifier)
    if head is None or head.ndim != 2:
        raise ConversionError(f"{checkpoint!r} has no classifier {ckpt_filter.classifier!r}: not a "
                              f"{source} checkpoint")
    if head.shape[0] < 1:
        raise ConversionError(f"{checkpoint!r}: classifier {ckpt_filter.classifier!r} has shape "
                              f"{tuple(head.shape)}: no classes")
    classes = int(head.shape[0])
    options = {"aux_logits": True} if aux_logits else {}
    net = get_model(ckpt_filter.model, classes=classes, **options)
    mapped = _map(tensors, kind, ckpt_filter, net, aux_logits, repr(os.fspath(checkpoint)))
    net.initialize(mx.init.Zero())
    for name, p in net.collect_params().items():
        p.set_data(mx.nd.array(mapped[name], dtype=p.dtype))
    staged = _stage_params(net, out)
    try:
        meta = _sidecar(kind, source, ckpt_filter, classes, options, out, staged,
                        checkpoint).to_dict()
    except BaseException:
        os.remove(staged)
        raise
    _publish_pair(staged, out, meta, before)
    return meta


def _sidecar(kind, source, ckpt_filter, classes, options, out, staged, checkpoint):
    """The converted file's :class:`~inceptionzoo.weights_spec.WeightsSpec`: the one the zoo
    model declares for this source, with what this conversion made filled in."""
    tag = f"{kind}:{source.split(':', 1)[1].lower()}"
    declared = [w for w in model_weights(ckpt_filter.model) if w.source == tag]
    if not declared:
        raise ConversionError(f"model {ckpt_filter.model!r} declares no weights spec for {tag!r}")
    return dataclasses.replace(
        declared[0], classes=classes, class_names=declared[0].class_names
        if classes == declared[0].classes else None, options=dict(options),
        file=os.path.basename(out), sha1=sha1_file(staged),
        checkpoint=os.path.basename(os.fspath(checkpoint)), checkpoint_sha1=sha1_file(checkpoint),
        inceptionzoo_version=__version__)


# --- writing the params file and its sidecar as a pair ----------------------------------------

def _stage_params(net, out):
    """Save ``net``'s parameters to a temporary name in ``out``'s folder; return that name."""
    folder = ensure_writable_dir(os.path.dirname(out))
    fd, staged = tempfile.mkstemp(prefix="." + os.path.basename(out) + ".", suffix=".tmp",
                                  dir=folder)
    os.close(fd)
    try:
        net.save_parameters(staged)
    except BaseException:
        os.remove(staged)
        raise
    return staged


def _publish_pair(staged, out, meta, before):
    """Move the staged params to ``out`` and write its sidecar, under the folder's lock.

    ``before`` is what was at ``out`` and its sidecar when the conversion started: if another
    writer replaced either meanwhile, this one loses (nothing written). The sidecar is renamed
    into place first, then the params; a crash between the two leaves a sidecar whose SHA-1
    does not match the params file, which loading refuses -- never a pair that loads wrong.
    """
    side = sidecar_path(out)
    try:
        with folder_lock(os.path.dirname(out)):
            if _output_state(out, side) != before:
                raise ConversionError(f"{out!r} was written by another process while this "
                                      "conversion ran; nothing written (run again to replace "
                                      "it)")
            with atomic_path(out) as tmp:
                os.replace(staged, tmp)
                write_json(side, meta)
    finally:
        if os.path.exists(staged):
            os.remove(staged)


def _refuse_overwriting_the_checkpoint(checkpoint, out, side):
    """The output pair must not replace the checkpoint (any spelling, link or hard link)."""
    for target in (out, side):
        try:
            same = os.path.samefile(checkpoint, target)
        except OSError:  # one of them does not exist
            same = False
        if same:
            raise ConversionError(f"--out {out!r} would replace the checkpoint "
                                  f"{os.fspath(checkpoint)!r} ({target!r} is the same file); "
                                  "write the converted file under another name")


def _output_state(*paths):
    """What is at ``paths`` now (inode, size, modification time, or None)."""
    state = []
    for path in paths:
        try:
            st = os.lstat(path)
            state.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            state.append(None)
    return state
