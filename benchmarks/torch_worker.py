"""The PyTorch peer of the benchmarks, one configuration per process, in the PyTorch venv of
``make torch-env`` (it imports neither MXNet nor inceptionzoo: two OpenMP runtimes in one
process slow PyTorch down):

    .venv-torch/bin/python benchmarks/torch_worker.py SPEC_JSON          # check, then time
    .venv-torch/bin/python benchmarks/torch_worker.py --make-weights SPEC_JSON
    .venv-torch/bin/python benchmarks/torch_worker.py --profile SPEC_JSON   # operator table

The network comes from files: ``"source": "twin"`` builds the twin of a zoo network
(``peers/torch_inception.py``) from ``twin`` (its description) and ``weights`` (``.npz``)
written by the MXNet side; ``"torchvision"`` / ``"timm"`` build that library's ``name``
(``transform_input=False``, no auxiliary head) and load ``checkpoint``, a ``state_dict`` that
``--make-weights`` wrote (random weights and batch-norm statistics, fixed seed) and that the
harness converted for MXNet with ``inceptionzoo convert``. Before timing, the logits of the
harness's check input must be MXNet's (``_peer.check_same_function``). Modes: ``torch-eager``,
``torch-compile``, ``torch-compile-frozen`` (inductor freezing, PyTorch's recommended CPU
inference setting); ``torch-train-eager`` and ``torch-train-compile`` time a training step
(forward, backward, SGD update) instead.
"""
import json
import os
import resource
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _peer import batch_of, check_same_function  # noqa: E402
from _timing import time_calls  # noqa: E402


def _library_model(spec):
    if spec["source"] == "torchvision":
        import torchvision

        kwargs = {"aux_logits": False, "transform_input": False, "init_weights": False}
        return getattr(torchvision.models, spec["name"])(weights=None, **kwargs)
    import timm

    return timm.create_model(spec["name"], pretrained=False)


def _model(spec):
    if spec["source"] == "twin":
        from peers.torch_inception import build

        with open(spec["twin"]) as f:
            layers = json.load(f)
        return build(layers, np.load(spec["weights"]))
    model = _library_model(spec)
    model.load_state_dict(torch.load(spec["checkpoint"], weights_only=True))
    return model.eval()


def make_weights(spec):
    """A random ``state_dict`` of the library's network (weights and batch-norm statistics
    drawn as tests/reference/make_references.py draws them), saved to ``checkpoint``."""
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "reference"))
    from make_references import _randomise

    torch.manual_seed(0)
    model = _library_model(spec)
    _randomise(model, torch.Generator().manual_seed(0))
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, spec["checkpoint"])
    return {"checkpoint": spec["checkpoint"]}


def run(spec):
    """Check the network against MXNet's logits, then time it; the result row."""
    t0 = time.perf_counter()
    torch.set_num_threads(os.cpu_count() or 1)
    model = _model(spec)
    mode = spec["mode"]
    with torch.inference_mode():
        parity = check_same_function(lambda x: model(torch.from_numpy(x)).numpy(), spec)
    x = torch.from_numpy(batch_of(spec))
    if mode.startswith("torch-train"):
        model.train()
        if mode == "torch-train-compile":
            model = torch.compile(model)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        y = torch.arange(spec["batch"]) % spec["classes"]
        loss_fn = torch.nn.CrossEntropyLoss()

        def call():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss
    else:
        if mode in ("torch-compile", "torch-compile-frozen"):
            from torch._inductor import config as inductor_config

            inductor_config.freezing = mode == "torch-compile-frozen"
            model = torch.compile(model)

        def call():
            with torch.inference_mode():
                return model(x)

    res = time_calls(call, spec["batch"], spec["run_seconds"], spec["repeats"],
                     spec["latency_iters"], lambda out, all_=False: None)
    res.update(parity, torch=torch.__version__,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               wall_seconds=time.perf_counter() - t0)
    res["mxnet_imported"] = "mxnet" in sys.modules  # must stay False
    return res


def profile(spec):
    """Operator table of ``spec['mode']`` (eager or compiled) over ``spec['profile']`` calls on
    random weights and inputs, after five unprofiled calls (``torch.profiler``, CPU)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    model = _library_model(spec).eval()
    if spec["mode"] in ("torch-compile", "torch-compile-frozen"):
        from torch._inductor import config as inductor_config

        inductor_config.freezing = spec["mode"] == "torch-compile-frozen"
        model = torch.compile(model)
    x = torch.rand(spec["batch"], 3, spec["size"], spec["size"])
    calls = spec["profile"]
    with torch.inference_mode():
        for _ in range(5):
            model(x)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(calls):
                model(x)
    ops = [{"op": e.key, "calls": e.count / calls, "ms": e.self_cpu_time_total / 1e3 / calls}
           for e in prof.key_averages()]
    onednn = [line.split("MKL-DNN")[-1].split("(")[0].strip()
              for line in torch.__config__.show().splitlines() if "MKL-DNN" in line]
    return {"ops": sorted(ops, key=lambda o: -o["ms"]), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "onednn": onednn[0] if onednn else "unknown",
            "mxnet_imported": "mxnet" in sys.modules}


if __name__ == "__main__":
    if sys.argv[1] == "--profile":
        print(json.dumps(profile(json.loads(sys.argv[2]))))
    elif sys.argv[1] == "--make-weights":
        print(json.dumps(make_weights(json.loads(sys.argv[2]))))
    else:
        print(json.dumps(run(json.loads(sys.argv[1]))))
