"""What ``inceptionzoo demo`` (``make demo``) shows: every registered model built and run, the
shipped MNIST network exported, and the shipped digits predicted from that export."""
import json
import os
import time

from ._factory import get_model
from ._io import ensure_writable_dir
from ._registry import list_models, model_info
from ._text import text_table
from .cost import num_params
from .export import export
from .mnist import example_images
from .serving import Predictor

__all__ = ["run", "smoke_table"]

#: the smoke table's columns, and those aligned right
COLUMNS, RIGHT = ["model", "block", "params", "input", "output", "ms"], {2, 5}


def smoke_table(names, batch_size=4, on_row=None):
    """Build, hybridize and run each model on a random batch.

    Parameters
    ----------
    names : list of str
        Registered model names.
    batch_size : int, default 4
        Images per batch.
    on_row : callable, optional
        Called with each row as soon as its model has run.

    Returns
    -------
    list of tuple
        ``(name, variant, params, input shape, output shape, milliseconds)`` per model.
    """
    import mxnet as mx

    rows = []
    for name in names:
        net = get_model(name)
        net.initialize(mx.init.Xavier())
        net.hybridize(static_alloc=True, static_shape=True)
        x = mx.nd.random.uniform(shape=(batch_size,) + tuple(net.info.input_shape))
        net(x).wait_to_read()  # builds the graph
        t0 = time.perf_counter()
        out = net(x)
        out.wait_to_read()
        ms = (time.perf_counter() - t0) * 1e3
        rows.append((name, net.info.variant, num_params(net), tuple(x.shape), tuple(out.shape),
                     ms))
        if on_row is not None:
            on_row(rows[-1])
    return rows


def _cells(row):
    name, variant, params, shape, out, ms = row
    return (name, variant, f"{params:,}", shape, out, f"{ms:.1f}")


def _streamed_table(names, batch_size=4):
    """The smoke table, each row printed as its model finishes: the column widths come from
    the registry (names, blocks, parameter counts, shapes) before any model runs."""
    guess = [_cells((n, model_info(n).variant, model_info(n).num_params,
                     (batch_size,) + tuple(model_info(n).input_shape),
                     (batch_size, model_info(n).classes), 99999.9)) for n in names]
    lines = text_table(COLUMNS, guess, right=RIGHT).splitlines()
    print("\n".join(lines[:2]), flush=True)
    widths = [len(c) for c in lines[1].split("  ")]

    def show(row):
        print("  ".join(c.rjust(w) if i in RIGHT else c.ljust(w)
                        for i, (c, w) in enumerate(zip(map(str, _cells(row)), widths))).rstrip(),
              flush=True)

    return smoke_table(names, batch_size, on_row=show)


def _onnx_missing():
    """Why the ONNX step is skipped (None: it runs)."""
    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        return ("onnx is not installed (the onnx extra: pip install -c constraints.txt -e "
                "'.[cpu,onnx]' in the checkout)")
    return None


def run(out, as_json=False):
    """Show the zoo in three steps: every model built and run, the shipped MNIST network
    exported, the shipped example digits predicted from the export; then what to try next.

    Parameters
    ----------
    out : str
        Folder the export is written into (created).
    as_json : bool, default False
        Print one JSON object (the models' rows, the files, the predictions) instead of the
        tables.

    Returns
    -------
    int
        0.
    """
    say = (lambda *a, **k: None) if as_json else print
    ensure_writable_dir(out)  # before the models run
    say("== 1. Every registered model, built, hybridized (static) and run on a random batch",
        flush=True)
    rows = smoke_table(list_models()) if as_json else _streamed_table(list_models())

    skipped = _onnx_missing()
    say("\n== 2. Export the shipped inception_mnist weights (symbol JSON + params + sidecars"
        ", raw-uint8 preprocessing baked in" + (", ONNX)" if not skipped else ")"))
    if skipped:
        say(f"   (no ONNX file: {skipped})")
    net = get_model("inception_mnist", pretrained=True)
    paths = export(net, os.path.join(out, "inception_mnist"), preprocess=True,
                   onnx=not skipped, overwrite=True)
    for role, path in paths.items():
        say(f"{role:>9}: {os.path.relpath(path)}")

    say("\n== 3. Predict the shipped example digits (real MNIST test images) from the export")
    images = example_images()
    export_dir = os.path.dirname(paths["symbol"])
    pred = Predictor(export_dir)
    results = pred.predict_files(images, top_k=2)
    correct = 0
    table = []
    for path, top in zip(images, results):
        truth = os.path.basename(path).split("-")[1]
        correct += top[0][0] == truth
        table.append((os.path.basename(path), truth, top[0][0], f"{top[0][1]:.4f}",
                      f"{top[1][0]} ({top[1][1]:.4f})"))
    if as_json:
        print(json.dumps({
            "models": [dict(zip(COLUMNS, (n, v, p, list(s), list(o), ms)))
                       for n, v, p, s, o, ms in rows],
            "export": paths, "onnx_skipped": skipped,
            "predictions": [{"file": os.path.basename(p), "label": row[1], "top": top}
                            for p, top, row in zip(images, results, table)],
            "correct": correct, "images": len(images)}))
        return 0
    print(text_table(["file", "label", "predicted", "probability", "runner-up"], table))
    print(f"{correct}/{len(images)} correct")
    rel = os.path.relpath(export_dir)
    print("\nNext:\n"
          "  inceptionzoo examples --out examples        # these digits, to predict yourself\n"
          f"  inceptionzoo predict {rel} examples/digit-7-test0.png\n"
          "  inceptionzoo train inception_mnist --epochs 1   # trains into runs/inception_mnist\n"
          "  inceptionzoo list; inceptionzoo info inception_v3; inceptionzoo --help\n"
          "  docs/index.md (in the checkout): training, deployment, converting torchvision /"
          " timm / gluoncv weights")
    return 0
