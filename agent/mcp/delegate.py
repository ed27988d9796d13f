"""The MCP tools that hand work to deskpilot's own runners: `run_task`, `replay` and `run_goal`.

Each runs on the served display while holding it (no other call acts meanwhile), writes its own
recording as the command line would (kind task, replay or run, in the server's `--out` folder),
and answers with its outcome and `recording: PATH`. The server's session recording gets one step
for the call, with the outcome and the run's recording path. The kill switch, or the client
cancelling the call, stops the run (status stopped). A failed task or a diverged replay is an
outcome, not a tool error; bad input (no such file, an invalid task file or recording, a bad
range) and a model that is not configured are tool errors, and nothing runs.

Relative paths are resolved from the server's working directory; a recording may also be named
by its folder name inside `--out`, as the recordings resource lists it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import DeskpilotError
from agent.mcp.desk import Answer

if TYPE_CHECKING:
    from agent.mcp.desk import Desk
    from agent.safety.confirm import Asker
    from agent.session import Callbacks, RunOptions, RunOutcome
    from agent.types import StopSignal, Usage

OnStep = Callable[[dict, "Usage"], None]


@dataclass(frozen=True)
class Helpers:
    """What a delegated run gets from the call: the elicitation asker (None: the client cannot ask) and
    a progress callback per step."""

    ask: Asker | None = None
    on_step: OnStep | None = None


def _callbacks(desk: Desk, stop: StopSignal, helpers: Helpers) -> Callbacks:
    from agent.session import Callbacks

    mode = desk.config.confirm
    if mode == "ask" and helpers.ask is None:
        mode = "deny"  # nobody can answer: "ask" verdicts are refused, saying so
    return Callbacks(on_step=helpers.on_step, stop=stop, confirm_mode=mode, asker=helpers.ask)


def _options(desk: Desk, **changes: Any) -> RunOptions:
    from dataclasses import replace

    return replace(desk.session.options, display=desk.display, size=None, **changes)


def _answer(desk: Desk, tool: str, args: dict[str, Any], outcome: RunOutcome) -> Answer:
    from agent.recording.writer import Recording

    result = outcome.result
    checks: list[dict] = []
    try:
        checks = list(Recording.load(outcome.recording, partial_ok=True).meta.get("checks") or [])
    except Exception:  # the outcome stands without its checks
        checks = []
    lines = [f"{result.status}: {result.message}", f"steps {result.steps}"]
    lines += [f"check {'ok' if c.get('ok') else 'FAIL'} {c.get('check')}: {c.get('detail')}" for c in checks]
    lines.append(f"recording: {outcome.recording}")
    data = {"status": result.status, "exit_code": result.exit_code, "message": result.message,
            "steps": result.steps, "checks": checks, "recording": str(outcome.recording)}
    answer = Answer("\n".join(lines), data=data)
    desk.journal.log_call(tool, args, answer, recording=str(outcome.recording), status=result.status)
    return answer


def _refuse(desk: Desk, tool: str, args: dict[str, Any], message: str) -> Answer:
    answer = Answer(f"{message.rstrip('. ')}. Nothing was run.", error=True)
    desk.journal.log_call(tool, args, answer)
    return answer


def run_task(desk: Desk, path: str, helpers: Helpers) -> Answer:
    """Run the task file at `path` on the served display."""
    from agent.tasks.loader import TaskFileError, load_task
    from agent.tasks.runner import run_task as run

    args = {"path": path}
    try:
        task = load_task(Path(path).expanduser())
    except TaskFileError as exc:
        return _refuse(desk, "run_task", args, f"invalid task file:\n{exc}")
    with desk.delegated() as stop:
        try:
            outcome = run(task, _options(desk), desktop=desk.session.desktop,
                          callbacks=_callbacks(desk, stop, helpers), kill_switch=False)
        except DeskpilotError as exc:
            return _refuse(desk, "run_task", args, str(exc))
        return _answer(desk, "run_task", args, outcome)


def recording_path(desk: Desk, recording: str) -> Path:
    """A recording given as a path, or as a folder name inside the server's `--out`."""
    given = Path(recording).expanduser()
    if given.is_dir() or given.is_absolute():
        return given
    inside = Path(desk.config.out) / recording
    return inside if inside.is_dir() else given


def replay(desk: Desk, recording: str, start: int | None, end: int | None, helpers: Helpers) -> Answer:
    """Replay a recording (steps `start`..`end`, inclusive) on the served display."""
    from agent.replay.replayer import replay as run

    args: dict[str, Any] = {"recording": recording}
    args.update((k, v) for k, v in (("from", start), ("to", end)) if v is not None)
    with desk.delegated() as stop:
        try:
            outcome = run(recording_path(desk, recording), _options(desk), start=start, end=end,
                          desktop=desk.session.desktop, on_step=helpers.on_step, stop=stop)
        except DeskpilotError as exc:
            return _refuse(desk, "replay", args, str(exc))
        return _answer(desk, "replay", args, outcome)


def run_goal(desk: Desk, goal: str, model: str | None, helpers: Helpers) -> Answer:
    """Hand `goal` to deskpilot's own agent loop with `model` (default Claude), where it is configured."""
    from agent.models import registry
    from agent.models.base import DEFAULT_MODEL, ModelConfig
    from agent.session import run_goal as run

    spec = model or DEFAULT_MODEL
    args = {"goal": goal, **({"model": model} if model else {})}
    if not goal.strip():
        return _refuse(desk, "run_goal", args, "the goal is empty")
    try:
        brain = registry.create(ModelConfig(model=spec))
        brain.preflight()
    except DeskpilotError as exc:
        return _refuse(desk, "run_goal", args,
                       f"run_goal needs a configured model and {spec} is not: {exc}. Set it in the MCP server's "
                       "environment (the `env` of the client's server configuration), or use the computer tool "
                       "yourself")
    with desk.delegated() as stop:
        try:
            outcome = run(goal, _options(desk, model=ModelConfig(model=spec)), desktop=desk.session.desktop,
                          callbacks=_callbacks(desk, stop, helpers), model=brain, kill_switch=False)
        except DeskpilotError as exc:
            return _refuse(desk, "run_goal", args, str(exc))
        return _answer(desk, "run_goal", args, outcome)


__all__ = ["Helpers", "recording_path", "replay", "run_goal", "run_task"]
