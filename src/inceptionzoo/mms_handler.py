"""MXNet Model Server (multi-model-server 1.1) handler for an inceptionzoo export.

``inceptionzoo export NAME --pretrained --out DIR --mar`` copies this file into ``DIR/NAME.mar``
as ``inceptionzoo_handler.py`` (handler ``inceptionzoo_handler:handle``), and beside it
:mod:`inceptionzoo.imaging` as ``inceptionzoo_imaging.py``. It imports only MXNet, numpy and
that module (numpy and PIL; no inceptionzoo) and reads only the archive's own files:
``NAME-meta.json`` gives the input name/shape/dtype, the weights' evaluation transform and the
labels; ``NAME-0000.params`` the weights; ``serving.json`` the graphs to run by batch size
(rewrites of ``NAME-symbol.json`` that keep its values and avoid oneDNN's slow reference
kernels; without it, ``NAME-symbol.json``). When the
archive holds ``NAME.onnx`` and ``inceptionzoo_runtimes.py`` (:mod:`inceptionzoo.runtimes`) and
onnxruntime is installed in the server's environment, ONNX Runtime serves the batch sizes it runs
faster, after a check at load that it computes MXNet's logits (else MXNet serves, with a
warning).

A request body is one image (PNG, JPEG, ... of any size): decoded to grey or RGB, resized and
centre-cropped as the weights' evaluation transform says, as the Predictor does
(:class:`inceptionzoo.imaging.EvalTransform`). The answer is JSON: ``{"label": best,
"probability": p, "probabilities": {label: p, ...}}`` (softmax). A body that is not a decodable
image gets HTTP 400 with ``{"error": ...}`` naming what was expected and what was given.
"""
import glob
import importlib.util
import json
import os
import warnings

import mxnet as mx
import numpy as np

try:  # inside the .mar: the evaluation transform's module, carried beside this file
    from inceptionzoo_imaging import EvalTransform, ImageError
except ModuleNotFoundError:  # this file inside the inceptionzoo package
    from .imaging import EvalTransform, ImageError

#: Batch sizes warmed up at load time besides MMS's configured batch size.
WARMUP_BATCH_SIZES = (1,)


class BadRequest(ValueError):
    """A request body the model cannot take (answered with HTTP 400)."""


