"""The serving graph's re-check of its runtime choice while serving (:class:`SteadyRace`).

Standalone on purpose (standard library only): part of the serving core
(:mod:`inceptionzoo.serving_core`) that the ``.mar`` archive carries for its handler.
"""
import collections
import math
import statistics
import threading

__all__ = ["SteadyRace"]


class _RaceState:
    """:class:`SteadyRace`'s record of one batch size (``served``: seconds of the chosen
    runtime's timed calls, the probes' clock, in which idle time is none; ``probe_served``:
    seconds of the running probe's calls, its settle clock; ``since``, ``backoff``,
    ``penalty``: per other runtime, ``served`` at its last probe, its backoff and its budget's
    wait)."""

    def __init__(self):
        self.served = self.last = self.probe_served = self.settle = 0.0
        self.due, self.probe, self.times = -math.inf, None, {}
        self.since, self.backoff, self.penalty = {}, {}, {}
        self.skip = self.turn = self.timed = self.probe_calls = 0


class SteadyRace:
    """Re-checks a load-time runtime choice while serving: speed depends on what ran before
    (docs/benchmarks.md, "The runtime race under mixed batch sizes"), so a race run once at
    load can keep a runtime that has since become the slower one.

    Every call of a batch size is timed. At most once per :attr:`every` seconds of serving
    that size (the chosen runtime's calls: idle time does not count, or each request after a
    pause would be a probe) and per :attr:`spacing` calls' time of the chosen runtime (a call
    of a second: once a minute at most), after at least one timed call of the chosen runtime
    since the last probe, the next calls go to another runtime (a probe: at least two calls
    and :attr:`settle` seconds of its calls, counted by :meth:`untimed`, so a pause between
    requests is not settling; only the last is timed; all give the caller their logits,
    which the load-time parity check made the same function); the first call back on the
    chosen runtime is not timed either. A runtime's first calls after the other's run slower
    for some milliseconds (ONNX Runtime's two threads at batch 32 of the MNIST network: 1.7x
    on the second call after MXNet, steady after ~15 ms: docs/benchmarks.md), so a probe timed
    on its second call would see the switch, not the runtime. When the median of the other
    runtime's last probes beats the median of the chosen one's last calls by :attr:`margin`,
    it becomes the choice for that size. A probe that loses doubles the wait before that
    runtime's next one, up to :attr:`backoff` times; one that wins (or a switch) resets it: at
    a fixed interval, a runtime that keeps losing would cost its probes' time and the slower
    first calls back after them, over and over. Each other runtime has its own wait (the
    spacing between any two probes stays): ONNX Runtime's one-thread session, twice as slow
    as the chosen one at batch 1 of Inception-v3, must not hold back the probes of MXNet, a
    few percent from it. Thread-safe; the calls of other threads running at
    the same time are counted in the times, as in serving.

    Parameters
    ----------
    every : float
        Least seconds between probes of one batch size.
    margin : float
        How many times faster the other runtime must be to take over: the re-check can keep
        a runtime as slow as ``1 / margin`` of the other (0.95x at the default, the serving
        target of docs/benchmarks.md; at 1.1, Inception-v3's batch 1 stayed on a runtime 7%
        slower).
    keep : int
        Calls kept per runtime and batch size (the medians are over these).
    spacing : float
        Least time between probes, in calls of the chosen runtime (its last call's time):
        probes of two calls of a route twice as slow then cost at most 2 x 2 / spacing of
        the time.
    backoff : float
        Most times the wait grows while the probes lose.
    settle : float
        Least seconds of calls a probe runs before its timed call (at most
        :attr:`SETTLE_CALLS` calls' time of the chosen runtime).
    budget : float
        After a losing probe, that runtime's next probe waits until what it cost (its calls
        times the time each lost against the chosen runtime's median) is at most this share
        of the serving (0: no such floor), but at most 4 times the longest wait of the
        backoff; per other runtime, so with k of them the probes cost at most k times it.
    """

    #: probes of the other runtime needed before a switch
    MIN_PROBES = 3

    #: a probe settles for at most this many calls' time of the chosen runtime (and ``settle``)
    SETTLE_CALLS = 8

    #: a probe ends after this many calls whatever its settle time (a caller that does not
    #: report its untimed calls, :meth:`untimed`, must not be held on the probed runtime)
    MAX_PROBE_CALLS = 64

    def __init__(self, every=0.25, margin=1.05, keep=5, spacing=50, backoff=8, settle=0.02,
                 budget=0.01):
        self.every, self.margin, self.keep = float(every), float(margin), keep
        self.spacing, self.backoff, self.settle = float(spacing), float(backoff), float(settle)
        self.budget = float(budget)
        self._state = {}
        self._lock = threading.Lock()

    def route(self, batch, chosen, others):
        """The runtime for the next call of this batch size.

        Parameters
        ----------
        batch : int
        chosen : hashable
            The runtime chosen for this size so far (any value naming a way to run it: the
            serving graph passes ``('onnxruntime', threads)`` / ``('mxnet', None)``).
        others : sequence
            The other runtimes that can run it.

        Returns
        -------
        tuple of (runtime, bool)
            The runtime, and whether :meth:`record` should count this call's time (if not,
            pass it to :meth:`untimed`).
        """
        st = self._state.get(batch)
        if st is not None and st.served < st.due:  # no probe can be due: no lock, few steps
            st.timed += 1
            return chosen, True
        with self._lock:
            st = self._state.get(batch)
            if st is None:
                st = self._state[batch] = _RaceState()
            if st.probe is not None:
                run, st.probe_calls = st.probe, st.probe_calls + 1
                if st.probe_calls < 2 or (st.probe_served < st.settle
                                          and st.probe_calls < self.MAX_PROBE_CALLS):
                    return run, False
                st.probe = None
                return run, True  # the probe's last call, timed
            if st.skip:  # the first call back on the chosen runtime
                st.skip = 0
                return chosen, False
            mine = st.times.get(chosen)
            base = max(self.every, self.spacing * mine[-1]) if mine else self.every
            due, run = math.inf, None
            if others:  # the runtime whose own wait ends first; ties in turn
                k = len(others)
                for i in range(k):
                    other = others[(st.turn + i) % k]
                    when = self._due(st, other, base)
                    if when < due:
                        due, run = when, other
            due = max(due, st.last + base) if run is not None else st.last + base
            if run is not None and st.timed and st.served >= due:
                st.last = st.since[run] = st.served
                st.turn, st.skip, st.timed, st.probe_served = st.turn + 1, 1, 0, 0.0
                st.probe, st.probe_calls = run, 1
                st.due = -math.inf  # every call takes the lock until the probe ends
                st.settle = min(self.settle, self.SETTLE_CALLS * mine[-1]) if mine else \
                    self.settle
                return run, False
            st.timed += 1
            st.due = due
            return chosen, True

    def _due(self, st, other, base):
        """When (in ``served`` seconds) ``other``'s own wait ends: its backoff, or its
        budget's wait, at most 4 times the backoff's longest (one slow probe call, from the
        scheduler or a pause, must not stop the re-check for long)."""
        wait = max(base * st.backoff.get(other, 1.0),
                   min(st.penalty.get(other, 0.0), 4 * base * self.backoff))
        return st.since.get(other, -math.inf) + wait

    def untimed(self, batch, runtime, seconds):
        """Count a call :meth:`route` said not to time: a probe's calls before its timed one
        make its settle time (the first call back on the chosen runtime counts for nothing).
        ``batch``, ``runtime`` and ``seconds`` as for :meth:`record`. (A call of an earlier
        probe of the same runtime still running in another thread counts for the current
        one: it would have to outlast the spacing between probes.)"""
        st = self._state.get(batch)
        if st is not None and st.probe is not None:
            with self._lock:
                if st.probe == runtime:
                    st.probe_served += seconds

    def record(self, batch, runtime, seconds, chosen):
        """Count one timed call; returns the runtime that serves this size from now on.

        Parameters
        ----------
        batch : int
        runtime : hashable
            What ran the call.
        seconds : float
            Its wall time.
        chosen : hashable
            The choice before this call.

        Returns
        -------
        hashable
            ``chosen``, or ``runtime`` when its probes beat ``chosen`` by :attr:`margin`.
        """
        st = self._state[batch]
        if runtime == chosen:  # the usual call: one append (atomic), no lock
            st.served += seconds
            mine = st.times.get(runtime)
            if mine is not None:
                mine.append(seconds)
                return chosen
        with self._lock:
            times = st.times
            times.setdefault(runtime, collections.deque(maxlen=self.keep)).append(seconds)
            mine, theirs = times[runtime], times.get(chosen, ())
            if runtime == chosen or not theirs:
                return chosen
            chosen_now = statistics.median(theirs)
            wins = seconds * self.margin < chosen_now
            st.backoff[runtime] = 1.0 if wins else min(2 * st.backoff.get(runtime, 1.0),
                                                        self.backoff)
            # what the probe cost against the chosen runtime, spread over the serving until
            # this runtime's next one: at most `budget` of it
            lost = st.probe_calls * (seconds - chosen_now)
            st.penalty[runtime] = lost / self.budget if self.budget and not wins and lost > 0 \
                else 0.0
            if (len(mine) >= self.MIN_PROBES and len(theirs) >= 3
                    and statistics.median(mine) * self.margin < chosen_now):
                times.pop(chosen)  # its old times: the new choice starts against fresh probes
                st.backoff, st.penalty = {}, {}  # the waits were against the old choice
                return runtime
        return chosen
