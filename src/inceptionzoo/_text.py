"""Plain-text tables for the command line: one renderer for every table the CLI prints."""

__all__ = ["text_table"]


def text_table(header, rows, right=(), rules=(0,)):
    """Columns padded to their widest cell, two spaces apart.

    Parameters
    ----------
    header : sequence of str
    rows : sequence of sequences
        Cells are converted with ``str``.
    right : collection of int
        Indices of the columns aligned right (numbers).
    rules : collection of int
        Indices of the rows (0 = the header) after which a line of dashes is drawn.

    Returns
    -------
    str

    Examples
    --------
    >>> print(text_table(["model", "params"], [["a", "1,000"], ["bb", "7"]], right={1}))
    model  params
    -----  ------
    a       1,000
    bb          7
    """
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for k, r in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if k in rules:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
