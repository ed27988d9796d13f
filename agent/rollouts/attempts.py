"""The attempts of a rollouts run: how each is sampled, and running them on an engine.

Each attempt runs in a sandbox of its own (agent.eval.sandbox): its own private virtual display
(Xvfb, always) of the size the rollouts chose, with the task's `setup` run afresh on it; its own
files (`DESKPILOT_ATTEMPT` = 0..N-1, `DESKPILOT_ATTEMPT_DIR` a private temporary folder); its own
recording, under `<parent>/attempts/<i>/`. A crash marks a recording left "running" as "error"
(one is created when there was none), with the traceback kept in the attempt.

Sampling: with several models, the models taken in turn (attempt i gets models[i % len(models)]),
and temperatures spread evenly from 0.0 to 1.0 (attempt i of N gets i / (N - 1); a single
attempt keeps the options' temperature) where the API still takes a temperature
(`temperature_supported`). Every request carries the header `x-deskpilot-attempt: i`.

Where attempts run is the engine's business (agent.eval.engines): by default the local engine's
threads, so a model factory, live step lines and terminal questions work as in a single run;
`engine="ray"` makes each attempt a Ray task (its models made by the registry on the worker, its
step lines relayed, policy questions refused since a worker has no terminal). Either way one
hotkey listener on $DISPLAY stops every attempt.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.eval.attempt import ENV_ATTEMPT, ENV_ATTEMPT_DIR, Attempt, AttemptSpec
from agent.eval.engines import Engine, make_engine
from agent.eval.engines.base import WATCHDOG_GRACE_S
from agent.eval.sandbox import EnvDesktop
from agent.models.base import ModelConfig
from agent.session import Callbacks, RunOptions
from agent.tasks.schema import Task
from agent.types import StopSignal

if TYPE_CHECKING:
    from vision.geometry import Size

ATTEMPT_HEADER = "x-deskpilot-attempt"

ModelFactory = Callable[[int, ModelConfig], Any]

__all__ = ["ATTEMPT_HEADER", "ENV_ATTEMPT", "ENV_ATTEMPT_DIR", "WATCHDOG_GRACE_S", "Attempt", "Attempts",
           "EnvDesktop", "ModelFactory", "models_for", "temperature_supported", "temperatures"]


def temperatures(n: int, default: float | None = None) -> list[float | None]:
    """Evenly from 0.0 to 1.0 for n >= 2 (attempt i: i / (n - 1)); one attempt keeps `default`."""
    if n == 1:
        return [default]
    return [round(i / (n - 1), 4) for i in range(n)]


@functools.lru_cache(maxsize=1)
def temperature_supported() -> bool:
    """Whether the installed anthropic SDK can send a temperature at all (an SDK before 2.0).

    The SDK's 2.x releases speak API version 2026-10-21, which removed temperature, top_p and top_k
    (a request with any of them is refused, even at the default value), and their
    `messages.create` has no such parameter. With such an SDK, attempts keep the API's own
    sampling: they still differ, by its randomness (and by model with several `--model`s).
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        major = version("anthropic").split(".")[0]
    except PackageNotFoundError:
        return False
    return major.isdigit() and int(major) < 2


def models_for(n: int, models: Sequence[str] | None, default: str) -> list[str]:
    """The model of each attempt: `models` in turn, else `default` for all."""
    pool = [m for m in (models or []) if m] or [default]
    return [pool[i % len(pool)] for i in range(n)]


class Attempts:
    """The attempts of one rollouts run on an engine: at most `parallel` at a time, each in a sandbox of its own.

    Ctrl-C, the caller's `callbacks.stop` or the kill switch stop them all (`interrupted` says
    why); a watchdog stops an attempt that overruns its time budget by WATCHDOG_GRACE_S; an
    exception ends only its own attempt. `close()` stops every attempt (idempotent).
    """

    def __init__(self, work: Task | str, options: RunOptions, *, n: int, parallel: int, models: list[str],
                 temps: list[float | None], model_factory: ModelFactory | None, callbacks: Callbacks,
                 engine: str = "local", ray_address: str | None = None, num_cpus: float = 1.0) -> None:
        self.work, self.options, self.n, self.parallel = work, options, n, parallel
        self.task = work if isinstance(work, Task) else None
        self.models, self.temps, self.callbacks = models, temps, callbacks
        self.stop = StopSignal()
        self.interrupted: str | None = None
        secrets = tuple(self.task.secret_names) if self.task else ()
        self.engine: Engine = make_engine(engine, parallel, workers="threads", address=ray_address,
                                          num_cpus=num_cpus, callbacks=callbacks, model_factory=model_factory,
                                          env_names=secrets)
        self.limit_s = (self.task.limits.apply(options.loop.limits) if self.task else options.loop.limits).max_seconds

    def close(self) -> None:
        """Stop every attempt (again, idempotently)."""
        self.stop.stop("the rollouts ended")

    def specs(self, folder: Path, size: Size) -> list[AttemptSpec]:
        """Attempt i: model i, temperature i, recording under `folder`/attempts/i."""
        checks = len(self.task.checks) if self.task is not None and self.task.checks else None
        specs = []
        for i in range(self.n):
            model = replace(self.options.model, model=self.models[i], temperature=self.temps[i],
                            extra_headers={**self.options.model.extra_headers, ATTEMPT_HEADER: str(i)})
            options = replace(self.options, model=model, out=folder / "attempts" / str(i))
            meta = {"attempt": {"index": i, "of": self.n, "temperature": self.temps[i], "parent": "../../.."}}
            specs.append(AttemptSpec(i, self.work, options, size, number=i, checks=checks, meta=meta,
                                     label=f"attempt {i}"))
        return specs

    def run(self, folder: Path, size: Size, on_done: Callable[[Attempt], None]) -> list[Attempt]:
        """Run every attempt, recording under `folder`, on displays of `size`; `on_done(attempt)` as each ends.

        Ctrl-C or the caller's stop stops them all; each crash stays in its attempt.
        """
        switch = self._kill_switch()
        watcher = _relay(self.callbacks.stop, self.stop)
        try:
            attempts = self.engine.run(self.specs(folder, size), on_done=on_done, stop=self.stop,
                                       on_step=self.callbacks.on_step, limit_s=self.limit_s)
        finally:
            watcher()
            if switch is not None:
                with contextlib.suppress(Exception):
                    switch.stop()
        self.interrupted = self.engine.interrupted
        for attempt in attempts:
            attempt.temperature = self.temps[attempt.index]
        return attempts

    def stop_all(self, reason: str) -> None:
        """Stop every attempt (those not started yet never start), saying why."""
        self.stop.stop(reason)

    def _kill_switch(self) -> Any:
        """One kill switch for every attempt: the hotkey on the user's display ($DISPLAY) stops them all.

        Without $DISPLAY there is no keyboard to listen to (the attempts' displays are private): Ctrl-C.
        """
        display = os.environ.get("DISPLAY")
        if not display:
            return None
        from agent.safety.killswitch import KillSwitch

        try:
            return KillSwitch(self.stop_all, display).start()
        except Exception as exc:  # e.g. no RECORD extension
            print(f"deskpilot: the kill switch is unavailable ({exc}); use Ctrl-C to stop", file=sys.stderr)
            return None


def _relay(source: Any, target: StopSignal) -> Callable[[], None]:
    """Pass a stop of `source` (the caller's event) on to `target` until the returned function is called."""
    import threading

    from agent.types import stop_reason

    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if source.wait(0.05):
                target.stop(stop_reason(source))
                return

    threading.Thread(target=watch, daemon=True, name="stop-relay").start()
    return done.set
