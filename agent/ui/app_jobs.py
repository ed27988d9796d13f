"""The jobs of `deskpilot app`, each run in a worker thread: a goal, a task file, a replay, a recording,
a report, storing the API key.

A job reaches the app only through its `JobContext`: it posts events (`post(kind, *args)`), which
the controller applies on the UI thread, follows the job's stop and pause signals, and asks the
user about risky actions through it. A worker posts its errors ("error") and its end ("done"),
so they show in the window, never only on stderr. No Tk here.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import DeskpilotError
from agent.session import Callbacks, RunOptions
from agent.types import StopSignal, Usage


@dataclass
class JobContext:
    """What one job's worker thread gets from the app; a new one for every job."""

    post: Callable[..., None]  # (kind, *args): an event for the UI thread
    open_target: Callable[[RunOptions, Any], Any]  # (options, size or None) -> the job's desktop
    model: Any = None  # replaces the model the options name (tests inject a scripted one)
    stop: StopSignal = field(default_factory=StopSignal)
    pause: threading.Event = field(default_factory=threading.Event)  # set: hold before the next step
    always: set[str] = field(default_factory=set)  # policy rules the user allowed for the rest of the job

    def on_step(self, line: dict, usage: Usage) -> None:
        """A step of the job, shown in the window."""
        self.post("step", line, usage)

    def callbacks(self, policy_overrides: Any = None) -> Callbacks:
        """How a model run follows the app: its steps, stop, pause and confirmation dialogs."""
        return Callbacks(on_step=self.on_step, stop=self.stop, pause=self.pause, confirm_mode="ask",
                         asker=self.ask, policy_overrides=policy_overrides)

    def ask(self, verdict: Any, call: Any, action: Any) -> str:
        """The policy asks about an action: "allow", "deny" or "always", answered in the window.

        Posts ("confirm", request, answers) and waits for the answer; a stopped job denies (and
        posts "confirm_closed"). A rule answered "always" is not asked about again in this job.
        """
        from agent.safety.confirm import describe_call

        if verdict.rule and verdict.rule in self.always:  # also across a task's agent steps
            return "always"
        if self.stop.is_set():
            return "deny"
        request = {"action": describe_call(call, action), "tool": call.name, "rule": verdict.rule,
                   "reason": verdict.reason, "matched": verdict.matched}
        answers: queue.Queue[str] = queue.Queue(maxsize=1)
        self.post("confirm", request, answers)
        while True:
            try:
                answer = answers.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    self.post("confirm_closed")
                    return "deny"
                continue
            if answer == "always" and verdict.rule:
                self.always.add(verdict.rule)
            return answer


def expected_error(exc: BaseException) -> bool:
    """Errors that explain themselves (bad input, environment): no traceback needed."""
    from agent.recording.writer import RecordingError
    from agent.tasks.loader import TaskFileError

    return isinstance(exc, (DeskpilotError, TaskFileError, RecordingError))


def describe_error(exc: BaseException) -> str:
    """A message for the window: deskpilot's own errors as they are, others with their type."""
    from agent.tasks.loader import TaskFileError

    if isinstance(exc, TaskFileError):
        return f"invalid task file:\n{exc}"
    if expected_error(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def start_worker(work: Callable[..., None], job: JobContext, *args: Any, name: str, delay_s: float = 0.0
                 ) -> threading.Thread:
    """Run `work(job, *args)` after `delay_s` in a new thread; its error and its end are posted."""
    def body() -> None:
        try:
            if delay_s:
                time.sleep(delay_s)
            work(job, *args)
        except BaseException as exc:  # shown in the window, never only on stderr
            if not expected_error(exc):
                traceback.print_exc()
            job.post("error", describe_error(exc))
        finally:
            job.post("done")

    thread = threading.Thread(target=body, daemon=True, name=name)
    thread.start()
    return thread


def start_background(work: Callable[..., None], post: Callable[..., None], *args: Any) -> None:
    """Run a short task (a report, storing the key) `work(post, *args)` in a new thread; its error is posted."""
    def body() -> None:
        try:
            work(post, *args)
        except BaseException as exc:
            post("error", describe_error(exc))

    threading.Thread(target=body, daemon=True, name="deskpilot-task").start()


def goal_job(job: JobContext, goal: str, options: RunOptions) -> None:
    """Run a goal with the model on the target."""
    from agent.errors import EnvironmentProblem
    from agent.models.credentials import api_key
    from agent.session import run_goal

    if job.model is None and not api_key():  # here, not on the UI thread: a keyring may be slow to answer
        raise EnvironmentProblem("no Anthropic API key: set ANTHROPIC_API_KEY, or use File \u2192 Set API key\u2026")
    desktop = job.open_target(options, None)
    outcome = run_goal(goal, options, desktop=desktop, callbacks=job.callbacks(), model=job.model)
    job.post("finished", outcome.result, outcome.recording)


def task_job(job: JobContext, path: str, options: RunOptions) -> None:
    """Run a task file on the target (its own display size for the sandbox, unless one was given)."""
    from agent.tasks.loader import load_task
    from agent.tasks.runner import run_task

    task = load_task(path)
    job.post("budget", task.limits.apply(options.loop.limits).max_cost_usd)
    size = task.display.size if task.display is not None and options.size is None else None
    desktop = job.open_target(options, size)
    outcome = run_task(task, options, desktop=desktop, model=job.model,
                       callbacks=job.callbacks(getattr(task, "policy", None)))
    job.post("finished", outcome.result, outcome.recording)


def replay_job(job: JobContext, path: Path, options: RunOptions) -> None:
    """Replay a recording on the target (the sandbox gets the size it was recorded on)."""
    from agent.replay.replayer import replay

    size = recorded_size(path) if options.display == "virtual" and options.size is None else None
    desktop = job.open_target(options, size)
    outcome = replay(path, options, desktop=desktop, stop=job.stop, on_step=job.on_step, confirm_mode="ask",
                     asker=job.ask)
    job.post("finished", outcome.result, outcome.recording)


def record_job(job: JobContext, options: RunOptions) -> None:
    """Record what a person does on the target until the job is stopped."""
    from agent.replay.recorder import STOP_HOTKEY, record

    desktop = job.open_target(options, None)
    job.post("note", f"recording what you do on {desktop.display}; press Stop (or {STOP_HOTKEY}) to end it")
    outcome = record(options, desktop=desktop, stop=job.stop, on_step=job.on_step,
                     print_fn=lambda *parts, **_kw: job.post("note", " ".join(map(str, parts))))
    job.post("finished", outcome.result, outcome.recording)


def report_job(post: Callable[..., None], path: Path) -> None:
    """Write a recording's report.html and open it in the browser."""
    import webbrowser

    from agent.ui.report import write_report

    report = write_report(path)
    post("report", report)
    webbrowser.open(report.resolve().as_uri())


def store_key_job(post: Callable[..., None], key: str) -> None:
    """Store the Anthropic API key in the system keyring."""
    from agent.models.credentials import store_api_key

    store_api_key(key)
    post("note", "API key saved in the system keyring")


def recorded_size(path: Path) -> Any:
    """The logical screen size a recording was made on, or None."""
    from agent.recording.reader import Recording
    from vision.geometry import Size

    try:
        screen = Recording.load(path).meta.screen
        scale = float(screen.scale or 1.0)
        return Size(round(screen.width / scale), round(screen.height / scale))
    except Exception:  # the replay itself reports a bad recording (or one without a screen)
        return None
