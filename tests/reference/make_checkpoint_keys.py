"""The state-dict keys of every torch source network, for the way back (zoo -> source).

Runs in the PyTorch side environment, like ``make_references.py`` (whose builders it uses, so
that the keys are those of the reference checkpoints)::

    .venv-torch/bin/python tests/reference/make_checkpoint_keys.py \
        src/inceptionzoo/checkpoint_keys.json SOURCE:NAME ...

adds (or refreshes) the entry of each torch source named in ``{"SOURCE:NAME": [key, ...]}``:
the keys of ``model.state_dict()`` in order, auxiliary heads (built with ``aux_logits=True``
where the network takes it) and ``num_batches_tracked`` included. The zoo's names cannot give them back (the
checkpoint filters lower-case them and turn ``.`` into ``_``);
:mod:`inceptionzoo.convert_back` maps the zoo's tensors onto these keys with the inverse of the
same filters. Rerun it when a torch source is added (``tests/test_convert_back.py`` checks that
every torch source has its keys and that they cover the zoo network).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_references import BUILD_OPTIONS, _build  # noqa: E402


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    keys = {}
    if os.path.exists(argv[0]):
        with open(argv[0]) as f:
            keys = json.load(f)
    for spec in argv[1:]:
        source, name = spec.split(":")
        kwargs = BUILD_OPTIONS[source]
        try:  # with the auxiliary head where the network has one (the zoo converts it too)
            model, _ = _build(source, name, {**kwargs, "aux_logits": True})
        except TypeError:
            model, _ = _build(source, name, kwargs)
        keys[f"{source}:{name}"] = list(model.state_dict())
    with open(argv[0], "w") as f:
        f.write("{\n" + ",\n".join(f"  {json.dumps(k)}: [\n    "
                                  + ",\n    ".join(json.dumps(n) for n in v) + "\n  ]"
                                  for k, v in sorted(keys.items())) + "\n}\n")
    print({k: len(v) for k, v in keys.items()})


if __name__ == "__main__":
    main(sys.argv[1:])
