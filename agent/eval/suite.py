"""A suite: the tasks named on the command line, every one validated before anything runs.

A SUITE argument is a task file (`.yaml`, `.yml`), an OSWorld task file (`.json`, converted by
agent.eval.osworld), or a folder: every task file below it (recursively, hidden folders skipped,
in path order), and every `.json` file below it whose top level is an object with `instruction`
and `evaluator` (OSWorld's shape; other JSON files, such as an app's data, are left alone). The
same file named twice counts once. Two tasks with the same name are refused (suite.json and the
run folder are keyed by name), as is a folder with no task in it. Any problem is BadInput (exit 2)
naming the file, before any attempt runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import BadInput

TASK_SUFFIXES = (".yaml", ".yml")
OSWORLD_SUFFIX = ".json"


@dataclass
class SuiteTask:
    """One task of a suite: its name, the file it came from, how it was read, the loaded task."""

    name: str
    path: Path
    source: str  # "task" | "osworld"
    task: Any  # agent.tasks.schema.Task

    @property
    def uses_model(self) -> bool:
        """Whether a model works on it (a goal without steps, or an agent step)."""
        return bool(self.task.uses_model)


def _looks_like_osworld(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and "instruction" in data and "evaluator" in data


def collect(paths: Sequence[str | Path]) -> list[Path]:
    """The suite's files, in order (folders expanded); BadInput for a path that is neither."""
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = [p for p in sorted(path.rglob("*"))
                     if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
                     and (p.suffix in TASK_SUFFIXES or (p.suffix == OSWORLD_SUFFIX and _looks_like_osworld(p)))]
            if not found:
                raise BadInput(f"{path}: no task files (.yaml, .yml) or OSWorld tasks (.json) in this folder")
            files += found
        elif path.is_file():
            if path.suffix not in (*TASK_SUFFIXES, OSWORLD_SUFFIX):
                raise BadInput(f"{path}: not a task file (.yaml, .yml) nor an OSWorld task (.json)")
            files.append(path)
        else:
            raise BadInput(f"{path}: no such file or folder")
    unique = {p.resolve(): p for p in reversed(files)}
    return [p for p in files if unique.get(p.resolve()) is p]


def load_suite(paths: Sequence[str | Path]) -> list[SuiteTask]:
    """Every task of the suite, loaded and validated; BadInput naming the file of the first problem."""
    from agent.eval.osworld import load_osworld
    from agent.tasks.loader import TaskFileError, load_task

    if not paths:
        raise BadInput("name at least one task file, folder or OSWorld task")
    tasks: list[SuiteTask] = []
    for path in collect(paths):
        if path.suffix == OSWORLD_SUFFIX:
            task, source = load_osworld(path), "osworld"
        else:
            try:
                task, source = load_task(path), "task"
            except TaskFileError as exc:
                raise BadInput(f"invalid task file:\n{exc}") from None
        tasks.append(SuiteTask(str(task.name), path, source, task))
    seen: dict[str, Path] = {}
    for item in tasks:
        if item.name in seen:
            raise BadInput(f"{seen[item.name]} and {item.path} are both named {item.name!r}; "
                           "give one of them another `name:`")
        seen[item.name] = item.path
    return tasks
