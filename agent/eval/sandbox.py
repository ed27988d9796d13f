"""One attempt in a sandbox of its own, wherever an engine runs it (a thread, a worker process, a Ray node).

`run_attempt(spec, callbacks)`:

- starts a private virtual display (Xvfb, always) of `spec.size`; the task's `setup` runs afresh on it;
- gives task commands and the model's bash tool `DESKPILOT_ATTEMPT` (`spec.number`) and
  `DESKPILOT_ATTEMPT_DIR` (a private temporary folder, also the bash and editor tools' working
  folder, removed when the attempt ends);
- runs the task through run_task (or a plain goal through run_goal) without a kill switch of its
  own (whoever runs several attempts listens for the hotkey once), recording into `spec.options.out`;
- stops the display, and with it every program started on it, whatever happens.

An exception ends only this attempt: status "error", the traceback kept in `crashed`, and its
recording marked "error" (one is written when there was none); its exit code is the error's own
(4 for a display that cannot be had, a model API that cannot be reached), else 1. The verdict (`passed`) is read
back from the recording: with `spec.checks`, the run succeeded and every check held; without,
the model said it finished.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.errors import DeskpilotError, ExitCode
from agent.eval.attempt import ENV_ATTEMPT, ENV_ATTEMPT_DIR, Attempt, AttemptSpec
from agent.recording.writer import META_FILE, Recording, RecordingError, RecordingWriter, mark_crashed
from agent.session import Callbacks, RunOutcome, run_goal
from agent.tasks.runner import run_task
from agent.tasks.schema import Task


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


def run_attempt(spec: AttemptSpec, callbacks: Callbacks, make_model: Callable[[], Any] | None = None,
                worker: str = "thread") -> Attempt:
    """Run `spec` from start to end on its own display; `callbacks.stop` stops it; never raises an Exception.

    `make_model()`: the model object to use, made once the display runs (None: the registry makes
    it from `spec.options.model`); an exception from it ends this attempt like any other.
    """
    from actions.platform import DesktopError, virtual_desktop

    attempt = Attempt(spec.index, spec.model, spec.options.model.temperature, task=spec.task, number=spec.number,
                      worker=worker)
    if callbacks.stop.is_set():
        attempt.message = "not started: the run was stopped"
        return attempt
    attempt.started, attempt.tries = True, 1
    begun = time.monotonic()
    out = spec.options.out
    workdir = Path(tempfile.mkdtemp(prefix=f"deskpilot-attempt-{spec.number}-"))
    env = {ENV_ATTEMPT: str(spec.number), ENV_ATTEMPT_DIR: str(workdir)}
    desktop = None
    try:
        desktop = virtual_desktop(spec.size)
        desktop.start()
        options = replace(spec.options, display=desktop.display, size=spec.size, workdir=workdir)
        if spec.confirm_mode is not None and callbacks.confirm_mode is None:
            callbacks = replace(callbacks, confirm_mode=spec.confirm_mode)
        model = make_model() if make_model is not None else None
        run = run_task if isinstance(spec.work, Task) else run_goal
        outcome: RunOutcome = run(spec.work, options, desktop=EnvDesktop(desktop, env), callbacks=callbacks,
                                  model=model, kill_switch=False, bash_env=env, meta=spec.meta)
        result = outcome.result
        attempt.status, attempt.exit_code, attempt.message = result.status, int(result.exit_code), result.message
        attempt.steps, attempt.usage, attempt.recording = result.steps, result.usage, outcome.recording
    except Exception as exc:
        attempt.status = "error"
        attempt.exit_code = int(exc.exit_code if isinstance(exc, DeskpilotError) else
                                ExitCode.ENVIRONMENT if isinstance(exc, DesktopError) else ExitCode.FAILED)
        attempt.message = f"crashed: {type(exc).__name__}: {exc}"
        attempt.crashed = traceback.format_exc()
        try:
            attempt.recording = mark_ended(out, spec, attempt.message)
        except Exception:  # the recording is only a courtesy here
            attempt.recording = None
    finally:
        if desktop is not None:
            with contextlib.suppress(Exception):
                desktop.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        attempt.duration_s = time.monotonic() - begun
    read_verdict(attempt, spec.checks)
    return attempt


def mark_ended(folder: Path, spec: AttemptSpec, message: str, status: str = "error") -> Path:
    """The attempt's recording after a crash: a "running" one is marked "error"; none: a stub is written."""
    found = sorted(p for p in folder.iterdir() if (p / META_FILE).is_file()) if folder.is_dir() else []
    if found:
        path = found[-1]
        with contextlib.suppress(OSError, RecordingError):  # an unreadable recording is left as it is
            mark_crashed(path, message)
        return path
    task = spec.work if isinstance(spec.work, Task) else None
    label = str(task.path or task.name) if task is not None else None
    writer = RecordingWriter(folder, "task" if task is not None else "run", goal=spec.goal, task=label,
                             model=spec.model, extra_meta=spec.meta or None)
    writer.finish(status, error=message)
    return writer.path


def read_verdict(attempt: Attempt, checks: int | None) -> None:
    """Checks, first and last frames, and `passed`, from the attempt's recording."""
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
    if checks:
        attempt.passed = (attempt.status == "succeeded" and len(attempt.checks) == checks
                          and all(c.get("ok") for c in attempt.checks))
    else:
        attempt.passed = attempt.status == "succeeded"


def worker_name() -> str:
    """This process, as an attempt's `worker`: "host:pid"."""
    return f"{socket.gethostname()}:{os.getpid()}"
