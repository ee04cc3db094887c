"""How a command prints what it did: a JSON document with ``--json``, else lines."""
import json


def _report(args, data, lines):
    """Print what a command did: ``data`` as JSON with ``--json``, else ``lines``."""
    if getattr(args, "json", False):
        print(json.dumps(data))
    else:
        for line in lines:
            print(line)


def _print_predictions(paths, results, as_json):
    if as_json:
        print(json.dumps([{"file": p, "top": [{"label": lab, "probability": prob}
                                              for lab, prob in r]}
                          for p, r in zip(paths, results)]))
        return
    for p, r in zip(paths, results):
        print(f"{p}: " + ", ".join(f"{lab} ({prob:.4f})" for lab, prob in r))
