"""The controller of `deskpilot app`: jobs, their threads, the app's state, confirmation answers, the
sandbox, the live view's feed and what the app remembers; no Tk here.

Threading: every job (run, task, replay, recording, suite) runs in a worker thread
(`agent.ui.app_jobs`), and so does every short task that reads or writes files or waits on the
network (the history, a run's final screen, a report, a task file, the model server check). They
reach the app only through `events`, a queue that the UI thread drains (`drain()`, every 50 ms in the
window). Draining applies each event to the state and tells the view (`AppView`) what to show; the
view is called on the UI thread only, so a window, or a test without Tk, can be one. Every worker
catches its errors and posts them, so they show in the window (red status line, `last_error`).
`as_dict()` returns the state as one JSON-safe dict.

After a job, the live view shows the run's final screen (frames/final.png) with its last action
marked, whatever becomes of the desktop it ran on; `go_live()` returns to the target's screen.
"""

from __future__ import annotations

import datetime as dt
import queue
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from agent.models.base import DEFAULT_MODEL
from agent.session import RunOptions
from agent.ui import app_jobs
from agent.ui.app_events import EventHandlers
from agent.ui.app_runs import History
from agent.ui.app_settings import load_settings, save_settings, settings_path
from agent.ui.app_state import (
    HOST_TARGET,
    SANDBOX_TARGET,
    AppState,
    AppView,
    SuiteProgress,
    target_choices,
    target_spec,
)
from agent.ui.app_target import TargetView
from agent.ui.sandbox import Sandbox
from agent.ui.screen_feed import ScreenFeed

VIEW_FPS = 4.0
HOST_SETTLE_S = 0.6  # after the window steps aside, before a job on its own desktop takes its first screenshot
JOIN_ON_QUIT_S = 20.0
MODEL_JOBS = ("run", "task")  # the jobs with a model: a budget, pause and resume


