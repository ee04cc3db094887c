"""Documentation made from the registry: the model table of ``docs/models.md``
(``inceptionzoo list --markdown``; ``tests/test_docs.py`` checks that the page holds it)."""
from ._registry import list_models, model_info, model_weights

__all__ = ["models_markdown"]


def _fmt_int(n):
    return f"{n:,}" if n is not None else "-"


def models_markdown(names=None):
    """The model table of ``docs/models.md`` (``inceptionzoo list --markdown``), from the
    registry.

    Parameters
    ----------
    names : list of str, optional
        The rows (``inceptionzoo list --include/--exclude``); default every registered model.

    Returns
    -------
    str
        A Markdown table, one row per registered model, in :func:`list_models` order.
    """
    rows = ["| model | block | input (C, H, W) | classes | parameters | MACs | weights (tags, "
            "default first) | shipped top-1 | description |",
            "|---|---|---|---|---:|---:|---|---:|---|"]
    for name in list_models() if names is None else names:
        i = model_info(name)
        weights = model_weights(name)
        shipped = [s.accuracy for s in weights if s.source == "shipped"]
        acc = f"{shipped[0]:.4f}" if shipped else "-"
        tags = ", ".join(f"`{s.tag}`" for s in weights) or "-"
        shape = "x".join(str(d) for d in i.input_shape)
        rows.append(f"| `{name}` | {i.variant} | {shape} | {i.classes} | {_fmt_int(i.num_params)}"
                    f" | {_fmt_int(i.macs)} | {tags} | {acc} | {i.description} |")
    return "\n".join(rows) + "\n"