class InceptionZooService:
    """Loads the export once per worker; :meth:`handle` answers a batch of requests."""

    def __init__(self):
        self.initialized = False

    def initialize(self, context):
        """Load the export from the archive folder, bind a static graph and warm it up."""
        model_dir = context.system_properties["model_dir"]
        metas = glob.glob(os.path.join(glob.escape(os.fspath(model_dir)), "*-meta.json"))
        if len(metas) != 1:
            raise RuntimeError(f"{model_dir}: expected one NAME-meta.json, found {metas}")
        with open(metas[0]) as f:
            self.meta = meta = json.load(f)
        self.input_name = meta["input_name"]
        self.dtype = meta["input_dtype"]
        self.sample_shape = tuple(meta["input_shape"][1:])
        self.baked_in = meta["preprocess"]["baked_in"]
        shape = meta["input_shape"]
        if self.baked_in:
            self.hw, self.channels = tuple(shape[1:3]), (1 if len(shape) == 3 else shape[3])
        else:
            self.channels, self.hw = shape[1], tuple(shape[2:4])
        self.labels = meta.get("labels") or [str(i) for i in range(meta["classes"])]
        self.transform = EvalTransform.from_meta(meta["preprocess"], self.channels, self.hw)
        # serving.json: graphs by the largest batch each serves (value-preserving rewrites of
        # the portable graph, faster on MXNet's oneDNN build); without it the portable graph
        graphs = [{"up_to_batch": None, "symbol_file": meta["symbol_file"]}]
        serving = os.path.join(model_dir, "serving.json")
        if os.path.isfile(serving):
            with open(serving) as f:
                graphs = json.load(f)["graphs"]
        self.graphs = []  # (up_to_batch or None, network)
        for g in graphs:
            with warnings.catch_warnings():  # MXNet cannot know the input dtype until a call
                warnings.filterwarnings("ignore", message="Cannot decide type")
                net = mx.gluon.SymbolBlock.imports(
                    os.path.join(model_dir, g["symbol_file"]), [self.input_name],
                    os.path.join(model_dir, meta["params_file"]))
            net.hybridize(static_alloc=True, static_shape=True)
            self.graphs.append((g["up_to_batch"], net))
        # build the graphs and oneDNN primitives now, not on the first live request
        sizes = set(WARMUP_BATCH_SIZES) | {int(context.system_properties.get("batch_size") or 1)}
        for batch in sorted(sizes):
            x = mx.nd.zeros((batch,) + self.sample_shape, dtype=self.dtype)
            self.net_for(batch)(x).wait_to_read()
        self.ort, self.choice = self._onnxruntime(model_dir, sorted(sizes)), {}
        if self.ort is not None:
            self.ort.tune([self._sample(b) for b in sorted(sizes)], budget=0.5)  # its threads
            for batch in sorted(sizes):  # the faster runtime per batch size, timed alternately
                x = self._sample(batch)
                times = self.runtimes.time_alternating(
                    {"mxnet": self._mxnet_logits, "onnxruntime": self.ort}, x, budget=1.0)
                self.choice[batch] = min(times, key=times.get)
        self.initialized = True

    def _sample(self, batch):
        x = np.random.RandomState(0).uniform(0, 255 if self.dtype == "uint8" else 1,
                                             (batch,) + self.sample_shape)
        return x.astype(self.dtype)

    def _onnxruntime(self, model_dir, sizes):
        """An ONNX Runtime session of the archive's NAME.onnx that gives MXNet's logits, else
        None (no ONNX file, no onnxruntime, or other logits: then with a warning)."""
        module = os.path.join(model_dir, "inceptionzoo_runtimes.py")
        onnx_file = self.meta.get("onnx_file")
        if not onnx_file or not os.path.isfile(module) or \
                not os.path.isfile(os.path.join(model_dir, onnx_file)):
            return None
        spec = importlib.util.spec_from_file_location("inceptionzoo_runtimes", module)
        self.runtimes = runtimes = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(runtimes)
        if runtimes.import_onnxruntime() is None:
            return None
        x = self._sample(max(sizes))
        try:  # a file ONNX Runtime cannot load or run: MXNet serves, as in load_graph
            ort = runtimes.OrtRunner(os.path.join(model_dir, onnx_file))
            same, diff, scale = runtimes.parity(self._mxnet_logits(x), ort(x))
        except Exception as err:  # onnxruntime raises its own (pybind11) exception types
            warnings.warn(f"{onnx_file}: ONNX Runtime refused, MXNet serves: "
                          f"{type(err).__name__}: {err}")
            return None
        if not same:
            warnings.warn(f"{onnx_file}: ONNX Runtime refused, MXNet serves: max |logit "
                          f"difference| {diff:.3g} against MXNet, above {runtimes.PARITY:g} x "
                          f"the largest |logit| {scale:.3g}")
            return None
        for _ in range(3):
            ort(x)
        return ort

    def runtime_for(self, batch):
        """``'onnxruntime'`` or ``'mxnet'``: the runtime that runs a batch of this size."""
        if self.ort is None:
            return "mxnet"
        return self.runtimes.nearest(self.choice, batch, "mxnet")

    def _mxnet_logits(self, x):
        return self.net_for(len(x))(mx.nd.array(x, dtype=self.dtype)).asnumpy()

    def logits(self, x):
        """Logits of a batch (numpy, the graph's input dtype), in the runtime picked for it."""
        return self.ort(x) if self.runtime_for(len(x)) == "onnxruntime" else \
            self._mxnet_logits(x)

    def net_for(self, batch):
        """The network that runs a batch of this size."""
        return next(net for up_to, net in self.graphs if up_to is None or batch <= up_to)

    def _image(self, body):
        """Request body -> uint8 array (H, W) or (H, W, C) of the model's size."""
        if isinstance(body, str):
            body = body.encode("latin-1")
        if not isinstance(body, (bytes, bytearray)) or not body:
            raise BadRequest("expected the bytes of an image (PNG, JPEG, ...) as the request "
                             f"body; got {type(body).__name__} of length {len(body or b'')}")
        try:
            return self.transform.pixels(bytes(body), f"the request body ({len(body)} bytes)")
        except ImageError as err:
            raise BadRequest(str(err)) from None

    def _input(self, batch):
        if self.baked_in:
            return batch
        return np.ascontiguousarray(self.transform.normalise(batch), dtype=np.float32)

    def handle(self, data, context):
        """One JSON answer per request; HTTP 400 for the requests whose body is unusable."""
        answers, images, where = [None] * len(data), [], []
        for idx, request in enumerate(data):
            # a raw body arrives as "body"; a form field under its own name ("data" in MMS's
            # examples): take the body, else the first field
            body = next((request[k] for k in ("body", "data") if request.get(k) is not None),
                        next(iter(request.values()), None))
            try:
                images.append(self._image(body))
                where.append(idx)
            except BadRequest as err:
                context.set_response_status(400, "Bad Request", idx)
                answers[idx] = json.dumps({"error": str(err)})
        if images:
            logits = self.logits(self._input(np.stack(images)))
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = e / e.sum(axis=1, keepdims=True)
            for idx, p in zip(where, probs):
                best = int(p.argmax())
                answers[idx] = json.dumps({
                    "label": self.labels[best], "probability": float(p[best]),
                    "probabilities": {lab: float(v) for lab, v in zip(self.labels, p)}})
        for idx in range(len(data)):
            context.set_response_content_type(idx, "application/json")
        return answers


_service = InceptionZooService()


def handle(data, context):
    """MMS entry point: loads the model at the first call (data None), then answers batches."""
    if not _service.initialized:
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)
