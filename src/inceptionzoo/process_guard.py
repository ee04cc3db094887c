"""The guard every process of a launched job runs under, and stopping process groups.

``python -I process_guard.py guard LABEL -- COMMAND`` (:func:`guarded` builds that line; the
file runs as a script, standard library only, on every host of a job): the guard starts the
command in a session of its own and, when the command ends, when it is sent
SIGTERM/SIGINT/SIGHUP, or when its standard input closes (the launcher or its ssh connection
went away, even by SIGKILL), stops the command's whole process group (SIGTERM, then SIGKILL
after :data:`GRACE` seconds), so no child of a worker outlives the job
(:mod:`inceptionzoo.launch`).
"""
import os
import signal
import subprocess
import sys
import threading
import time

__all__ = ["guard", "guarded", "stop_group", "signal_group", "signal_name", "live_members",
           "StopSignals", "STOP_SIGNALS", "GRACE"]

#: the signals that stop a job (sent to ``launch`` or to a guard)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: seconds a guard waits after SIGTERM before it sends SIGKILL to a process group
GRACE = 5.0


def guarded(python, label, argv):
    """``argv`` run under this file's guard (see :func:`guard`).

    Parameters
    ----------
    python : str
        The Python that runs the guard.
    label : str
        How messages name the process.
    argv : list of str
        The command.

    Returns
    -------
    list of str
    """
    return [python, "-I", os.path.abspath(__file__), "guard", label, "--"] + list(argv)


def live_members(pgid):
    """Pids of the processes of group ``pgid`` that are not zombies (read from /proc).

    Parameters
    ----------
    pgid : int

    Returns
    -------
    list of int
    """
    live = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: ask the kernel whether the group has any process at all
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except (ProcessLookupError, PermissionError):
            return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            live.append(int(entry))
    return live


def signal_group(pgid, sig):
    """Send ``sig`` to process group ``pgid``, if it still exists.

    Parameters
    ----------
    pgid : int
    sig : int
    """
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(pgid, grace=GRACE):
    """SIGTERM to process group ``pgid``; SIGKILL to what is left of it after ``grace`` s.
    The caller has not reaped the group's leader yet: its pid, the group id, cannot have been
    given to another process meanwhile.

    Parameters
    ----------
    pgid : int
    grace : float
    """
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not live_members(pgid):
            return
        time.sleep(0.05)
    signal_group(pgid, signal.SIGKILL)


def exited(pid):
    """Whether child ``pid`` has ended, without reaping it."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def signal_name(number):
    """``'SIGTERM'`` for 15, ``'signal N'`` for a number that names no signal.

    Parameters
    ----------
    number : int

    Returns
    -------
    str
    """
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def guard(label, argv, grace=GRACE):
    """Run ``argv`` in a session of its own until it ends, or until this process gets a stop
    signal or its standard input closes; then stop the command's whole process group.

    Parameters
    ----------
    label : str
        How messages name the process (``worker 1 on node-b``).
    argv : list of str
        The command.
    grace : float
        Seconds between SIGTERM and SIGKILL.

    Returns
    -------
    int
        The command's exit status; ``128 + N`` when signal N killed it (reported on stderr).
    """
    stop = threading.Event()
    for sig in STOP_SIGNALS:  # before the command starts: no moment without the guard
        signal.signal(sig, lambda *_: stop.set())
    try:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as err:
        print(f"inceptionzoo launch: {label}: cannot run {argv[0]!r}: {err.strerror}",
              file=sys.stderr, flush=True)
        return 127

    def watch_stdin():  # EOF: the launcher (or the ssh connection to it) is gone
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    while not exited(child.pid) and not stop.wait(0.1):
        pass
    stop_group(child.pid, grace)  # the command, or what it left behind
    code = child.wait()
    if code < 0:
        if not stop.is_set():
            try:
                print(f"inceptionzoo launch: {label} was killed by {signal_name(-code)}",
                      file=sys.stderr, flush=True)
            except OSError:
                pass
        code = 128 - code
    return code


class StopSignals:
    """While active, SIGTERM/SIGINT/SIGHUP to this process are recorded (``signum``) instead
    of killing it, so that the launcher can stop its job first."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._old[sig] = signal.signal(sig, self._record)
        return self

    def _record(self, signum, frame):
        self.signum = self.signum or signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)



if __name__ == "__main__" and sys.argv[1:2] == ["guard"] and sys.argv[3:4] == ["--"]:
    sys.exit(guard(sys.argv[2], sys.argv[4:]))
