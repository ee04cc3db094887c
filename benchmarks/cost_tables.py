"""Print the generated tables of docs/cost.md (the docs test checks they are current).

    python benchmarks/cost_tables.py
"""
from inceptionzoo import get_model
from inceptionzoo.blocks import Inception, NaiveInception
from inceptionzoo.cost import count, naive_block_cost, reduced_block_cost
from inceptionzoo.models.googlenet import PAPER_TABLE1


def seed_vs_correct():
    # the totals, checked numerically for one N; the biases the notes name, counted
    N = 16
    red = reduced_block_cost(N, N, N // 2, N, N // 2, N, N, 1, 1, bias=False)[0]
    nai = naive_block_cost(N, N, 1, 1, bias=False)[0]
    assert red == 20 * N * N and nai == 35 * N * N, (red, nai)
    red_b = (reduced_block_cost(N, N, N // 2, N, N // 2, N, N, 1, 1)[0] - red) / N
    nai_b = (naive_block_cost(N, N, 1, 1)[0] - nai) / N
    rows = [("1x1 branch", "N^2/2", "N^2", "reads all N input channels"),
            ("3x3 reduction (1x1, N -> N/2)", "N^2/2", "N^2/2", ""),
            ("3x3 conv (N/2 -> N)", "9 N^2", "4.5 N^2", "3*3*(N/2)*N"),
            ("5x5 reduction (1x1, N -> N/2)", "N^2/2", "N^2/2", ""),
            ("5x5 conv (N/2 -> N)", "12.5 N^2", "12.5 N^2", ""),
            ("pool projection (1x1, N -> N)", "(missing)", "N^2", "reads all N channels"),
            ("**reduced block total**", "**19 N^2**", "**20 N^2**",
             f"weights; biases add {red_b:g} N"),
            ("**naive block total**", "**35 N^2**", "**35 N^2**",
             f"weights; biases add {nai_b:g} N")]
    out = ["| term (Ni = No = N) | seed says | correct | note |", "|---|---:|---:|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(out)


def mnist_blocks():
    out = ["| model | block | input (C x H x W) | params (closed form) | params (counted) "
           "| MACs (closed form) | MACs (counted) |", "|---|---|---|---:|---:|---:|---:|"]
    for name in ("inception_mnist", "inception_naive_mnist"):
        net = get_model(name)
        report = count(net, net.info.input_shape)
        sizes = {"block1": 28, "block2": 13, "block3": 6}
        for bname, hw in sizes.items():
            block = getattr(net, bname)
            if isinstance(block, NaiveInception):
                form = naive_block_cost(block.in_channels, block.branch_widths[0], hw, hw)
            else:
                assert isinstance(block, Inception)
                widths = (block.b1._channels, block.b3red._channels, block.b3._channels,
                          block.b5red._channels, block.b5._channels, block.proj._channels)
                form = reduced_block_cost(block.in_channels, *widths, hw, hw)
            layers = [lay for lay in report.layers if lay.name.startswith(block.prefix)]
            counted = (sum(lay.params for lay in layers), sum(lay.macs for lay in layers))
            out.append(f"| {name} | {bname} | {block.in_channels} x {hw} x {hw} | "
                       f"{form[0]:,} | {counted[0]:,} | {form[1]:,} | {counted[1]:,} |")
        out.append(f"| {name} | **whole network** | 1 x 28 x 28 | | {report.params:,} | "
                   f"| {report.macs:,} |")
    return "\n".join(out)


def googlenet_rows():
    """Per Table 1 row: (row, our params, our MACs)."""
    report = count(get_model("googlenet"), (3, 224, 224))
    rows = {}
    for lay in report.layers:
        key = lay.name.split("_")[1]
        key = "conv2" if key.startswith("conv2") else key
        p, m = rows.get(key, (0, 0))
        rows[key] = (p + lay.params, m + lay.macs)
    return [(k, *rows[k]) for k in PAPER_TABLE1]


def googlenet_table():
    out = ["| Table 1 row | params, ours (K=1024) | params, paper | diff | ops, ours (M MACs) "
           "| ops, paper | diff |", "|---|---:|---:|---:|---:|---:|---:|"]
    for key, params, macs in googlenet_rows():
        pp, po = PAPER_TABLE1[key]
        ours_k, ours_m = params / 1024, macs / 1e6
        out.append(f"| {key} | {ours_k:.1f} | {pp} | {100 * (ours_k / pp - 1):+.1f}% | "
                   f"{ours_m:.1f} | {po} | {100 * (ours_m / po - 1):+.1f}% |")
    total = count(get_model("googlenet"), (3, 224, 224))
    out.append(f"| **total** | {total.params / 1024:.1f} ({total.params:,}) | | | "
               f"{total.macs / 1e6:.1f} | | |")
    return "\n".join(out)


def imagenet_totals():
    """Parameters and MACs of the converter's networks at their design size, and the reference
    implementations whose counts tests/test_convert.py compares with them."""
    from inceptionzoo import model_info
    from inceptionzoo.convert import SOURCES
    from inceptionzoo.cost import num_params

    out = ["| model | input | parameters | MACs | reference (torchvision / timm) |",
           "|---|---:|---:|---:|---|"]
    for name in dict.fromkeys(s.model for s in SOURCES.values()):
        shape = model_info(name).input_shape
        refs = ", ".join(f"{src} `{key}`" for (src, key), s in SOURCES.items()
                         if s.model == name and src != "gluoncv")
        net = get_model(name)
        macs = count(net, shape).macs
        out.append(f"| `{name}` | {shape[1]} | {num_params(net):,} | {macs:,} | {refs} |")
        if hasattr(net, "aux_logits"):
            aux = get_model(name, aux_logits=True)
            assert count(aux, shape).macs == macs  # the aux head is not in the inference graph
            tv = ", ".join(f"{src} `{key}`" for (src, key), s in SOURCES.items()
                           if s.model == name and src == "torchvision")
            out.append(f"| `{name}`, `aux_logits=True` | {shape[1]} | {num_params(aux):,} | "
                       f"(the same: the aux head runs in training only) | {tv}, with aux |")
    return "\n".join(out)


def tables():
    return {"seed-vs-correct": seed_vs_correct(), "mnist-blocks": mnist_blocks(),
            "googlenet-table1": googlenet_table(), "imagenet-totals": imagenet_totals()}


if __name__ == "__main__":
    for key, text in tables().items():
        print(f"<!-- {key}:begin -->\n{text}\n<!-- {key}:end -->\n")
