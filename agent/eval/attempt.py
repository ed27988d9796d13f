"""One attempt as the engines see it: what to run (`AttemptSpec`) and how it ended (`Attempt`).

Both are plain picklable dataclasses, so a spec can travel to a worker process or a Ray node and
its `Attempt` can come back. The spec carries everything the attempt needs (the loaded task or
the goal, the run options with the model's name and the folder for its recording, the display
size); nothing in it refers to the driver's objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import ExitCode
from agent.types import Usage

if TYPE_CHECKING:
    from agent.session import RunOptions
    from agent.tasks.schema import Task
    from vision.geometry import Size

ENV_ATTEMPT = "DESKPILOT_ATTEMPT"
ENV_ATTEMPT_DIR = "DESKPILOT_ATTEMPT_DIR"
_IMPOSSIBLE = re.compile(r"(?:^|the model did not finish: )IMPOSSIBLE\b")


@dataclass
class AttemptSpec:
    """What one attempt runs: `work` (a loaded task or a plain goal) with `options` on a display of `size`.

    `index` is the attempt's place in the run (results come back in this order); `number` is what
    task commands see as DESKPILOT_ATTEMPT; `options.out` is the folder its recording goes into;
    `checks` is how many checks decide whether it passed (None: the model's own word); `meta` is
    added to its recording's meta.json; `label` names it in messages.
    """

    index: int
    work: Task | str
    options: RunOptions
    size: Size
    number: int = 0
    checks: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    task: str | None = None  # the task's name, for suites
    confirm_mode: str | None = None
    uses_model: bool = True  # False: scripted steps only (the attempt's `model` is then None)

    @property
    def model(self) -> str | None:
        """The model the attempt uses (its name as given to --model); None when no model works on it."""
        return self.options.model.model if self.uses_model else None

    @property
    def goal(self) -> str | None:
        """The task's goal, or the plain goal."""
        return self.work if isinstance(self.work, str) else self.work.goal


@dataclass
class Attempt:
    """One attempt: how it was sampled, how it ended, where its recording is."""

    index: int
    model: str | None
    temperature: float | None = None
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
    task: str | None = None
    number: int = 0
    tries: int = 0  # how many times a worker started it (2 after a worker died once)
    worker: str | None = None  # where it ran: "thread", "process <pid>", "ray <node>"

    @property
    def impossible(self) -> bool:
        """The model reported the task impossible (honestly or not: the judge decides)."""
        return self.status == "failed" and bool(_IMPOSSIBLE.search(self.message or ""))

    @property
    def cost_key(self) -> tuple[int, int, float, int]:
        """Cheapest first: fewest steps, then fewest tokens, then lowest cost, then lowest index."""
        return self.steps, self.usage.total_tokens, self.usage.cost_usd, self.index

    def as_meta(self, parent: Path) -> dict[str, Any]:
        """A parent meta's `attempts` entry (path relative to the parent folder)."""
        return {"path": relative(self.recording, parent), "status": self.status, "passed": self.passed,
                "steps": self.steps, "cost_usd": round(self.usage.cost_usd, 6), "index": self.index,
                "model": self.model, "temperature": self.temperature, "tokens": self.usage.total_tokens,
                "duration_s": round(self.duration_s, 3), "message": self.message, "impossible": self.impossible,
                "checks_ok": sum(1 for c in self.checks if c.get("ok")), "checks_total": len(self.checks),
                "crashed": self.crashed is not None, "tries": self.tries}


def relative(path: Path | None, parent: Path) -> str | None:
    """`path` relative to `parent` in POSIX form (absolute when outside it; None stays None)."""
    if path is None:
        return None
    try:
        return path.relative_to(parent).as_posix()
    except ValueError:
        return str(path)


def not_started(spec: AttemptSpec, why: str = "the run was stopped") -> Attempt:
    """The result of an attempt that never began."""
    return Attempt(spec.index, spec.model, spec.options.model.temperature, message=f"not started: {why}",
                   task=spec.task, number=spec.number)
