"""Where a launched job runs: hostfiles (:func:`read_hostfile`, one ``[user@]host[:port]`` per
line, :func:`parse_host`, checked against one grammar so that no line becomes an ssh option)
and a free port for the scheduler (:func:`free_port`).
"""
import re
import socket

from ._checks import check_count
from ._io import read_limited
from .errors import InceptionZooError

__all__ = ["free_port", "check_port", "parse_host", "read_hostfile", "HOSTFILE_LIMIT"]

#: a hostfile larger than this is not a hostfile
HOSTFILE_LIMIT = 1 << 20

_HOST = re.compile(r"(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9._-]{0,31})@)?"
                   r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|"
                   r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*))"
                   r"(?::(?P<port>[0-9]{1,5}))?")
_HOST_GRAMMAR = ("[user@]host[:port] (host: a host name, an IPv4 address or an [IPv6] address; "
                 "port: 1-65535)")


def free_port(host="127.0.0.1"):
    """A TCP port that is free on ``host`` now (the OS picks it).

    Parameters
    ----------
    host : str, default '127.0.0.1'
        The address to bind.

    Returns
    -------
    int
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def parse_host(text, where="host"):
    """Split ``[user@]host[:port]`` after checking it against that grammar.

    Nothing else gets through: a text starting with ``-`` (which ssh would read as an option),
    spaces, quotes or shell characters are refused.

    Parameters
    ----------
    text : str
        One host, e.g. ``node-a``, ``alice@10.0.0.2:2222``, ``[fe80::1]:22``.
    where : str
        How the error message names the text's origin (e.g. ``hostfile 'h', line 3``).

    Returns
    -------
    (str or None, str, int or None)
        User, host name or address (without brackets), port.
    """
    m = _HOST.fullmatch(text) if isinstance(text, str) else None
    port = int(m["port"]) if m and m["port"] else None
    host = m and (m["ipv6"] or m["name"])
    if not m or (port is not None and not 1 <= port <= 65535) or len(host) > 253:
        raise InceptionZooError(f"{where}: {text!r} is not a host: expected {_HOST_GRAMMAR}")
    return m["user"], host, port


def read_hostfile(path):
    """Host names from a file, one ``[user@]host[:port]`` per line (``#`` comments and blank
    lines ignored).

    Parameters
    ----------
    path : str
        The hostfile: UTF-8 text of at most 1 MiB.

    Returns
    -------
    list of str
        The hosts, each checked by :func:`parse_host`.
    """
    data = read_limited(path, HOSTFILE_LIMIT, "the hostfile ")
    if len(data) > HOSTFILE_LIMIT:
        raise InceptionZooError(
            f"hostfile {path!r} is larger than {HOSTFILE_LIMIT} bytes: expected a "
            f"text file of one {_HOST_GRAMMAR} per line")
    hosts = []
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), 1):
        where = f"hostfile {path!r}, line {number}"
        try:
            if b"\0" in raw:
                raise UnicodeError
            line = raw.decode("utf-8")
        except UnicodeError:
            raise InceptionZooError(
                f"{where}: not text (a NUL byte or invalid UTF-8): expected one "
                f"{_HOST_GRAMMAR} per line") from None
        line = line.split("#")[0].strip()
        if line:
            parse_host(line, where)
            hosts.append(line)
    if not hosts:
        raise InceptionZooError(
            f"hostfile {path!r} lists no host (empty, or comments only): expected "
            f"one {_HOST_GRAMMAR} per line")
    return hosts


def check_port(port, host, name="--port", high=65535):
    """Refuse a port that is not an integer in 1..``high`` or that ``host`` cannot listen on.

    Parameters
    ----------
    port : int
    host : str
        The address to bind (``""``: all addresses).
    name : str
        How the errors name the port.
    high : int
        The largest port taken.

    Raises
    ------
    InceptionZooError
        Not an integer in range.
    OSError
        In use, or not for this host.
    """
    check_count(name, port, 1, high)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as err:
            raise OSError(f"{name} {port}: cannot listen on {host or 'all addresses'} "
                          f"({err.strerror}): expected a free port") from None
