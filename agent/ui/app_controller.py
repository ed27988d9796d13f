"""The controller of `deskpilot app`: jobs, their threads, the app's state, confirmation answers, the
sandbox and the live view's feed; no Tk here.

Threading: every job (run, task, replay, recording) runs in a worker thread (`agent.ui.app_jobs`)
and reaches the app only through `events`, a queue that the UI thread drains (`drain()`, every
50 ms in the window). Draining applies each event to the state and tells the view (`AppView`) what
to show; the view is called on the UI thread only, so a window, or a test without Tk, can be one.
Every worker catches its errors and posts them, so they show in the window (red status line,
`last_error`). `as_dict()` returns the state as one JSON-safe dict.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from agent.models.base import DEFAULT_MODEL
from agent.session import RunOptions
from agent.ui import app_jobs
from agent.ui.options import is_x_display
from agent.ui.sandbox import Sandbox
from agent.ui.screen_feed import ScreenFeed
from agent.ui.step_rows import step_row

HOST_TARGET = "This desktop"
SANDBOX_TARGET = "Sandbox (virtual desktop)"
VIEW_FPS = 4.0
HOST_SETTLE_S = 0.6  # after the window steps aside, before a job on its own desktop takes its first screenshot
JOIN_ON_QUIT_S = 10.0
MODEL_JOBS = ("run", "task")  # the jobs with a model: a budget, pause and resume


class AppView(Protocol):
    """What the controller shows. Called on the UI thread only."""

    def refresh(self) -> None:
        """Show the controller's state again (buttons, cost, status)."""

    def step_added(self, row: dict) -> None:
        """A step of the running job (a `step_row`)."""

    def job_started(self, job: str, step_aside: bool) -> None:
        """A job starts: clear the steps; `step_aside`: the job acts on the app's own desktop, get out of its way."""

    def job_ended(self) -> None:
        """The job ended: come back if the window stepped aside."""

    def ask(self, request: dict, answer: Callable[[str], None]) -> None:
        """Ask whether the action in `request` may run; `answer` takes "allow", "deny" or "always", once."""

    def close_question(self) -> None:
        """Close the open question, unanswered (the job ended or was stopped)."""

    def placeholder(self, text: str) -> None:
        """There is no screen to show in the live view: show `text` instead."""


@dataclass
class AppState:
    """What the app shows, as plain values (`recording` and `report` are the last job's)."""

    status: str = "Ready."
    status_is_error: bool = False
    running: bool = False
    paused: bool = False
    job: str | None = None  # "run" | "task" | "replay" | "record" while running
    cost_text: str = ""
    steps: list[dict] = field(default_factory=list)
    last_error: str | None = None
    pending_confirmation: dict | None = None
    answers: list[str] = field(default_factory=list)  # the confirmation answers in this job, in order
    recording: Path | None = None
    report: Path | None = None
    budget: float | None = None  # the job's cost budget in USD; None: no budget

    def show_cost(self, cost: float = 0.0) -> None:
        """Set `cost_text`: what was spent, against the budget."""
        budget = self.budget
        self.cost_text = f"${cost:.4f} of ${budget:.2f}" if budget is not None else f"${cost:.4f} (no budget)"


def target_choices(display: str) -> tuple[list[str], str]:
    """The targets offered for `--display` (a given X display added to them) and the one chosen at start."""
    targets = [HOST_TARGET, SANDBOX_TARGET]
    if is_x_display(display):
        targets.append(f"Display {display}")
        return targets, targets[-1]
    return targets, SANDBOX_TARGET if display == "virtual" else HOST_TARGET


def target_spec(target: str) -> str:
    """A target's --display value."""
    if target == SANDBOX_TARGET:
        return "virtual"
    if target.startswith("Display "):
        return target.split(" ", 1)[1]
    return "host"


def same_display(a: str | None, b: str | None) -> bool:
    """True when two X display names name the same screen (":1" and ":1.0")."""
    def norm(name: str | None) -> str:
        name = (name or "").strip()
        return name[:-2] if name.endswith(".0") else name

    return bool(a and b) and norm(a) == norm(b)


