"""Reference outputs of the source networks, for the conversion parity tests.

Runs in the PyTorch side environment (``make torch-env`` -> ``.venv-torch``: torch,
torchvision, timm, safetensors), never in the MXNet one::

    .venv-torch/bin/python tests/reference/make_references.py OUT_DIR CASES_JSON

``CASES_JSON`` maps each case (its folder) to its source network, ``{"source": "torchvision" or
"timm", "name": ..., "size": 160, "batch": 3, "aux": false}`` (size and batch optional; ``aux``:
also record torchvision's Inception-v3 auxiliary head); the tests derive the cases from the
sources the model files declare (``tests/test_convert.py::CASES``). For every case: the source
network with a fixed seed, random weights AND random batch-norm
statistics (so that a mapping mistake in running mean / var shows), saved as ``model.pth``
(``torch.save(state_dict)``) and ``model.safetensors``; random pixels in [0, 1]
(``pixels.npy``, N x 3 x H x W) and the logits of the network in eval mode on those pixels
normalised the way the source does it (``logits.npy``), plus ``meta.json`` with the source's
preprocessing (timm: its ``pretrained_cfg``; torchvision: its weights' transforms) and its
multiply-accumulates at the design size (``macs``, from torch's ``FlopCounterMode``), its
parameter count (``params``, ``sum(p.numel() for p in model.parameters())``) and the part of it
in the auxiliary heads (``aux_params``).
"""
import json
import os
import sys

import numpy as np
import torch

#: each library's builder options: torchvision's networks with their auxiliary heads (the
#: converter leaves them out)
BUILD_OPTIONS = {"torchvision": {"aux_logits": True}, "timm": {}}

# the auxiliary classifiers' modules (torchvision's Inception-v3 and GoogLeNet)
AUX_MODULES = ("AuxLogits.", "aux1.", "aux2.")


def _randomise(model, gen):
    """Random weights everywhere (scaled so activations neither vanish nor explode) and
    random BN statistics."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.2, generator=gen)
                m.running_mean.normal_(0.0, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=gen)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1, generator=gen)


def tv_weights(name):
    """torchvision's ImageNet weights of network ``name`` (their transforms: the source's
    preprocessing)."""
    import torchvision

    return torchvision.models.get_model_weights(name).IMAGENET1K_V1


def _build(source, name, kwargs):
    if source == "torchvision":
        import torchvision

        # transform_input=True (the weights' builder sets it): the network maps
        # ImageNet-normalised input to Google's (x - 0.5) / 0.5 itself
        model = getattr(torchvision.models, name)(weights=None, init_weights=True,
                                                  transform_input=True, **kwargs)
        tf = tv_weights(name).transforms()
        meta = {"mean": list(tf.mean), "std": list(tf.std), "input_size": tf.crop_size[0],
                "crop_pct": tf.crop_size[0] / tf.resize_size[0],
                "interpolation": tf.interpolation.value, "transform_input": True}
        return model, meta
    import timm

    model = timm.create_model(name, pretrained=False, **kwargs)
    cfg = model.pretrained_cfg
    meta = {"mean": list(cfg["mean"]), "std": list(cfg["std"]),
            "input_size": cfg["input_size"][1], "crop_pct": cfg["crop_pct"],
            "interpolation": cfg["interpolation"], "transform_input": False}
    return model, meta


def _macs(model, meta):
    """Multiply-accumulates of one sample at the design size: torch's FlopCounterMode counts
    2 FLOPs per multiply-accumulate of convolutions and matrix products."""
    from torch.utils.flop_counter import FlopCounterMode

    size = meta["input_size"]
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() // 2


def make(case, spec, out):
    from safetensors.torch import save_file

    source, name = spec["source"], spec["name"]
    size, batch = spec.get("size", 160), spec.get("batch", 3)
    gen = torch.Generator().manual_seed(sum(map(ord, case)))
    torch.manual_seed(0)
    model, meta = _build(source, name, BUILD_OPTIONS[source])
    _randomise(model, gen)
    model.eval()
    pixels = torch.rand(batch, 3, size, size, generator=gen)
    mean = torch.tensor(meta["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(meta["std"]).view(1, 3, 1, 1)
    feats = {}
    if spec.get("aux"):  # also the aux head, on Mixed_6e's output
        model.Mixed_6e.register_forward_hook(lambda m, i, o: feats.update(mixed_6e=o))
    with torch.no_grad():
        logits = model((pixels - mean) / std)
        aux = model.AuxLogits(feats["mixed_6e"]) if feats else None
    folder = os.path.join(out, case)
    os.makedirs(folder, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, os.path.join(folder, "model.pth"))
    save_file(state, os.path.join(folder, "model.safetensors"))
    np.save(os.path.join(folder, "pixels.npy"), pixels.numpy())
    np.save(os.path.join(folder, "logits.npy"), logits.numpy())
    if aux is not None:
        np.save(os.path.join(folder, "aux.npy"), aux.numpy())
    aux = [p.numel() for k, p in model.named_parameters() if k.startswith(AUX_MODULES)]
    meta.update(source=source, name=name, torch=torch.__version__, macs=_macs(model, meta),
                params=sum(p.numel() for p in model.parameters()), aux_params=sum(aux))
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print(case, tuple(logits.shape), float(logits.abs().max()))


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    out, cases = argv[0], json.loads(argv[1])
    torch.set_num_threads(2)
    for case, spec in cases.items():
        make(case, spec, out)


if __name__ == "__main__":
    main(sys.argv[1:])
