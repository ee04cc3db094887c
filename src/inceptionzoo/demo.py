"""What ``inceptionzoo demo`` (``make demo``) shows: every registered model built and run, the
shipped MNIST network exported, and the shipped digits predicted from that export."""
import os
import time

from ._text import text_table

__all__ = ["run", "smoke_table"]


def smoke_table(names, batch_size=4):
    """Build, hybridize and run each model on a random batch.

    Parameters
    ----------
    names : list of str
        Registered model names.
    batch_size : int, default 4
        Images per batch.

    Returns
    -------
    list of tuple
        ``(name, variant, params, input shape, output shape, milliseconds)`` per model.
    """
    import mxnet as mx

    from . import get_model
    from .cost import num_params

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
    return rows


def run(out):
    """Show the zoo in three steps: every model built and run, the shipped MNIST network
    exported, the shipped example digits predicted from the export.

    Parameters
    ----------
    out : str
        Folder the export is written into (created).

    Returns
    -------
    int
        0.
    """
    from . import get_model, list_models
    from ._io import ensure_writable_dir
    from .export import export
    from .mnist import example_images
    from .serving import Predictor

    ensure_writable_dir(out)  # before the models run
    print("== 1. Every registered model, built, hybridized (static) and run on a random batch")
    rows = smoke_table(list_models())
    print(text_table(["model", "block", "params", "input", "output", "ms"],
                     [(n, v, f"{p:,}", s, o, f"{ms:.1f}") for n, v, p, s, o, ms in rows],
                     right={2, 5}))

    print("\n== 2. Export the shipped inception_mnist weights (symbol JSON + params + sidecars"
          ", raw-uint8 preprocessing baked in, ONNX)")
    try:
        import onnx  # noqa: F401
        with_onnx = True
    except ImportError:
        with_onnx = False
    net = get_model("inception_mnist", pretrained=True)
    paths = export(net, os.path.join(out, "inception_mnist"), preprocess=True,
                   onnx=with_onnx, overwrite=True)
    for role, path in paths.items():
        print(f"{role:>9}: {os.path.relpath(path)}")

    print("\n== 3. Predict the shipped example digits (real MNIST test images) from the export")
    images = example_images()
    pred = Predictor(os.path.dirname(paths["symbol"]))
    results = pred.predict_files(images, top_k=2)
    correct = 0
    table = []
    for path, top in zip(images, results):
        truth = os.path.basename(path).split("-")[1]
        correct += top[0][0] == truth
        table.append((os.path.basename(path), truth, top[0][0], f"{top[0][1]:.4f}",
                      f"{top[1][0]} ({top[1][1]:.4f})"))
    print(text_table(["file", "label", "predicted", "probability", "runner-up"], table))
    print(f"{correct}/{len(images)} correct")
    return 0
