"""The spellings before the command line's one convention, still accepted for one release:
:data:`OLD_SPELLINGS` and :func:`_settle`, which maps them onto the new ones."""
import os

from .. import model_weights
from .._deprecation import deprecated
from .._registry import list_models
from ..errors import InceptionZooError


#: Each old spelling (still accepted for one release) -> the new one, by command: what the
#: deprecation line on stderr says.
OLD_SPELLINGS = {
    "train": {"--model NAME": "inceptionzoo train NAME ...",
              "no model (inception_mnist)": "inceptionzoo train inception_mnist ...",
              "--pretrained FILE": "--params FILE",
              "--data-workers N": "--data-threads N"},
    "evaluate": {"--model NAME": "inceptionzoo evaluate NAME ...",
                 "no model (inception_mnist)": "inceptionzoo evaluate inception_mnist ...",
                 "--data-workers N": "--data-threads N"},
    "predict": {"--model-dir DIR": "inceptionzoo predict DIR IMAGE ..."},
    "convert": {"--out FILE.params": "--out FOLDER --name NAME"},
}


for _command in ("train", "evaluate", "export", "list", "info"):
    OLD_SPELLINGS.setdefault(_command, {})["--root DIR"] = "--weights-dir DIR"


del _command


def _deprecated(command, old):
    deprecated(old, OLD_SPELLINGS[command][old], command=command)


def _is_tag(model, tag):
    """Whether ``tag`` names weights of the registered model ``model``."""
    return _registered(model) and tag.lower() in [w.tag for w in model_weights(model)]


def _registered(name):
    return name.lower() in list_models()


def _settle(args):
    """Map the old spellings of ``args`` onto the new ones, one deprecation line on stderr per
    old spelling used; an argument given in both spellings, or missing, is a ``ValueError``."""
    command = args.command
    if getattr(args, "old_root", None) is not None:
        if args.weights_dir is not None:
            raise InceptionZooError("give --weights-dir only (--root is its old spelling)")
        _deprecated(command, "--root DIR")
        args.weights_dir = args.old_root
    if getattr(args, "old_model", None) is not None:
        if args.model is not None:
            raise InceptionZooError("the model is given twice (MODEL and --model, its old "
                                    "spelling): give MODEL only")
        _deprecated(command, "--model NAME")
        args.model = args.old_model
    if (command in ("train", "evaluate") and args.model is None
            and isinstance(args.pretrained, str) and not os.path.exists(args.pretrained)
            and _registered(args.pretrained)):
        # `train --pretrained inception_v3 ...`: the model, with its default weights (not a
        # TAG, nor the old spelling `--pretrained FILE`: no such file)
        args.model, args.pretrained = args.pretrained, True
    if command in ("train", "evaluate") and args.model is None:
        _deprecated(command, "no model (inception_mnist)")
        args.model = "inception_mnist"
    if getattr(args, "old_data_workers", None) is not None:
        if args.data_threads is not None:
            raise InceptionZooError("give --data-threads only (--data-workers is its old spelling)")
        _deprecated(command, "--data-workers N")
        args.data_threads = args.old_data_workers
    if command == "train":
        if isinstance(args.pretrained, str) and not _is_tag(args.model, args.pretrained):
            if args.params is not None:
                raise InceptionZooError("give --params FILE only (--pretrained FILE is its old "
                                        "spelling)")
            _deprecated(command, "--pretrained FILE")
            args.params, args.pretrained = args.pretrained, None
        if args.params is not None and args.pretrained is not None:
            raise InceptionZooError("--pretrained and --params FILE: expected one of them; got "
                                    "both")
        args.pretrained = args.params if args.params is not None else args.pretrained
    if command == "predict":
        if args.old_model_dir is not None:
            _deprecated(command, "--model-dir DIR")
            args.images.insert(0, args.model_dir)
            args.model_dir = args.old_model_dir
        if not args.images:
            raise InceptionZooError("expected EXPORT_DIR IMAGE [IMAGE ...]; got no image")
    if command == "convert":
        args.out_file = None
        out = args.out
        if out is not None and out.lower().endswith(".params") and not os.path.isdir(out):
            if args.name is not None:
                raise InceptionZooError(f"--out is a folder (--name NAME.params goes there); got "
                                        f"the file {args.out!r}")
            _deprecated(command, "--out FILE.params")
            args.out_file = args.out
    return args