class AppController:
    """The app without its window: `view` shows what happens; `model` replaces the model the options name."""

    def __init__(self, view: AppView, options: RunOptions | None = None, *, model: Any = None,
                 fps: float = VIEW_FPS) -> None:
        self.view, self.options, self.model = view, options or RunOptions(), model
        self.events: queue.Queue[tuple] = queue.Queue()
        self.state = AppState(budget=self.options.loop.limits.max_cost_usd)
        self.state.show_cost()
        self.target = target_spec(target_choices(self.options.display)[1])  # the chosen target's --display value
        self.closing = False
        self._job = self._new_job()  # the running (or last) job's stop, pause and answers
        self._step_aside = False  # the running job acts on the app's own desktop
        self._worker: threading.Thread | None = None
        self.feed = ScreenFeed(fps).start()
        self.sandbox = Sandbox(on_replace=self.feed.release)

    # ------------------------------------------------------------------------------ state shown
    def set_status(self, text: str, error: bool = False) -> None:
        """The status line (an error is also kept as `last_error`)."""
        self.state.status, self.state.status_is_error = text, error
        if error:
            self.state.last_error = text
        self.view.refresh()

    def show_error(self, exc: BaseException) -> None:
        """An error on the UI thread: the traceback to stderr, the message to the status line."""
        traceback.print_exception(type(exc), exc, exc.__traceback__)
        self.set_status(f"error: {app_jobs.describe_error(exc)}", error=True)

    @property
    def can_pause(self) -> bool:
        """True while a job that can pause runs."""
        return self.state.running and self.state.job in MODEL_JOBS

    def as_dict(self) -> dict:
        """The state as one JSON-safe dict (for tests and scripting)."""
        data = asdict(self.state)
        data["recording"] = str(self.state.recording) if self.state.recording else None
        data["report"] = str(self.state.report) if self.state.report else None
        return data | {"view_display": self.feed.display}

    # ------------------------------------------------------------------------------ the target
    def choose_target(self, spec: str) -> None:
        """Make `spec` (a --display value) the target of the next job and show it."""
        self.target = spec
        self.show_target()

    def show_target(self) -> None:
        """Point the live view at the chosen target (the sandbox once it has started)."""
        if self.target == "virtual":
            display = self.sandbox.display
        else:
            display = (os.environ.get("DISPLAY") or None) if self.target == "host" else self.target
        self.feed.watch(display)
        if display is None:
            self.view.placeholder("The sandbox (a private virtual display) starts with the first run."
                                  if self.target == "virtual" else "No display to show.")

    def acts_on_own_desktop(self) -> bool:
        """True when the chosen target is the desktop the app itself is on."""
        return self.target == "host" or same_display(self.target, os.environ.get("DISPLAY") or None)

    # ------------------------------------------------------------------------------ actions (UI thread)
    def start(self, text: str, model: str | None = None) -> bool:
        """Run a goal, or a task file (by its .yaml/.yml name), with `model` on the chosen target."""
        text = text.strip()
        if not text:
            self.set_status("Type a goal, or open a task file (File \u2192 Open task file\u2026).", error=True)
            return False
        is_task = text.lower().endswith((".yaml", ".yml"))
        options = self._run_options(model)
        if not self._begin("task" if is_task else "run"):
            return False
        self._launch(app_jobs.task_job if is_task else app_jobs.goal_job, text, options)
        return True

    def replay(self, path: str | Path, model: str | None = None) -> None:
        """Replay a recording folder on the chosen target."""
        options = self._run_options(model)
        if self._begin("replay"):
            self._launch(app_jobs.replay_job, Path(path), options)

    def toggle_recording(self, model: str | None = None) -> None:
        """Record a person's demonstration on the target; again (or Stop) to end it."""
        if self.state.job == "record":
            self.stop()
            return
        options = self._run_options(model)
        if self._begin("record"):
            self._launch(app_jobs.record_job, options)

    def open_report(self, path: str | Path) -> None:
        """Write a recording's report.html and open it in the browser."""
        app_jobs.start_background(app_jobs.report_job, self._post, Path(path))

    def store_key(self, key: str) -> None:
        """Store the API key in the system keyring."""
        app_jobs.start_background(app_jobs.store_key_job, self._post, key)

    def pause(self) -> None:
        """Hold the run before its next step."""
        if self.can_pause and not self.state.paused:
            self._job.pause.set()
            self.state.paused = True
            self.set_status(f"{self.state.job} paused: it holds before the next step (Resume to go on)")

    def resume(self) -> None:
        """Let a paused run go on."""
        if self.state.running and self.state.paused:
            self._job.pause.clear()
            self.state.paused = False
            self.set_status(f"{self.state.job} resumed")

    def stop(self) -> None:
        """Stop the running job: before its next step, cancelling the running action."""
        if not self.state.running:
            return
        self._job.stop.stop("stopped from the app")
        self._job.pause.clear()
        self.set_status(f"stopping the {self.state.job}\u2026")

    def quit(self) -> None:
        """Stop any job (its recording is completed), the live view and the sandbox."""
        if self.closing:
            return
        self.closing = True
        self._job.stop.stop("the app was closed")
        self._job.pause.clear()
        self._on_confirm_closed()
        if self._worker is not None and self._worker.is_alive():
            self._worker.join(timeout=JOIN_ON_QUIT_S)
        self.feed.close()
        self.sandbox.stop()

    # ------------------------------------------------------------------------------ jobs
    def _run_options(self, model: str | None) -> RunOptions:
        model = (model or "").strip() or DEFAULT_MODEL
        return replace(self.options, model=replace(self.options.model, model=model), display=self.target)

    def _begin(self, job: str) -> bool:
        """Set the state up for a job; False (with the reason shown) when one is already running."""
        if self.state.running:
            self.set_status(f"a {self.state.job} is still going: stop it first", error=True)
            return False
        self.state = replace(self.state, running=True, paused=False, job=job, steps=[], last_error=None,
                             pending_confirmation=None, answers=[],
                             budget=self.options.loop.limits.max_cost_usd if job in MODEL_JOBS else None)
        self.state.show_cost()
        self._job = self._new_job()
        self._step_aside = self.acts_on_own_desktop()
        self.view.job_started(job, self._step_aside)
        self.set_status(f"starting the {job}\u2026")
        return True

    def _new_job(self) -> app_jobs.JobContext:
        return app_jobs.JobContext(post=self._post, open_target=self._open_target, model=self.model)

    def _launch(self, work: Callable[..., None], *args: Any) -> None:
        """Run `work(job, *args)` in the job's worker thread."""
        self._worker = app_jobs.start_worker(work, self._job, *args, name=f"deskpilot-{self.state.job}",
                                             delay_s=HOST_SETTLE_S if self._step_aside else 0.0)

    def _open_target(self, options: RunOptions, size: Any = None) -> Any:
        """Worker thread: the job's desktop; the sandbox is kept between jobs (restarted for another size)."""
        from agent.session import open_display

        if options.display == "virtual":
            desktop = self.sandbox.open(size or options.size)
        else:
            desktop = open_display(options.display)
        self._post("target", desktop.display)
        return desktop

    # ------------------------------------------------------------------------------ events (UI thread)
    def _post(self, kind: str, *args: Any) -> None:
        """From any thread: hand an event to the UI thread."""
        self.events.put((kind, *args))

    def drain(self) -> None:
        """UI thread: apply the events posted since the last call."""
        while True:
            try:
                kind, *args = self.events.get_nowait()
            except queue.Empty:
                return
            try:
                getattr(self, "_on_" + kind)(*args)
            except Exception:
                self.show_error(sys.exc_info()[1])

    def _on_error(self, message: str) -> None:
        self.set_status(f"error: {message}", error=True)

    def _on_note(self, message: str) -> None:
        self.set_status(message)

    def _on_report(self, path: Path) -> None:
        self.state.report = path
        self.set_status(f"report: {path}")

    def _on_target(self, display: str) -> None:
        self.show_target()
        self.set_status(f"{self.state.job or 'job'} on {display}\u2026")

    def _on_budget(self, budget: float | None) -> None:
        self.state.budget = budget
        self.state.show_cost()
        self.view.refresh()

    def _on_step(self, line: dict, usage: Any) -> None:
        row = step_row(line)
        self.state.steps.append(row)
        self.state.show_cost(float(getattr(usage, "cost_usd", 0.0) or 0.0))
        self.view.step_added(row)
        state = "paused before the next step" if self.state.paused else "running"
        self.set_status(f"{self.state.job} {state}: step {row['i']}: {row['action']}")

    def _on_confirm(self, request: dict, answers: queue.Queue) -> None:
        def answer(value: str) -> None:
            self.state.pending_confirmation = None
            self.state.answers.append(value)
            answers.put(value)
            self.set_status(f"{'denied' if value == 'deny' else 'allowed'}: {request['action']}")

        self.state.pending_confirmation = request
        self.view.ask(request, answer)
        self.set_status(f"waiting for your answer: {request['action']}")

    def _on_confirm_closed(self) -> None:
        self.view.close_question()
        self.state.pending_confirmation = None

    def _on_finished(self, result: Any, recording: Path | None) -> None:
        self.state.recording = recording
        self.state.show_cost(result.usage.cost_usd)
        spent = f", ${result.usage.cost_usd:.4f}" if self.state.job in MODEL_JOBS else ""
        text = f"{result.status}: {result.message} ({result.steps} steps{spent})"
        self.set_status(text, error=result.status == "error")

    def _on_done(self) -> None:
        self._on_confirm_closed()
        self.state.running, self.state.paused, self.state.job = False, False, None
        self.view.job_ended()
        self.show_target()
        self.view.refresh()


__all__ = ["HOST_TARGET", "SANDBOX_TARGET", "AppController", "AppState", "AppView", "target_choices", "target_spec"]
