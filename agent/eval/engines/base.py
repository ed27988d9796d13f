"""The engine interface: run attempts K at a time somewhere, report each as it ends, stop them all on request.

`Engine.run(specs, on_done=..., stop=...)` is the same loop for every engine: it starts attempts
while fewer than `parallel` run, collects those that ended (calling `on_done(attempt)` in the
caller's thread, in the order they end), and returns every attempt in spec order. What differs
is where an attempt runs, which a subclass says in four methods: `_start(spec)`, `_collect(timeout)`,
`_stop_one(index, reason)` and `_abandon()`.

Stopping: Ctrl-C (KeyboardInterrupt in the caller's thread) or the caller's `stop` signal stops
every running attempt (each ends "stopped" with its recording complete) and starts no other
(those come back "not started"). A second Ctrl-C, or attempts still running `grace_s` seconds
after the stop, are abandoned: the engine ends them by force (a worker process or Ray task is
killed; a thread cannot be, so the thread engine waits unless Ctrl-C comes twice). Closing the
engine at the end (a local Ray's shutdown takes a second) is not interrupted by Ctrl-C, nor is
writing the results (`ctrl_c_held`, which callers use too).
A watchdog stops an attempt that overruns `limit_s` by WATCHDOG_GRACE_S (a hung model call).
"""

from __future__ import annotations

import signal
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from agent.eval.attempt import Attempt, AttemptSpec, not_started
from agent.types import StopSignal, Usage, stop_reason

WATCHDOG_GRACE_S = 30.0  # an attempt this far over its time budget is stopped from outside
POLL_S = 0.1
STOP_GRACE_S = 30.0  # after a stop, attempts still running this long are abandoned (where an engine can)

OnDone = Callable[[Attempt], None]
OnStep = Callable[[dict, Usage], None]


@contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Ctrl-C is ignored inside (main thread only; elsewhere nothing changes): for writing results once
    every attempt has ended, which a second Ctrl-C would otherwise cut short (no summary, no report)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


class Engine(ABC):
    """Runs attempts at most `parallel` at a time; see the module docstring."""

    name = "engine"
    can_abandon = True  # whether a running attempt can be ended by force

    def __init__(self, parallel: int) -> None:
        if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
            raise ValueError(f"parallel must be a positive number, got {parallel!r}")
        self.parallel = parallel
        self.interrupted: str | None = None
        self.begun: dict[int, float] = {}  # index -> when it started (monotonic)
        self.specs: dict[int, AttemptSpec] = {}
        self.overrun: set[int] = set()  # attempts the watchdog stopped

    def started(self, index: int) -> None:
        """An engine saw attempt `index` really begin (a queued Ray task got a worker): its clock starts now."""
        if index in self.begun:
            self.begun[index] = time.monotonic()

    # --- what each engine provides ---------------------------------------------------------
    def open(self) -> None:  # noqa: B027 - optional hook
        """Get the engine ready (start or connect to a cluster); EnvironmentProblem when it cannot be had."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what `open` took; nothing of the engine's may be left running (idempotent)."""

    @abstractmethod
    def _start(self, spec: AttemptSpec, on_step: OnStep | None) -> None:
        """Begin running `spec` now."""

    @abstractmethod
    def _collect(self, timeout: float) -> list[Attempt]:
        """Attempts that ended since the last call, waiting at most `timeout` seconds for one."""

    @abstractmethod
    def _stop_one(self, index: int, reason: str) -> None:
        """Ask the running attempt `index` to stop (it ends "stopped", its recording complete)."""

    @abstractmethod
    def _abandon(self) -> list[Attempt]:
        """End every running attempt by force now; their results (status "stopped")."""

    def describe(self) -> dict[str, Any]:
        """What suite.json records about the engine."""
        return {"name": self.name, "parallel": self.parallel}

    # --- the loop ----------------------------------------------------------------------------
    def run(self, specs: Sequence[AttemptSpec], *, on_done: OnDone, stop: StopSignal | None = None,
            on_step: OnStep | None = None, limit_s: float | None = None, grace_s: float = STOP_GRACE_S
            ) -> list[Attempt]:
        """Run every spec (see the module docstring); the attempts in spec order."""
        stop = stop or StopSignal()
        queue = deque(specs)
        results: dict[int, Attempt] = {}
        self.specs = {s.index: s for s in specs}
        stopped_at: float | None = None
        ctrl_c = False
        try:
            self.open()
            while queue or self.begun:
                try:
                    if stop.is_set() and stopped_at is None:
                        stopped_at = self._stop_all(stop_reason(stop), queue)
                    while queue and len(self.begun) < self.parallel and stopped_at is None:
                        spec = queue.popleft()
                        self.begun[spec.index] = time.monotonic()
                        self._start(spec, on_step)
                    for attempt in self._collect(POLL_S):
                        self._ended(attempt, results, on_done)
                    self._watchdog(limit_s)
                    if stopped_at is not None and self.can_abandon and time.monotonic() - stopped_at > grace_s:
                        for attempt in self._abandon():
                            self._ended(attempt, results, on_done)
                        queue.clear()
                except KeyboardInterrupt:
                    if ctrl_c:  # a second Ctrl-C: stop waiting for the attempts to end
                        for attempt in self._abandon():
                            self._ended(attempt, results, on_done)
                        break
                    ctrl_c = True
                    stop.stop("interrupted by the user (Ctrl-C)")
                    stopped_at = self._stop_all(stop_reason(stop), queue)
        finally:
            with ctrl_c_held():  # every attempt has ended: a Ctrl-C now (a local Ray's shutdown takes a second)
                self.close()     # would lose the results
        why = self.interrupted or "the run was stopped"
        return [results.get(s.index) or not_started(s, why) for s in specs]

    def _ended(self, attempt: Attempt, results: dict[int, Attempt], on_done: OnDone) -> None:
        if attempt.index in results:
            return
        self.begun.pop(attempt.index, None)
        results[attempt.index] = attempt
        on_done(attempt)

    def _stop_all(self, reason: str, queue: deque[AttemptSpec]) -> float:
        """Stop every running attempt; start no other (the queue is emptied). Returns when (monotonic)."""
        self.interrupted = self.interrupted or reason
        queue.clear()
        for index in list(self.begun):
            self._stop_one(index, reason)
        return time.monotonic()

    def _watchdog(self, limit_s: float | None) -> None:
        if limit_s is None:
            return
        now = time.monotonic()
        for index, begun in list(self.begun.items()):
            if index not in self.overrun and now - begun > limit_s + WATCHDOG_GRACE_S:
                self.overrun.add(index)
                self._stop_one(index, f"time budget of {limit_s:g} s overrun by {WATCHDOG_GRACE_S:g} s; "
                                      "stopped by the watchdog")
