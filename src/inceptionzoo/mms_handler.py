"""MXNet Model Server (multi-model-server 1.1) handler for an inceptionzoo export.

``inceptionzoo export NAME --pretrained --out DIR --mar`` copies this file into ``DIR/NAME.mar``
as ``inceptionzoo_handler.py`` (handler ``inceptionzoo_handler:handle``), and beside it the
serving core (:mod:`inceptionzoo.serving_core` and the modules it imports) as the package
``inceptionzoo_serving/``, which needs only numpy, PIL, MXNet and (optionally) onnxruntime: no
inceptionzoo. The handler is a thin adapter: the core reads and checks the archive's export
(the same reader, checks and SHA-1s as :func:`inceptionzoo.serving.load_graph`), picks the
runtime and MXNet graph per batch size by the same policy (a ``NAME-tuning.json`` in the archive
included), and classifies through the same :class:`~inceptionzoo.serving_core.Classifier` as the
:class:`~inceptionzoo.serving.Predictor`: the same probabilities from the same graph.

A request body is one image (PNG, JPEG, ... of any size): decoded to grey or RGB, resized and
centre-cropped as the weights' evaluation transform says. MMS may hand over any batch of
requests (its ``batch_size`` / ``max_batch_delay`` registration parameters; ``export --mar``
records suitable values in ``meta["batching"]``): each body is decoded on its own, so a body
that is not a decodable image gets HTTP 400 with ``{"error": ...}`` naming what was expected and
what was given, and the other requests of the batch are answered as if it were not there. An
answer is JSON: ``{"label": best, "probability": p, "probabilities": {label: p, ...}}``.
"""
import json

import numpy as np

try:  # inside the .mar: the serving core, carried beside this file
    from inceptionzoo_serving import serving_core as core
except ModuleNotFoundError as err:  # this file inside the inceptionzoo package
    if err.name != "inceptionzoo_serving":
        raise
    from . import serving_core as core

#: Batch sizes warmed up at load time besides MMS's configured batch size.
WARMUP_BATCH_SIZES = (1,)


class BadRequest(ValueError):
    """A request body the model cannot take (answered with HTTP 400)."""


class InceptionZooService:
    """Loads the export once per worker; :meth:`handle` answers a batch of requests."""

    def __init__(self):
        self.initialized = False

    def initialize(self, context):
        """Load the export from the archive folder through the serving core and warm up the
        batch sizes MMS will form (1 and its configured ``batch_size``)."""
        model_dir = context.system_properties["model_dir"]
        batch_size = int(context.system_properties.get("batch_size") or 1)
        self.graph = core.load_graph(model_dir, runtime="auto", warmup=())
        self.classifier = core.Classifier(self.graph)
        self.meta, self.labels = self.graph.meta, self.classifier.labels
        self.graph.warmup(sorted(set(WARMUP_BATCH_SIZES) | {batch_size}))
        self.initialized = True

    def _image(self, body):
        """Request body -> uint8 array (H, W) or (H, W, C) of the model's size."""
        if isinstance(body, str):
            body = body.encode("latin-1")
        if not isinstance(body, (bytes, bytearray)) or not body:
            raise BadRequest("expected the bytes of an image (PNG, JPEG, ...) as the request "
                             f"body; got {type(body).__name__} of length {len(body or b'')}")
        try:
            return self.classifier.image(bytes(body), f"the request body ({len(body)} bytes)")
        except core.PredictionError as err:
            raise BadRequest(str(err)) from None

    def handle(self, data, context):
        """One JSON answer per request of the batch; HTTP 400 for those whose body is
        unusable, the others answered with their own probabilities."""
        answers, images, where = [None] * len(data), [], []
        for idx, request in enumerate(data):
            # a raw body arrives as "body"; a form field under its own name ("data" in MMS's
            # examples): take the body, else the first field
            body = next((request[k] for k in ("body", "data") if request.get(k) is not None),
                        next(iter(request.values()), None)) if isinstance(request, dict) else None
            try:
                images.append(self._image(body))
                where.append(idx)
            except BadRequest as err:
                context.set_response_status(400, "Bad Request", idx)
                answers[idx] = json.dumps({"error": str(err)})
        if images:
            probs = self.classifier.probabilities(np.stack(images))
            for idx, p in zip(where, probs):
                best = int(p.argmax())
                answers[idx] = json.dumps({
                    "label": self.labels[best], "probability": float(p[best]),
                    "probabilities": {lab: float(v) for lab, v in zip(self.labels, p)}})
        # no set_response_content_type: MMS 1.1.11's frontend splits a batch's answer frame at
        # that header ("CorruptedFrameException: Message size exceed limit: 12", 12 =
        # len("content-type")), kills the worker and answers the whole batch 500
        return answers


_service = InceptionZooService()


def handle(data, context):
    """MMS entry point: loads the model at the first call (data None), then answers batches."""
    if not _service.initialized:
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)
