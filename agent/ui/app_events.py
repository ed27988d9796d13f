"""What each event posted by the app's workers does, on the UI thread (the controller's half that reacts).

`EventHandlers` is mixed into `agent.ui.app_controller.AppController`: an event `(kind, *args)`
calls `_on_<kind>(*args)`, which updates the state and tells the view. No Tk here.
"""

from __future__ import annotations

import queue
from pathlib import Path
from typing import Any

from agent.ui.step_rows import step_row

MODEL_JOBS = ("run", "task")


class EventHandlers:
    """The controller's event handlers (they use its `state`, `view`, `history` and helpers)."""

    state: Any
    view: Any
    history: Any
    feed: Any
    sandbox: Any

    def set_status(self, text: str, error: bool = False) -> None:  # the controller's
        raise NotImplementedError

    def show_target(self) -> None:  # the controller's
        raise NotImplementedError

    def show_run(self, path: str | Path, with_rows: bool = True) -> None:  # the controller's
        raise NotImplementedError

    def suggest_task_path(self, recording: Path) -> Path:  # the controller's
        raise NotImplementedError

    def _on_error(self, message: str) -> None:
        self.set_status(f"error: {message}", error=True)

    def _on_note(self, message: str) -> None:
        self.set_status(message)

    def _on_report(self, path: Path) -> None:
        self.state.report = path
        self.set_status(f"report: {path}")

    def _on_target(self, display: str) -> None:
        self.state.sandbox = self.sandbox.display
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
        if recording is not None:
            self.show_run(recording, with_rows=False)  # its final screen stays, whatever becomes of the desktop

    def _on_recorded(self, recording: Path) -> None:
        self.view.offer_task(recording, self.suggest_task_path(recording))

    def _on_task_written(self, path: str, summary: str) -> None:
        self.state.task_file = path
        self.set_status(f"task file written: {path} ({summary})")

    def _on_still(self, view: dict, rows: list[dict] | None) -> None:
        if self.state.running and rows is not None:
            return  # a run started meanwhile: its live view wins
        self.state.view_mode = "still"
        self.state.still = {k: view[k] for k in ("path", "caption", "point", "action")}
        if rows is not None:
            self.state.steps = list(rows)
        self.view.show_still(view, rows)
        self.view.refresh()

    def _on_history(self, entries: list) -> None:
        self.history.loaded(entries)

    def _on_suite_started(self, total: int, tasks: int) -> None:
        self.state.suite.total = total
        self.set_status(f"suite: {tasks} task{'s' if tasks != 1 else ''}, {total} attempts on private desktops\u2026")
        self.view.suite_changed()

    def _on_attempt(self, row: dict, progress: dict) -> None:
        suite = self.state.suite
        suite.rows.append(row)
        suite.done, suite.total = progress["done"], progress["total"]
        suite.passed, suite.cost_usd = progress["passed"], progress["cost_usd"]
        self.set_status(f"suite: {suite.done} of {suite.total} attempts done, {suite.passed} passing, "
                        f"${suite.cost_usd:.4f}")
        self.view.suite_changed()

    def _on_suite_done(self, folder: str, report: str, text: str) -> None:
        suite = self.state.suite
        suite.run_folder, suite.report, suite.summary = folder, report, text
        self.state.recording = Path(folder)
        self.set_status(f"{text}; report: {report}")
        self.view.suite_changed()

    def _on_done(self) -> None:
        self._on_confirm_closed()
        self.state.running, self.state.paused, self.state.job = False, False, None
        self.view.job_ended()
        self.show_target()
        self.view.refresh()
        self.history.refresh()
