"""The jobs of `deskpilot app`, each run in a worker thread: a goal, a task file, a replay, a recording,
a suite; and short background tasks: a report, a task file from a recording, the model server check,
the run history, a run's final screen, storing the API key.

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


def check_model_server(options: RunOptions) -> None:
    """Before a model run: the model's server answers and serves the model (doctor's check), else
    EnvironmentProblem saying what to do; the Anthropic API key for Claude."""
    from agent.errors import EnvironmentProblem
    from agent.models.credentials import api_key
    from agent.ui.app_models import server_problem, split_choice

    problem = server_problem(options.model.model, options.model.base_url)
    if problem:
        raise EnvironmentProblem(problem)
    if split_choice(options.model.model)[0] == "anthropic" and not api_key():  # a keyring may be slow: not on Tk
        raise EnvironmentProblem("no Anthropic API key: set ANTHROPIC_API_KEY, or use File \u2192 Set API key\u2026")


def goal_job(job: JobContext, goal: str, options: RunOptions) -> None:
    """Run a goal with the model on the target (the model's server checked first)."""
    from agent.session import run_goal

    if job.model is None:
        check_model_server(options)
    desktop = job.open_target(options, None)
    outcome = run_goal(goal, options, desktop=desktop, callbacks=job.callbacks(), model=job.model)
    job.post("finished", outcome.result, outcome.recording)


def task_job(job: JobContext, path: str, options: RunOptions) -> None:
    """Run a task file on the target (its own display size for the sandbox, unless one was given)."""
    from agent.tasks.loader import load_task
    from agent.tasks.runner import run_task

    task = load_task(path)
    if job.model is None and task.uses_model:
        check_model_server(options)
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
    """Record what a person does on the target until the job is stopped; then offer it as a task file."""
    from agent.replay.recorder import STOP_HOTKEY, record

    desktop = job.open_target(options, None)
    job.post("note", f"recording what you do on {desktop.display}; press Stop (or {STOP_HOTKEY}) to end it")
    outcome = record(options, desktop=desktop, stop=job.stop, on_step=job.on_step,
                     print_fn=lambda *parts, **_kw: job.post("note", " ".join(map(str, parts))))
    job.post("finished", outcome.result, outcome.recording)
    if outcome.recording is not None and outcome.result.steps:
        job.post("recorded", outcome.recording)


def suite_job(job: JobContext, folder: str, attempts: int, engine: str, options: RunOptions) -> None:
    """Run the task files of `folder` `attempts` times each on `engine`; progress as attempts end; the report."""
    from agent.eval.run import SuiteOptions, run_suite
    from agent.eval.suite import load_suite
    from agent.ui.suite_report import write_suite_report

    if engine == "ray":
        from agent.eval.engines.ray_cluster import import_ray

        import_ray()  # EnvironmentProblem naming the extra, before anything else
    tasks = load_suite([folder])
    if any(t.uses_model for t in tasks):
        check_model_server(options)
    total = sum(1 for _ in tasks) * attempts
    job.post("suite_started", total, len(tasks))

    def done(attempt: Any, progress: dict) -> None:
        verdict = "passed" if attempt.passed else ("not passed" if attempt.status == "succeeded" else attempt.status)
        job.post("attempt", {"task": attempt.task, "number": attempt.number, "verdict": verdict,
                             "steps": attempt.steps, "seconds": round(attempt.duration_s, 1),
                             "cost_usd": attempt.usage.cost_usd, "message": attempt.message}, progress)

    suite = SuiteOptions(run=options, attempts=attempts, engine=engine, models=[options.model.model])
    outcome = run_suite(tasks, suite, on_done=done, stop=job.stop)
    report = write_suite_report(outcome.folder)
    totals = outcome.summary["totals"]
    text = (f"suite {'stopped' if outcome.interrupted else 'done'}: {totals['passed']}/{totals['attempts']} "
            f"passed, ${totals['cost_usd']:.4f}, {totals['wall_s']:.0f} s")
    job.post("suite_done", str(outcome.folder), str(report), text)


def codegen_job(post: Callable[..., None], recording: Path, out: Path, open_editor: bool) -> None:
    """Write the task file of a recording (agent.replay.codegen) and open it in the system editor."""
    from agent.replay.codegen import generate
    from agent.ui.app_open import open_in_editor

    generated = generate(recording, out)
    post("task_written", str(generated.path), generated.summary())
    if open_editor:
        post("note", f"task file {generated.path} ({generated.summary()}); {open_in_editor(generated.path)}")


def check_job(post: Callable[..., None], model: str, base_url: str | None) -> None:
    """The model server check, for the Check button."""
    from agent.ui.app_models import check_text, server_problem

    problem = server_problem(model, base_url)
    post("error" if problem else "note", problem or f"model server: {check_text(model, base_url)}")


def history_job(post: Callable[..., None], folder: Path) -> None:
    """Read the runs of the recordings folder."""
    from agent.ui.app_history import scan_runs

    post("history", scan_runs(folder))


def view_job(post: Callable[..., None], path: Path, box: tuple[int, int], with_rows: bool) -> None:
    """A finished run's final screen (and its steps when `with_rows`) for the live view."""
    from agent.ui.app_history import run_view

    view = run_view(path, box)
    post("still", view, view["rows"] if with_rows else None)


def folder_job(post: Callable[..., None], path: Path) -> None:
    """Show a folder in the file manager."""
    from agent.ui.app_open import show_folder

    post("note", show_folder(path))


def report_job(post: Callable[..., None], path: Path) -> None:
    """Write a recording's report.html and open it in the browser."""
    import webbrowser

    from agent.ui.report import write_report
    from agent.ui.suite_report import write_suite_report

    report = write_suite_report(path) if (path / "suite.json").is_file() else write_report(path)
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
