"""The local engine's threads: attempts side by side in this process.

Used where attempts need objects of this process: a model factory (tests, the app), the user's
terminal or the app's dialogs for policy questions (one question at a time), every step line live.
A thread cannot be killed, so a running attempt is only ever asked to stop; a second Ctrl-C stops
waiting for it. A crash inside an attempt stays in that attempt; a crash of the process ends all.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from agent.errors import ExitCode
from agent.eval.attempt import Attempt, AttemptSpec
from agent.eval.engines.base import Engine, OnStep
from agent.eval.sandbox import run_attempt
from agent.session import Callbacks
from agent.types import StopSignal, Usage

ModelFactory = Callable[[int, Any], Any]


class ThreadEngine(Engine):
    """Attempts in threads of this process, `parallel` at a time (the `local` engine with workers="threads")."""

    name = "local"
    can_abandon = False

    def __init__(self, parallel: int, *, callbacks: Callbacks | None = None,
                 model_factory: ModelFactory | None = None) -> None:
        super().__init__(parallel)
        self.callbacks = callbacks or Callbacks()
        self.model_factory = model_factory
        self.stops: dict[int, StopSignal] = {}
        self.futures: dict[Future, int] = {}
        self.io_lock = threading.Lock()  # one callback (progress line, question) at a time
        self.pool: ThreadPoolExecutor | None = None

    def describe(self) -> dict[str, Any]:
        """What suite.json records about the engine."""
        return {**super().describe(), "workers": "threads"}

    def open(self) -> None:
        """A pool of `parallel` threads."""
        self.pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="attempt")

    def close(self) -> None:
        """Wait for the threads unless the run was abandoned."""
        if self.pool is not None:
            self.pool.shutdown(wait=not self.abandoned, cancel_futures=True)
            self.pool = None

    abandoned = False

    def _start(self, spec: AttemptSpec, on_step: OnStep | None) -> None:
        assert self.pool is not None
        stop = self.stops[spec.index] = StopSignal()
        future = self.pool.submit(self._attempt, spec, self._callbacks(spec.index, stop, on_step))
        self.futures[future] = spec.index

    def _attempt(self, spec: AttemptSpec, callbacks: Callbacks) -> Attempt:
        make_model = None
        if self.model_factory is not None:
            def make_model() -> Any:
                return self.model_factory(spec.index, spec.options.model)
        return run_attempt(spec, callbacks, make_model=make_model, worker="thread")

    def _callbacks(self, index: int, stop: StopSignal, on_step: OnStep | None) -> Callbacks:
        parent = self.callbacks
        step = None
        if on_step is not None:
            def step(line: dict, usage: Usage) -> None:
                with self.io_lock:
                    on_step({**line, "attempt": index}, usage)
        confirm = None
        if parent.confirm is not None:
            def confirm(call: Any, action: Any) -> None:
                with self.io_lock:  # one question at a time
                    parent.confirm(call, action)
        return Callbacks(on_step=step, confirm=confirm, stop=stop, pause=parent.pause,
                         confirm_mode=parent.confirm_mode, asker=parent.asker, policy_overrides=parent.policy_overrides)

    def _collect(self, timeout: float) -> list[Attempt]:
        if not self.futures:
            return []
        done, _ = wait(list(self.futures), timeout=timeout, return_when=FIRST_COMPLETED)
        ended = []
        for future in done:
            index = self.futures.pop(future)
            ended.append(self._result(future, index))
        return ended

    def _result(self, future: Future, index: int) -> Attempt:
        try:
            return future.result()
        except BaseException as exc:  # run_attempt catches Exception; this is anything else
            spec = self.specs[index]
            attempt = Attempt(index, spec.model, spec.options.model.temperature, status="error",
                              exit_code=int(ExitCode.FAILED), message=f"crashed: {type(exc).__name__}: {exc}",
                              started=True, task=spec.task, number=spec.number, tries=1, worker="thread")
            attempt.crashed = "".join(traceback.format_exception(exc))
            return attempt

    def _stop_one(self, index: int, reason: str) -> None:
        stop = self.stops.get(index)
        if stop is not None:
            stop.stop(reason)

    def _abandon(self) -> list[Attempt]:
        """Threads cannot be killed: stop waiting for them (their results come back "stopped")."""
        self.abandoned = True
        ended = []
        for future, index in list(self.futures.items()):
            if future.done():
                ended.append(self._result(future, index))
            else:
                spec = self.specs[index]
                ended.append(Attempt(index, spec.model, spec.options.model.temperature, started=True,
                                     message="abandoned: it did not stop in time", task=spec.task,
                                     number=spec.number, tries=1, worker="thread"))
        self.futures.clear()
        return ended
