"""The attempts of a rollouts run: how each is sampled, its sandbox, and running them side by side.

Each attempt runs in a sandbox of its own:

- its own private virtual display (Xvfb, always), of the size the rollouts chose; the task's
  `setup` runs afresh on it;
- its own model sampling: with several models, the models taken in turn (attempt i gets
  models[i % len(models)]), and temperatures spread evenly from 0.0 to 1.0 (attempt i of N gets
  i / (N - 1); a single attempt keeps the options' temperature) where the API still takes a
  temperature (`temperature_supported`). Every request carries the header `x-deskpilot-attempt: i`;
- its own files: task commands and the model's bash tool see `DESKPILOT_ATTEMPT` (0..N-1) and
  `DESKPILOT_ATTEMPT_DIR` (a private temporary folder, also the attempt's working folder for the
  bash and editor tools, removed when the attempt ends);
- its own recording, under `<parent>/attempts/<i>/`. A crash marks a recording left "running" as
  "error" (one is created when there was none), with the traceback kept in the attempt.

An attempt runs through run_task (a task file) or run_goal (a plain goal), without a kill switch
of its own: the rollouts start one hotkey listener on $DISPLAY that stops every attempt.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import DeskpilotError, ExitCode
from agent.models.base import ModelConfig
from agent.recording.writer import META_FILE, Recording, RecordingError, RecordingWriter, mark_crashed
from agent.session import Callbacks, RunOptions, RunOutcome, run_goal
from agent.tasks.runner import run_task
from agent.tasks.schema import Task
from agent.types import StopSignal, Usage, stop_reason

if TYPE_CHECKING:
    from vision.geometry import Size

ATTEMPT_HEADER = "x-deskpilot-attempt"
ENV_ATTEMPT = "DESKPILOT_ATTEMPT"
ENV_ATTEMPT_DIR = "DESKPILOT_ATTEMPT_DIR"
WATCHDOG_GRACE_S = 30.0  # an attempt this far over its time budget is stopped from outside
POLL_S = 0.1
_IMPOSSIBLE = re.compile(r"(?:^|the model did not finish: )IMPOSSIBLE\b")

ModelFactory = Callable[[int, ModelConfig], Any]


@dataclass
class Attempt:
    """One attempt: how it was sampled, how it ended, where its recording is."""

    index: int
    model: str
    temperature: float | None
    status: str = "stopped"  # succeeded | failed | stopped | error
    exit_code: int = int(ExitCode.STOPPED)
    message: str = "not started"
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    recording: Path | None = None
    duration_s: float = 0.0
    checks: list[dict] = field(default_factory=list)
    passed: bool = False
    crashed: str | None = None  # the traceback, when an exception ended the attempt
    started: bool = False
    final_frame: Path | None = None
    first_frame: Path | None = None

    @property
    def impossible(self) -> bool:
        """The model reported the task impossible (honestly or not: the judge decides)."""
        return self.status == "failed" and bool(_IMPOSSIBLE.search(self.message or ""))

    @property
    def cost_key(self) -> tuple[int, int, float, int]:
        """Cheapest first: fewest steps, then fewest tokens, then lowest cost, then lowest index."""
        return self.steps, self.usage.total_tokens, self.usage.cost_usd, self.index

    def as_meta(self, parent: Path) -> dict[str, Any]:
        """The parent meta's `attempts` entry (path relative to the parent folder)."""
        path = None
        if self.recording is not None:
            try:
                path = self.recording.relative_to(parent).as_posix()
            except ValueError:
                path = str(self.recording)
        return {"path": path, "status": self.status, "passed": self.passed, "steps": self.steps,
                "cost_usd": round(self.usage.cost_usd, 6), "index": self.index, "model": self.model,
                "temperature": self.temperature, "tokens": self.usage.total_tokens,
                "duration_s": round(self.duration_s, 3), "message": self.message, "impossible": self.impossible,
                "checks_ok": sum(1 for c in self.checks if c.get("ok")), "checks_total": len(self.checks),
                "crashed": self.crashed is not None}


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


class EnvDesktop:
    """A desktop whose environment for task commands has extra variables; everything else is the desktop's."""

    def __init__(self, desktop: Any, extra: dict[str, str]) -> None:
        self._desktop, self.extra = desktop, dict(extra)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._desktop, name)

    def env(self) -> dict[str, str]:
        """The desktop's environment plus the extra variables."""
        return {**self._desktop.env(), **self.extra}

    def launch(self, command: str | list[str], cwd: str | Path | None = None, env: dict | None = None,
               **options: Any) -> Any:
        """Start a program on the desktop with the extra variables (`options`: as Desktop.launch)."""
        return self._desktop.launch(command, cwd=cwd, env={**self.extra, **(env or {})}, **options)


