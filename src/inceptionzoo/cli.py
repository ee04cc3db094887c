"""The ``inceptionzoo`` command."""
import argparse
import json
import sys
import time

__all__ = ["main", "models_markdown"]


def _fmt_int(n):
    return f"{n:,}" if n is not None else "-"


def models_markdown():
    """The model table of ``docs/models.md``, generated from the registry."""
    from . import list_models, model_info

    rows = ["| model | block | input (C, H, W) | classes | parameters | MACs | pretrained "
            "top-1 | description |",
            "|---|---|---|---|---:|---:|---:|---|"]
    for name in list_models():
        i = model_info(name)
        acc = f"{i.pretrained['accuracy']:.4f}" if i.pretrained else "-"
        shape = "x".join(str(d) for d in i.input_shape)
        rows.append(f"| `{name}` | {i.variant} | {shape} | {i.classes} | {_fmt_int(i.num_params)}"
                    f" | {_fmt_int(i.macs)} | {acc} | {i.description} |")
    return "\n".join(rows) + "\n"


def _cmd_list(args):
    from . import list_models

    if args.markdown:
        sys.stdout.write(models_markdown())
        return 0
    for name in list_models(args.include, args.exclude):
        print(name)
    return 0


def _cmd_info(args):
    from . import model_info

    info = model_info(args.model)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    for key, value in info.to_dict().items():
        print(f"{key:>12}: {value}")
    return 0


def _smoke_table(names, batch_size=4):
    """Build, hybridize and run each model; return rows for the demo table."""
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


def _print_table(header, rows):
    cols = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cols) for i in range(len(header))]
    for k, r in enumerate(cols):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def _cmd_demo(args):
    from . import list_models

    print("== Every registered model, built, hybridized (static) and run on a random batch")
    rows = _smoke_table(list_models())
    _print_table(["model", "block", "params", "input", "output", "ms"],
                 [(n, v, f"{p:,}", s, o, f"{ms:.1f}") for n, v, p, s, o, ms in rows])
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="inceptionzoo",
                                description="Inception networks for MXNet Gluon.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="list registered models")
    s.add_argument("--include", nargs="*", default=None, help="fnmatch patterns to keep")
    s.add_argument("--exclude", nargs="*", default=None, help="fnmatch patterns to drop")
    s.add_argument("--markdown", action="store_true", help="print the docs' model table")
    s.set_defaults(func=_cmd_list)

    s = sub.add_parser("info", help="metadata of a model")
    s.add_argument("model")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_info)

    s = sub.add_parser("demo", help="the main job of `make demo`")
    s.set_defaults(func=_cmd_demo)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # bad input: one clear line, exit 2
        print(f"inceptionzoo {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
