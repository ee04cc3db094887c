"""One reading of MXNet's error text, for every place that wraps an ``MXNetError``."""
import re

__all__ = ["mxnet_message", "install_hint"]


def install_hint(extra):
    """How to install the ``extra`` of setup.cfg: inceptionzoo is not on the package index, so
    from its checkout, with the versions the tests run with."""
    return (f"in the inceptionzoo checkout, pip install -c constraints.txt -e "
            f"'.[cpu,{extra}]'")

_LOG_PREFIX = re.compile(r"^\[\d\d:\d\d:\d\d\] \S+:\d+: ")


def mxnet_message(err):
    """The meaningful line of an MXNet error, without its C++ stack.

    MXNet 1.9 formats a failed check as ``Traceback (most recent call last):``, ``File ...``
    lines and then ``MXNetError: Check failed: ...``; older messages start with a
    ``[hh:mm:ss] file.cc:123:`` log prefix. Either way this returns the message itself.

    Parameters
    ----------
    err : BaseException
        Usually an ``mxnet.base.MXNetError``; any exception is accepted.

    Returns
    -------
    str
        One line, e.g. ``Check failed: fi->Read(&header): Invalid NDArray file format``.
    """
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("MXNetError:"):
            return line[len("MXNetError:"):].strip()
    for line in lines:
        if line.startswith(("Traceback (most recent call last)", "File ", "Stack trace")) \
                or re.match(r"^\[bt\]|^\d+: ", line):
            continue
        return _LOG_PREFIX.sub("", line)
    return type(err).__name__
