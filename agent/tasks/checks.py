"""A task's checks: evaluated at the end of a run (and alone by `deskpilot check`), each to
{check, kind, line, ok, detail}."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.tasks.items import (
    AnyCheck,
    CommandCheck,
    FileCheckItem,
    OutcomeCheck,
    OutputCheck,
    OutputCheckItem,
    ScreenCheck,
    TaskItem,
)

if TYPE_CHECKING:
    from agent.tasks.runner import TaskRunner


def evaluate(runner: TaskRunner, item: TaskItem) -> dict[str, Any]:
    """Evaluate one check at the end: {check, line, ok, detail}."""
    from agent.tasks.runner import StepFailed

    ok, detail = False, ""
    if isinstance(item, ScreenCheck):
        try:
            found = runner.find(item.screen, f"check (line {item.line})", 0, save=False)
            ok, detail = True, f"seen at {list(found.box or found.point)}"
        except StepFailed as exc:
            detail = str(exc)
    elif isinstance(item, FileCheckItem):
        path = expand(runner, item.file.path)
        if not item.file.exists:
            ok, detail = not path.exists(), f"{path} {'exists' if path.exists() else 'does not exist'}"
        elif not path.is_file():
            detail = f"{path} does not exist"
        elif item.file.contains is not None:
            ok = item.file.contains in path.read_text(encoding="utf-8", errors="replace")
            detail = f"{path} {'contains' if ok else 'does not contain'} {item.file.contains!r}"
        else:
            ok, detail = True, f"{path} exists"
    elif isinstance(item, CommandCheck):
        try:
            runner.allowed(f"check (line {item.line})", command=item.command)
        except StepFailed as exc:
            return {"check": item.describe(), "kind": item.kind, "line": item.line, "ok": False, "detail": str(exc)}
        code, output = runner.run_command(item.command, item.timeout)
        ok, detail = code == 0, f"exit code {code}" + (f": {output[-300:]}" if output and code else "")
    elif isinstance(item, OutputCheckItem):
        ok, detail = check_output(runner, item.output)
    elif isinstance(item, OutcomeCheck):
        ok = runner.outcome == item.outcome
        detail = (f"the model's work ended {runner.outcome}" if runner.outcome else "no model worked on the task")
    elif isinstance(item, AnyCheck):
        parts = [evaluate(runner, c) for c in item.any]
        ok = any(p["ok"] for p in parts)
        detail = " | ".join(f"{'ok' if p['ok'] else 'FAIL'} {p['check']}: {p['detail']}" for p in parts)
    return {"check": item.describe(), "kind": item.kind, "line": item.line, "ok": ok, "detail": detail}

def check_output(runner: TaskRunner, check: OutputCheck) -> tuple[bool, str]:
    """An output check: read the command's standard output or the file, compare it."""
    from agent.tasks.compare import compare

    if check.command is not None:
        code, actual, error = runner.run_command(check.command, split=True)
        if code in (124, 127):  # it timed out, or could not be started: there is no output to compare
            return False, f"the command did not run: {error}"
        what = "the output"
    else:
        path = expand(runner, check.file)
        try:
            actual = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return False, f"cannot read {path}: {exc.strerror or exc}"
        what = str(path)
    expected = check.equals
    if check.equals_file is not None:
        other = expand(runner, check.equals_file)
        try:
            expected = other.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return False, f"cannot read {other}: {exc.strerror or exc}"
    return compare(actual, check, expected, what)


def expand(runner: TaskRunner, path: Path) -> Path:
    """A check's path with `$VAR`/`${VAR}` from the commands' environment, relative to the task's folder."""
    env = runner.session.command_env()
    text = re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: env.get(m[1] or m[2], m[0]), str(path))
    return (runner.task.folder / Path(text).expanduser()).resolve()
