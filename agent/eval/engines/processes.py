"""The local engine's worker processes: one process per attempt, `parallel` at a time, on this machine.

Processes come from a fork server (multiprocessing's "forkserver" start method) that has imported
the attempt code once, so starting one costs milliseconds, not the seconds of a fresh interpreter,
and a worker forks from a single-threaded process, never from this one and its threads.

Each worker talks to the driver over two pipes: it sends ("begun", pid), ("step", line, usage)
and ("done", attempt); the driver sends it a stop reason. A worker that ends without "done"
(killed, out of memory, a segfault) died: its attempt runs once more in a fresh worker, and if
that one dies too the attempt is recorded as an error (its recording marked "error"). Its
display and programs never outlive it (the desktop's reaper process kills them when it dies).
Ctrl-C on the terminal reaches the workers too: they treat it as a stop request and end their
attempt with its recording complete; what the driver decides (stop all, start none) is the same.
Abandoning kills the workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from agent.errors import ExitCode
from agent.eval.attempt import Attempt, AttemptSpec
from agent.eval.engines.base import Engine, OnStep
from agent.eval.sandbox import mark_ended

MAX_TRIES = 2  # a worker that dies is replaced once
PRELOAD = ["agent.eval.warm"]  # see agent.eval.warm


@dataclass
class _Worker:
    """A running worker process and its pipes."""

    spec: AttemptSpec
    process: Any
    results: Connection
    control: Connection
    tries: int
    pid: int | None = None
    steps: list[tuple[dict, Any]] = field(default_factory=list)


class ProcessEngine(Engine):
    """Attempts in worker processes of this machine (the `local` engine, its default workers)."""

    name = "local"

    def __init__(self, parallel: int, *, confirm_mode: str | None = None) -> None:
        super().__init__(parallel)
        self.confirm_mode = confirm_mode
        self.workers: dict[int, _Worker] = {}
        self.on_step: OnStep | None = None
        self._ctx: Any = None
        self._opened_at = 0.0
        self.first_attempt_s: float | None = None  # from open() to the first attempt beginning in its worker

    def describe(self) -> dict[str, Any]:
        """What suite.json records about the engine."""
        first = None if self.first_attempt_s is None else round(self.first_attempt_s, 3)
        return {**super().describe(), "workers": "processes", "first_attempt_s": first}

    def open(self) -> None:
        """The fork server's context (the server itself starts with the first worker)."""
        self._opened_at = time.monotonic()
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)

    def close(self) -> None:
        """Kill any worker still alive (none is, unless the run was abandoned) and close the pipes."""
        for worker in list(self.workers.values()):
            self._kill(worker)
        self.workers.clear()

    def _start(self, spec: AttemptSpec, on_step: OnStep | None, tries: int = 1) -> None:
        from agent.eval import worker as worker_module

        self.on_step = on_step
        results_r, results_w = self._ctx.Pipe(duplex=False)
        control_r, control_w = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(target=worker_module.process_main, name=f"deskpilot-attempt-{spec.index}",
                                    args=(spec, results_w, control_r, on_step is not None, self.confirm_mode),
                                    daemon=True)
        process.start()
        results_w.close()
        control_r.close()
        self.workers[spec.index] = _Worker(spec, process, results_r, control_w, tries)

    def _collect(self, timeout: float) -> list[Attempt]:
        if not self.workers:
            return []
        by_conn = {w.results: w for w in self.workers.values()}
        ended = []
        for conn in wait(list(by_conn), timeout=timeout):
            worker = by_conn[conn]
            attempt = self._read(worker)
            if attempt is not None:
                ended.append(attempt)
        return ended

    def _read(self, worker: _Worker) -> Attempt | None:
        """Every message the worker has sent; its attempt once it is done (or dead for good)."""
        while True:
            try:
                if not worker.results.poll():
                    return None
                message = worker.results.recv()
            except (EOFError, OSError):
                return self._died(worker)
            kind = message[0]
            if kind == "begun":
                worker.pid = message[1]
                self.started(worker.spec.index)
                if self.first_attempt_s is None:
                    self.first_attempt_s = time.monotonic() - self._opened_at
            elif kind == "step" and self.on_step is not None:
                self.on_step({**message[1], "attempt": worker.spec.index}, message[2])
            elif kind == "done":
                attempt: Attempt = message[1]
                attempt.tries = worker.tries
                self._forget(worker)
                return attempt

    def _died(self, worker: _Worker) -> Attempt | None:
        """The worker ended without a result: replace it once, then record an error."""
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        spec = worker.spec
        self._forget(worker)
        if worker.tries < MAX_TRIES and not self.interrupted:
            mark_ended(spec.options.out, spec, f"the worker running this attempt died ({how}); it was retried")
            self._start(spec, self.on_step, tries=worker.tries + 1)
            return None
        message = (f"the worker died ({how}) on each of {worker.tries} tries" if worker.tries > 1 else
                   f"the worker died ({how})")
        attempt = Attempt(spec.index, spec.model, spec.options.model.temperature, status="error",
                          exit_code=int(ExitCode.FAILED), message=message, started=True, task=spec.task,
                          number=spec.number, tries=worker.tries, worker=f"process {worker.pid}")
        attempt.crashed = message
        try:
            attempt.recording = mark_ended(spec.options.out, spec, message)
        except Exception:  # the recording is only a courtesy here
            attempt.recording = None
        return attempt

    def _forget(self, worker: _Worker) -> None:
        self.workers.pop(worker.spec.index, None)
        worker.process.join(timeout=5)
        for conn in (worker.results, worker.control):
            conn.close()

    def _stop_one(self, index: int, reason: str) -> None:
        worker = self.workers.get(index)
        if worker is not None:
            with contextlib.suppress(OSError, ValueError):  # gone already: _collect will see it
                worker.control.send(reason)

    def _abandon(self) -> list[Attempt]:
        ended = []
        for worker in list(self.workers.values()):
            self._kill(worker)
            spec = worker.spec
            message = "abandoned: it did not stop in time, so its worker was killed"
            attempt = Attempt(spec.index, spec.model, spec.options.model.temperature, started=True, message=message,
                              task=spec.task, number=spec.number, tries=worker.tries, worker=f"process {worker.pid}")
            try:
                attempt.recording = mark_ended(spec.options.out, spec, message, status="stopped")
            except Exception:  # the recording is only a courtesy here
                attempt.recording = None
            ended.append(attempt)
        self.workers.clear()
        return ended

    def _kill(self, worker: _Worker) -> None:
        """Kill the worker and its process group (the commands it runs); its displays die with it (reaper)."""
        if worker.process.is_alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.kill()
        worker.process.join(timeout=5)
        for conn in (worker.results, worker.control):
            conn.close()