def _run_one(target: Task | str, options: RunOptions, desktop: Any, callbacks: Callbacks, model: Any,
             env: dict[str, str], meta: dict[str, Any]) -> RunOutcome:
    """One attempt on its desktop: the task through run_task, or the goal through run_goal.

    Its session has no kill switch of its own: the rollouts have one for all attempts (a session's
    kill switch sets $DISPLAY process-wide while it starts, which races with other sessions starting).
    """
    run = run_task if isinstance(target, Task) else run_goal
    return run(target, options, desktop=desktop, callbacks=callbacks, model=model, kill_switch=False,
               bash_env=env, meta=meta)


def _mark_crashed(folder: Path, kind: str, goal: str | None, task: str | None, message: str) -> Path:
    """The attempt's recording after a crash: a "running" one is marked "error"; none: a stub is written."""
    found = sorted(p for p in folder.iterdir() if (p / META_FILE).is_file()) if folder.is_dir() else []
    if found:
        path = found[-1]
        with contextlib.suppress(OSError, RecordingError):  # an unreadable recording is left as it is
            mark_crashed(path, message)
        return path
    writer = RecordingWriter(folder, kind, goal=goal, task=task)
    writer.finish("error", error=message)
    return writer.path


class Attempts:
    """The attempts of one rollouts run: at most `parallel` at a time, each in a sandbox of its own.

    Ctrl-C, the caller's `callbacks.stop` or the kill switch stop them all (`interrupted` says
    why); a watchdog stops an attempt that overruns its time budget by WATCHDOG_GRACE_S; an
    exception ends only its own attempt. `close()` stops every attempt and display (idempotent).
    """

    def __init__(self, work: Task | str, options: RunOptions, *, n: int, parallel: int, models: list[str],
                 temps: list[float | None], model_factory: ModelFactory | None, callbacks: Callbacks) -> None:
        self.work, self.options, self.n, self.parallel = work, options, n, parallel
        self.task = work if isinstance(work, Task) else None
        self.goal = work.goal if isinstance(work, Task) else work
        self.models, self.temps, self.model_factory, self.callbacks = models, temps, model_factory, callbacks
        self.stops = [StopSignal() for _ in range(n)]
        self.begun: dict[int, float] = {}
        self.cancel = threading.Event()
        self.interrupted: str | None = None
        self.ctrl_c = False
        self.lock = threading.Lock()  # state shared with the attempt threads
        self.io_lock = threading.Lock()  # one callback (progress line, question) at a time
        self.desktops: list[Any] = []
        self.limit_s = (self.task.limits.apply(options.loop.limits) if self.task else options.loop.limits).max_seconds

    def close(self) -> None:
        """Stop every attempt and every display they started (again, idempotently)."""
        self.cancel.set()
        for stop in self.stops:
            stop.stop()
        self._stop_desktops()

    def _stop_desktops(self) -> None:
        with self.lock:
            desktops = list(self.desktops)
        for desktop in desktops:
            try:
                desktop.stop()
            except Exception as exc:  # keep stopping the others
                print(f"deskpilot: stopping {desktop} failed: {exc}", flush=True)

    def run(self, folder: Path, size: Size, on_done: Callable[[Attempt], None]) -> list[Attempt]:
        """Run every attempt, recording under `folder`, on displays of `size`; `on_done(attempt)` as each ends.

        Ctrl-C or the caller's stop stops them all; each crash stays in its attempt.
        """
        self.folder, self.size, self.on_done = folder, size, on_done
        results: list[Attempt | None] = [None] * self.n
        switch = self._kill_switch()
        pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="rollout")
        futures: dict[Future, int] = {pool.submit(self._attempt, i): i for i in range(self.n)}
        pending = set(futures)
        give_up = False
        try:
            while pending:
                try:
                    done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
                    for future in done:
                        results[futures[future]] = self._collect(future, futures[future])
                    if self.callbacks.stop.is_set() and self.interrupted is None:
                        self.stop_all(stop_reason(self.callbacks.stop))
                    self._watchdog()
                except KeyboardInterrupt:
                    if self.ctrl_c:  # a second Ctrl-C: stop waiting for the attempts to end
                        give_up = True
                        break
                    self.ctrl_c = True
                    self.stop_all("interrupted by the user (Ctrl-C)")
        finally:
            pool.shutdown(wait=not give_up, cancel_futures=True)
            if switch is not None:
                with contextlib.suppress(Exception):
                    switch.stop()
        for future, i in futures.items():
            if results[i] is None and future.done() and not future.cancelled():
                results[i] = self._collect(future, i)
        return [a if a is not None else self._not_started(i) for i, a in enumerate(results)]

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

    def _collect(self, future: Future, i: int) -> Attempt:
        try:
            return future.result()
        except BaseException as exc:  # _attempt catches Exception; this is anything else
            attempt = Attempt(i, self.models[i], self.temps[i], status="error", exit_code=int(ExitCode.FAILED),
                              message=f"crashed: {type(exc).__name__}: {exc}", started=True)
            attempt.crashed = "".join(traceback.format_exception(exc))
            return attempt

    def _not_started(self, i: int) -> Attempt:
        attempt = Attempt(i, self.models[i], self.temps[i], message="not started: the rollouts were stopped")
        return attempt

    def stop_all(self, reason: str) -> None:
        """Stop every attempt (those not started yet never start), saying why."""
        self.interrupted = reason
        self.cancel.set()
        for stop in self.stops:
            stop.stop(reason)

    def _watchdog(self) -> None:
        if self.limit_s is None:
            return
        now = time.monotonic()
        with self.lock:
            running = list(self.begun.items())
        for i, begun in running:
            if not self.stops[i].is_set() and now - begun > self.limit_s + WATCHDOG_GRACE_S:
                self.stops[i].stop(f"time budget of {self.limit_s:g} s overrun by {WATCHDOG_GRACE_S:g} s; "
                                   "stopped by the rollouts watchdog")

    def _callbacks(self, i: int) -> Callbacks:
        parent = self.callbacks
        on_step = None
        if parent.on_step is not None:
            def on_step(line: dict, usage: Usage, _i: int = i) -> None:
                with self.io_lock:
                    parent.on_step({**line, "attempt": _i}, usage)
        confirm = None
        if parent.confirm is not None:
            def confirm(call: Any, action: Any) -> None:
                with self.io_lock:  # one question at a time
                    parent.confirm(call, action)
        return Callbacks(on_step=on_step, confirm=confirm, stop=self.stops[i], pause=parent.pause,
                         confirm_mode=parent.confirm_mode, asker=parent.asker,
                         policy_overrides=parent.policy_overrides)

    def _attempt(self, i: int) -> Attempt:
        """Attempt i from start to end, on its own display; an exception ends only this attempt."""
        from actions.platform import virtual_desktop

        attempt = Attempt(i, self.models[i], self.temps[i])
        if self.cancel.is_set() or self.stops[i].is_set():
            attempt.message = "not started: the rollouts were stopped"
            return attempt
        attempt.started = True
        begun = time.monotonic()
        with self.lock:
            self.begun[i] = begun
        out = self.folder / "attempts" / str(i)
        workdir = Path(tempfile.mkdtemp(prefix=f"deskpilot-attempt-{i}-"))
        env = {ENV_ATTEMPT: str(i), ENV_ATTEMPT_DIR: str(workdir)}
        desktop = None
        kind = "task" if self.task else "run"
        try:
            desktop = virtual_desktop(self.size)
            with self.lock:
                self.desktops.append(desktop)
            desktop.start()
            claude = replace(self.options.model, model=self.models[i], temperature=self.temps[i],
                             extra_headers={**self.options.model.extra_headers, ATTEMPT_HEADER: str(i)})
            options = replace(self.options, model=claude, display=desktop.display, size=self.size, out=out,
                              workdir=workdir)
            model = self.model_factory(i, claude) if self.model_factory is not None else None
            meta = {"attempt": {"index": i, "of": self.n, "temperature": self.temps[i], "parent": "../../.."}}
            outcome = _run_one(self.work, options, EnvDesktop(desktop, env), self._callbacks(i), model, env, meta)
            result = outcome.result
            attempt.status, attempt.exit_code, attempt.message = result.status, int(result.exit_code), result.message
            attempt.steps, attempt.usage, attempt.recording = result.steps, result.usage, outcome.recording
        except Exception as exc:
            attempt.status = "error"
            attempt.exit_code = int(exc.exit_code if isinstance(exc, DeskpilotError) else ExitCode.FAILED)
            attempt.message = f"crashed: {type(exc).__name__}: {exc}"
            attempt.crashed = traceback.format_exc()
            try:
                label = str(self.task.path or self.task.name) if self.task else None
                attempt.recording = _mark_crashed(out, kind, self.goal, label, attempt.message)
            except Exception:  # the recording is only a courtesy here
                attempt.recording = None
        finally:
            if desktop is not None:
                with contextlib.suppress(Exception):  # else it is stopped again at the end
                    desktop.stop()
            shutil.rmtree(workdir, ignore_errors=True)
            attempt.duration_s = time.monotonic() - begun
            with self.lock:
                self.begun.pop(i, None)
        self._read_recording(attempt)
        self.on_done(attempt)
        return attempt

    def _read_recording(self, attempt: Attempt) -> None:
        """Checks, frames and the verdict from the attempt's recording."""
        if attempt.recording is not None:
            try:
                rec = Recording.load(attempt.recording)
            except RecordingError:
                rec = None
            if rec is not None:
                attempt.checks = [c for c in rec.meta.get("checks") or [] if isinstance(c, dict)]
                attempt.final_frame = rec.final_frame_path
                first = next((s.get("frame") for s in rec.steps if s.get("frame")), None)
                attempt.first_frame = rec.path / first if first else attempt.final_frame
                if attempt.final_frame is None and first:
                    last = next(s.get("frame") for s in reversed(rec.steps) if s.get("frame"))
                    attempt.final_frame = rec.path / last
        if self.task is not None and self.task.checks:
            attempt.passed = (attempt.status == "succeeded" and len(attempt.checks) == len(self.task.checks)
                              and all(c.get("ok") for c in attempt.checks))
        else:
            attempt.passed = attempt.status == "succeeded"

