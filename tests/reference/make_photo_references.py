"""Reference predictions on a real photo, through each source's own evaluation pipeline.

Runs in the PyTorch side environment (``.venv-torch``), never in the MXNet one::

    .venv-torch/bin/python tests/reference/make_photo_references.py OUT_DIR PHOTO CASES_JSON

``CASES_JSON`` as for ``make_references.py``, each with the name of its classifier's weight
(``"classifier": "fc.weight"``, the model file's ``Source.classifier``).

For every case: the source network as ``make_references.py`` builds it (fixed seed, random
weights and random batch-norm statistics), its classifier then rescaled so that the logits on
the photo have a standard deviation of 3 (a random network's softmax is otherwise one-hot and
blind to preprocessing), saved as ``model.pth``; the photo file through the source's
recommended evaluation transform (torchvision: the weights' ``transforms()``, i.e. resize 342 /
crop 299 or resize 256 / crop 224, bilinear, on the PIL image; timm: ``resolve_data_config`` +
``create_transform``) and the network in eval mode. Written: ``probs.npy`` (softmax, float64
from the float32 logits), ``logits.npy``, ``meta.json`` (the transform as the source printed it).
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

from make_references import BUILD_OPTIONS, _build, _randomise, tv_weights

LOGIT_STD = 3.0


def _transform(source, name, model):
    if source == "torchvision":
        return tv_weights(name).transforms()
    import timm.data

    return timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))


def make(case, spec, photo, out):
    source, name = spec["source"], spec["name"]
    gen = torch.Generator().manual_seed(sum(map(ord, case)))
    torch.manual_seed(0)
    model, _ = _build(source, name, BUILD_OPTIONS[source])
    _randomise(model, gen)
    model.eval()
    transform = _transform(source, name, model)
    with Image.open(photo) as img:
        x = transform(img.convert("RGB"))[None]
    fc = model.get_submodule(spec["classifier"].rsplit(".", 1)[0])  # rescaled
    with torch.no_grad():
        scale = LOGIT_STD / float(model(x).std())
        fc.weight.mul_(scale)
        fc.bias.mul_(scale)
        logits = model(x)[0].double()
    probs = torch.softmax(logits, 0).numpy()
    folder = os.path.join(out, case)
    os.makedirs(folder, exist_ok=True)
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()},
               os.path.join(folder, "model.pth"))
    np.save(os.path.join(folder, "logits.npy"), logits.numpy())
    np.save(os.path.join(folder, "probs.npy"), probs)
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump({"source": source, "name": name, "transform": repr(transform),
                   "input_shape": list(x.shape), "logit_scale": scale}, f, indent=2)
    top = np.argsort(-probs)[:5]
    print(case, "top-5", top.tolist(), np.round(probs[top], 4).tolist())


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    out, photo, cases = argv[0], argv[1], json.loads(argv[2])
    torch.set_num_threads(2)
    for case, spec in cases.items():
        make(case, spec, photo, out)


if __name__ == "__main__":
    main(sys.argv[1:])