class AppController(TargetView, EventHandlers):
    """The app without its window: `view` shows what happens; `model` replaces the model the options name;
    `settings_file` is where the last choices are kept (default $XDG_CONFIG_HOME/deskpilot/app.json)."""

    def __init__(self, view: AppView, options: RunOptions | None = None, *, model: Any = None,
                 fps: float = VIEW_FPS, settings_file: Path | None = None) -> None:
        self.view, self.options, self.model = view, options or RunOptions(), model
        self.events: queue.Queue[tuple] = queue.Queue()
        self.state = AppState(budget=self.options.loop.limits.max_cost_usd)
        self.state.show_cost()
        self.settings_file = settings_file or settings_path()
        self.settings, note = load_settings(self.settings_file)
        if note:
            self.state.notes.append(note)
            self.state.status = note
        initial = target_spec(target_choices(self.options.display)[1])
        if self.options.display == "auto" and self.settings.target in ("host", "virtual"):
            initial = self.settings.target
        self.target = initial  # the chosen target's --display value
        self.closing = False
        self._job = self._new_job()  # the running (or last) job's stop, pause and answers
        self._step_aside = False  # the running job acts on the app's own desktop
        self.job_display: str | None = None  # where the running job acts, when not on the chosen target
        self._worker: threading.Thread | None = None
        self.feed = ScreenFeed(fps).start()
        self.sandbox = Sandbox(on_replace=self.feed.release)
        self.history = History(self)

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
        return data | {"view_display": self.feed.display, "settings": asdict(self.settings),
                       "settings_file": str(self.settings_file), "sandbox": self.sandbox.display}

    def remember(self, **choices: Any) -> None:
        """Keep choices (model, base_url, target, theme, suite_folder, attempts, engine) for the next start."""
        changed = {k: v for k, v in choices.items() if getattr(self.settings, k) != v}
        if changed:
            self.settings = replace(self.settings, **changed)
            note = save_settings(self.settings_file, self.settings)
            if note:
                self.set_status(note, error=True)

    # ------------------------------------------------------------------------------ actions (UI thread)
    def start(self, text: str, model: str | None = None, base_url: str | None = None) -> bool:
        """Run a goal, or a task file (by its .yaml/.yml name), with `model` on the chosen target."""
        text = text.strip()
        if not text:
            self.set_status("Type a goal, or open a task file (File \u2192 Open task file\u2026).", error=True)
            return False
        is_task = text.lower().endswith((".yaml", ".yml"))
        options = self._run_options(model, base_url)
        if not self._begin("task" if is_task else "run"):
            return False
        self.remember(model=options.model.model, base_url=options.model.base_url or "")
        self._launch(app_jobs.task_job if is_task else app_jobs.goal_job, text, options)
        return True

    def replay(self, path: str | Path, model: str | None = None, display: str | None = None) -> None:
        """Replay a recording folder on the chosen target, or on `display` ("host", "virtual")."""
        options = self._run_options(model, None, display)
        if self._begin("replay", options.display):
            self._launch(app_jobs.replay_job, Path(path), options)

    def toggle_recording(self, model: str | None = None) -> None:
        """Record a person's demonstration on the target; again (or Stop) to end it."""
        if self.state.job == "record":
            self.stop()
            return
        options = self._run_options(model, None)
        if self._begin("record"):
            self._launch(app_jobs.record_job, options)

    def run_suite(self, folder: str, attempts: int, engine: str = "local", model: str | None = None,
                  base_url: str | None = None) -> None:
        """Run the task files in `folder`, `attempts` times each, on `engine` (local | ray)."""
        folder = folder.strip()
        if not folder or not Path(folder).is_dir():
            self.set_status(f"suite: {folder or 'no folder'} is not a folder of task files; choose one with "
                            "Open suite\u2026", error=True)
            return
        options = replace(self._run_options(model, base_url), display="virtual")
        if self._begin("suite", "virtual"):
            self.state.suite = SuiteProgress(folder=folder)
            self.view.suite_changed()
            self.remember(suite_folder=folder, attempts=attempts, engine=engine)
            self._launch(app_jobs.suite_job, folder, attempts, engine, options)

    def save_task(self, recording: str | Path, out: str | Path, open_editor: bool = True) -> None:
        """Write a recording as a task file (codegen) and open it in the system editor."""
        app_jobs.start_background(app_jobs.codegen_job, self._post, Path(recording), Path(out).expanduser(),
                                  open_editor)

    def suggest_task_path(self, recording: Path) -> Path:
        """Where a demonstration's task file goes unless the person says otherwise: the working folder."""
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return Path(self.options.workdir) / f"recorded-{stamp}.yaml"

    def check_model(self, model: str, base_url: str | None) -> None:
        """Check that the model's server answers (doctor's check), off the UI thread."""
        self.set_status(f"checking {base_url or model}\u2026")
        app_jobs.start_background(app_jobs.check_job, self._post, model, base_url or None)

    def open_report(self, path: str | Path) -> None:
        """Write a recording's (or a suite's) report.html and open it in the browser."""
        app_jobs.start_background(app_jobs.report_job, self._post, Path(path))

    def show_folder(self, path: str | Path) -> None:
        """Show a folder in the file manager."""
        app_jobs.start_background(app_jobs.folder_job, self._post, Path(path))

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
        """Stop any job (its recording is completed, keys and buttons released), the live view and the sandbox."""
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
    def _run_options(self, model: str | None, base_url: str | None, display: str | None = None) -> RunOptions:
        model = (model or "").strip() or DEFAULT_MODEL
        url = (base_url or "").strip() or None
        config = replace(self.options.model, model=model, base_url=url or self.options.model.base_url)
        return replace(self.options, model=config, display=display or self.target)

    def _begin(self, job: str, display: str | None = None) -> bool:
        """Set the state up for a job; False (with the reason shown) when one is already running."""
        if self.state.running:
            self.set_status(f"a {self.state.job} is still going: stop it first", error=True)
            return False
        self.state = replace(self.state, running=True, paused=False, job=job, steps=[], last_error=None,
                             pending_confirmation=None, answers=[], view_mode="live", still=None,
                             budget=self.options.loop.limits.max_cost_usd if job in MODEL_JOBS else None)
        self.state.show_cost()
        self._job = self._new_job()
        self._step_aside = job != "suite" and self.acts_on_own_desktop(display)
        self.job_display = display if job != "suite" else None
        self.view.job_started(job, self._step_aside)
        self.show_target()
        self.set_status(f"starting the {job}\u2026")
        return True

    def _new_job(self) -> app_jobs.JobContext:
        return app_jobs.JobContext(post=self._post, open_target=self._open_target, model=self.model)

    def _launch(self, work: Callable[..., None], *args: Any) -> None:
        """Run `work(job, *args)` in the job's worker thread."""
        self._worker = app_jobs.start_worker(work, self._job, *args, name=f"deskpilot-{self.state.job}",
                                             delay_s=HOST_SETTLE_S if self._step_aside else 0.0)

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


__all__ = ["HOST_TARGET", "SANDBOX_TARGET", "AppController", "AppState", "AppView", "target_choices", "target_spec"]
