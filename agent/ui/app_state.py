"""What `deskpilot app` shows, as plain values, and the interface its window implements (no Tk here).

`AppState` is the controller's state (status, the running job, steps, cost, the live view's mode,
the history's visible runs, the suite's progress); `AppView` is what the controller calls, on the
UI thread only, to show it. The targets: "This desktop", "Sandbox (virtual desktop)" and, when the
app was started with `--display :N`, "Display :N".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from agent.ui.options import is_x_display

HOST_TARGET = "This desktop"
SANDBOX_TARGET = "Sandbox (virtual desktop)"


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

    def show_still(self, view: dict, rows: list[dict] | None) -> None:
        """A finished run's final screen (agent.ui.app_history.run_view), its last action marked; `rows`: its
        steps for the step list (None: keep the list as it is)."""

    def history_changed(self) -> None:
        """The history's visible runs changed (`state.runs`)."""

    def suite_changed(self) -> None:
        """The suite's progress changed (`state.suite`)."""

    def offer_task(self, recording: Path, suggested: Path) -> None:
        """A demonstration ended: offer to save it as a task file (codegen) at `suggested`, or elsewhere."""


@dataclass
class SuiteProgress:
    """A suite run as the window shows it: attempts done of the total, passing, cost, one row per attempt."""

    folder: str = ""  # the suite's task folder
    total: int = 0
    done: int = 0
    passed: int = 0
    cost_usd: float = 0.0
    rows: list[dict] = field(default_factory=list)
    run_folder: str | None = None  # the evaluation run's folder, once it ended
    report: str | None = None
    summary: str = ""


@dataclass
class AppState:
    """What the app shows, as plain values (`recording` and `report` are the last job's)."""

    status: str = "Ready."
    status_is_error: bool = False
    running: bool = False
    paused: bool = False
    job: str | None = None  # "run" | "task" | "replay" | "record" | "suite" while running
    cost_text: str = ""
    steps: list[dict] = field(default_factory=list)
    last_error: str | None = None
    pending_confirmation: dict | None = None
    answers: list[str] = field(default_factory=list)  # the confirmation answers in this job, in order
    recording: Path | None = None
    report: Path | None = None
    budget: float | None = None  # the job's cost budget in USD; None: no budget
    view_mode: str = "live"  # "live": the target's screen; "still": a finished run's final screen
    still: dict | None = None  # the still shown: {"path", "caption", "point", "action"}
    runs: list[dict] = field(default_factory=list)  # the history's visible runs (RunEntry.as_dict())
    selected_run: str | None = None
    suite: SuiteProgress = field(default_factory=SuiteProgress)
    notes: list[str] = field(default_factory=list)  # notes shown at start (e.g. an unreadable settings file)
    task_file: str | None = None  # the last task file written from a demonstration
    sandbox: str | None = None  # the sandbox's display while it runs

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
