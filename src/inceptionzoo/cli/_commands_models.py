"""The commands about models and their weights: ``list``, ``info``, ``export``, ``convert``
(and back, ``--to``), ``demo``, ``examples``."""
import json
import os
import sys

from .. import get_model, list_models, model_info, model_weights
from .._builder import source_path, weights_status
from .._docs import models_markdown
from ..errors import InceptionZooError
from ..weights import weights_home
from ._output import _report


def _cmd_list(args):
    names = list_models(args.include, args.exclude)
    if args.json:
        print(json.dumps(names))
    elif args.markdown:
        sys.stdout.write(models_markdown(names))
    else:
        for name in names:
            for line in _weights_lines(name, args.weights_dir) if args.weights else [name]:
                print(line)
    return 0


def _weights_lines(name, root):
    """One line per set of weights ``name`` declares: present (path, SHA-1), or the command
    that makes it."""
    return [f"{w['name']}{' (default)' if w['default'] else ''}: "
            + (f"present: {w['path']} (SHA-1 {w['sha1']})" if w["path"] else
               f"absent; get it: {w['get']}") for w in weights_status(name, root)]


def _cmd_info(args):
    info = model_info(args.model)
    if args.json:
        print(json.dumps(dict(info.to_dict(), weights=weights_status(info.name, args.weights_dir)),
                         indent=2))
        return 0
    for key, value in info.to_dict().items():
        if key != "pretrained":  # which weights are loaded: none, here
            print(f"{key:>12}: {value}")
    print(f"{'weights':>12}:" + ("" if model_weights(info.name) else " none declared"))
    for line in _weights_lines(info.name, args.weights_dir):
        print(f"{'':>14}{line}")
    from ..cost import count  # CLI start-up: loaded when the command runs

    print()
    print(count(get_model(info.name), info.input_shape).table())
    return 0


def _cmd_export(args):
    from ..export import export, export_prefix  # CLI start-up: loaded when the command runs

    if not (args.params or args.pretrained):
        raise InceptionZooError("give --pretrained [TAG] or --params FILE: an export needs "
                                "trained weights")
    net = get_model(args.model, pretrained=args.params or args.pretrained,
                    root=args.weights_dir)
    prefix = export_prefix(args.out, args.name or net.info.name)
    paths = export(net, prefix, preprocess=args.preprocess, onnx=args.onnx,
                   overwrite=args.overwrite, mar=args.mar, **_precision_args(args))
    _report(args, paths, [f"{role:>9}: {path}" for role, path in paths.items()])
    return 0


def _precision_args(args):
    """export()'s lower-precision arguments from ``export``'s flags."""
    if args.precision == "fp32":
        given = [f for f, v in (("--calib", args.calib), ("--holdout", args.holdout)) if v]
        if given:
            raise InceptionZooError(f"{' and '.join(given)} go with --precision int8 or bf16")
        return {}
    given = {"max_accuracy_drop": args.max_accuracy_drop, "calibration_size": args.calib_size,
             "holdout_size": args.holdout_size}  # the others: export()'s defaults
    return dict({k: v for k, v in given.items() if v is not None}, precision=args.precision,
                calibration=args.calib, holdout=args.holdout)


def _cmd_convert(args):
    from ..convert import convert, sidecar_path  # CLI start-up: loaded when the command runs

    if args.to:
        return _cmd_convert_back(args)
    path = os.path.abspath(args.out_file or _converted_path(
        args.source, weights_home() if args.out is None else args.out, args.name))
    meta = convert(args.source, args.checkpoint, path, aux_logits=args.aux_logits,
                   overwrite=args.overwrite)
    if args.json:
        print(json.dumps({"model": meta["model"], "params": path, "sha1": meta["sha1"]}))
    else:
        print(f"{meta['source']} -> {meta['model']}: {path} (SHA-1 {meta['sha1']})")
        print(f"  sidecar: {sidecar_path(path)}; input {meta['input_size']}, resize "
              f"{meta['resize_size']} ({meta['interpolation']}), mean {meta['mean']}, std "
              f"{meta['std']}")
    return 0


def _cmd_convert_back(args):
    """``convert --to SOURCE:NAME ZOO.params OUT``: the positionals are the zoo file and the
    checkpoint to write."""
    from ..convert_back import convert_back  # CLI start-up: loaded when the command runs

    given = [flag for flag, value in (("--out", args.out), ("--name", args.name),
                                      ("--aux-logits", args.aux_logits)) if value]
    if given:
        raise InceptionZooError(f"convert --to SOURCE:NAME ZOO.params OUT takes no "
                                f"{', '.join(given)} (OUT is the checkpoint to write; the "
                                "auxiliary head goes back when the zoo file has it)")
    meta = convert_back(args.to, args.source, args.checkpoint, overwrite=args.overwrite)
    _report(args, {k: meta[k] for k in ("source", "model", "classes", "file", "sha1")},
            [f"{meta['model']} -> {meta['source']}: {meta['file']} ({meta['tensors']} tensors, "
             f"{meta['classes']} classes; SHA-1 {meta['sha1']})", f"  load: {meta['load']}"])
    return 0


def _converted_path(source, folder, name):
    """``FOLDER/NAME.params``, ``NAME`` defaulting to ``MODEL.TAG``: the zoo model of
    ``SOURCE:NAME`` and the tag it declares for that source (where ``pretrained=TAG`` looks)."""
    from ..convert import checkpoint_filter_for  # CLI start-up: loaded when the command runs
    from ..export import export_prefix  # CLI start-up: loaded when the command runs

    if name is None:
        checkpoint_filter_for(source)  # an unknown source: the converter's error, naming them
        return source_path(source, folder)
    return export_prefix(folder, name) + ".params"


def _cmd_demo(args):
    from ..demo import run  # CLI start-up: loaded when the command runs

    return run(args.out, as_json=args.json)


def _cmd_examples(args):
    from ..mnist import write_examples  # CLI start-up: loaded when the command runs

    paths = write_examples(args.out, overwrite=args.overwrite)
    _report(args, paths, [f"wrote {len(paths)} real MNIST test digits (digit-LABEL-testINDEX.png)"
                          f" to {args.out}"] + [f"  {p}" for p in paths])
    return 0
