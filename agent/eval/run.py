"""Running a suite: every task (crossed with every model) `attempts` times on an engine, then suite.json.

`run_suite(tasks, options)`:

- plans the attempts: each task with each model of `options.models` (default: the run options'
  model), `attempts` times. A task that uses no model (scripted steps only) runs `attempts` times
  once, with model null: running the same script per model would measure nothing new;
- checks up front that every model exists and has credentials (BadInput / exit 4 before any work);
- runs them on the engine, `parallel` at a time; every attempt on its own private virtual display
  with the task's setup run afresh (agent.eval.sandbox), `DESKPILOT_ATTEMPT` = its number 0..N-1
  within its task and model;
- writes the run folder and `suite.json` (see below), and returns a `SuiteOutcome` whose
  `exit_code` is 0 once every attempt reached a verdict, 3 when the run was stopped (Ctrl-C), 4
  when an attempt could not have its display or model API (an environment problem: its exit
  code 4), else 1 when `min_success` is set and some model's success rate is below it.

The run folder:

```
<out>/<stamp>-eval-<hex>/
  suite.json                                   the results (format "deskpilot.suite/1")
  report.html                                  written by the UI (agent.ui.suite_report)
  attempts/<task>/<model>/<k>/<run-id>/        attempt k's recording (task and model as folder-safe names)
```

suite.json: `format`, `created`, `ended`, `status` (completed | stopped), `engine` (name, parallel,
workers or Ray details), `models`, `attempts_per_task`, `versions` (deskpilot, python, ray, platform),
`min_success` and `met`, `tasks` (one entry per task and model: name, path, source, model,
attempts, passed, failed, errors, success_rate, interval95 [Wilson, 95%], median_steps,
median_seconds, median_cost_usd, cost_usd, runs [each attempt: number, status, passed, steps,
seconds, cost_usd, tokens, message, tries, recording, report]), `by_model` (the same numbers per
model), `totals` (the same over everything, plus wall_s and attempts_per_minute).
Success rates count every attempt: one that crashed or never started did not pass.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.errors import BadInput, EnvironmentProblem, ExitCode
from agent.eval.attempt import Attempt, AttemptSpec, relative
from agent.eval.stats import summarise
from agent.eval.suite import SuiteTask
from agent.models.base import ModelConfig
from agent.session import Callbacks, RunOptions
from agent.types import StopSignal

FORMAT = "deskpilot.suite/1"
SUITE_FILE = "suite.json"
REPORT_FILE = "report.html"


@dataclass
class SuiteOptions:
    """How to run a suite."""

    run: RunOptions = field(default_factory=RunOptions)  # model config, budgets, out folder
    attempts: int = 1
    parallel: int | None = None  # default: this machine's CPUs; on a Ray cluster, its CPUs / num_cpus
    engine: str = "local"
    ray_address: str | None = None
    num_cpus: float = 1.0
    models: list[str] | None = None
    min_success: float | None = None
    confirm_mode: str | None = None


@dataclass
class SuiteOutcome:
    """A finished suite: its folder, suite.json's content, every attempt, the exit code."""

    folder: Path
    summary: dict[str, Any]
    attempts: list[Attempt]
    exit_code: int
    interrupted: str | None = None

    @property
    def suite_file(self) -> Path:
        """The run's suite.json."""
        return self.folder / SUITE_FILE


def slug(text: str) -> str:
    """A folder-safe form of a task or model name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:80] or "x"


def _folder(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    while True:
        path = out / f"{stamp}-eval-{secrets.token_hex(2)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


class _Plan:
    """The attempts of a suite: specs in order, and which task and model each belongs to."""

    def __init__(self, tasks: Sequence[SuiteTask], options: SuiteOptions, folder: Path) -> None:
        self.models = [m for m in (options.models or []) if m] or [options.run.model.model]
        self.groups: list[tuple[SuiteTask, str | None, list[int]]] = []
        self.specs: list[AttemptSpec] = []
        for item in tasks:
            for model in (self.models if item.uses_model else [None]):
                indices = []
                for k in range(options.attempts):
                    config = replace(options.run.model, model=model or options.run.model.model)
                    out = folder / "attempts" / slug(item.name) / slug(model or "scripted") / str(k)
                    meta = {"eval": {"task": item.name, "model": model, "attempt": k, "suite": "../../../../.."}}
                    spec = AttemptSpec(len(self.specs), item.task, replace(options.run, model=config, out=out),
                                       item.task.display.size if item.task.display else _default_size(),
                                       number=k, checks=len(item.task.checks) or None, meta=meta,
                                       label=f"{item.name} ({model or 'scripted'}) attempt {k}", task=item.name,
                                       confirm_mode=options.confirm_mode, uses_model=model is not None)
                    indices.append(spec.index)
                    self.specs.append(spec)
                self.groups.append((item, model, indices))

    @property
    def used_models(self) -> list[str]:
        """The models some task actually uses."""
        return list(dict.fromkeys(m for _, m, _ in self.groups if m))


def _default_size() -> Any:
    from actions.platform import DEFAULT_SIZE

    return DEFAULT_SIZE


def _check_models(models: Sequence[str], base: ModelConfig) -> None:
    """BadInput for an unknown model, ModelUnavailable (exit 4) for one without credentials, before any work."""
    from agent.models import registry

    for name in models:
        registry.create(replace(base, model=name)).preflight()


def default_parallel() -> int:
    """`--parallel`'s default on this machine (local engine, or a local Ray): its CPUs."""
    return max(1, os.cpu_count() or 1)


def run_suite(tasks: Sequence[SuiteTask], options: SuiteOptions, *, on_done: Callable[[Attempt, dict], None] | None
              = None, stop: StopSignal | None = None, engine: Any = None) -> SuiteOutcome:
    """Run the suite (see the module docstring); `on_done(attempt, progress)` as each attempt ends.

    `engine`: an Engine to use instead of the one the options name (benchmarks, tests).
    """
    from agent.eval.engines import make_engine
    from agent.eval.engines.base import ctrl_c_held

    if not tasks:
        raise BadInput("the suite has no tasks")
    if isinstance(options.attempts, bool) or not isinstance(options.attempts, int) or options.attempts < 1:
        raise BadInput(f"--attempts must be a positive number, got {options.attempts!r}")
    if options.min_success is not None and not 0 <= options.min_success <= 1:
        raise BadInput(f"--min-success must be a rate from 0 to 1 (or a percentage), got {options.min_success!r}")
    parallel = options.parallel or default_parallel()
    secrets_used = tuple(dict.fromkeys(n for t in tasks for n in t.task.secret_names))
    if engine is None:
        engine = make_engine(options.engine, parallel, address=options.ray_address, num_cpus=options.num_cpus,
                             callbacks=Callbacks(confirm_mode=options.confirm_mode), env_names=secrets_used)
        if options.parallel is None and options.ray_address:  # a cluster: as many at once as its CPUs allow
            engine.auto_parallel = True
    out = Path(options.run.out)
    probe = _Plan(tasks, options, out / "unused")
    _check_models(probe.used_models, options.run.model)
    folder = _folder(out)
    plan = _Plan(tasks, options, folder)
    created, started = dt.datetime.now(dt.timezone.utc), time.monotonic()
    progress = {"done": 0, "total": len(plan.specs), "passed": 0, "cost_usd": 0.0}

    def done(attempt: Attempt) -> None:
        progress["done"] += 1
        progress["passed"] += int(attempt.passed)
        progress["cost_usd"] += attempt.usage.cost_usd
        if on_done is not None:
            on_done(attempt, dict(progress))

    limits = [t.task.limits.apply(options.run.loop.limits).max_seconds for t in tasks]
    limit_s = None if any(v is None for v in limits) else max(limits)
    try:
        attempts = engine.run(plan.specs, on_done=done, stop=stop, limit_s=limit_s)
    except EnvironmentProblem:  # the engine could not be had: no attempt ran, leave no empty run folder
        if not any(folder.iterdir()):
            folder.rmdir()
        raise
    wall = time.monotonic() - started
    with ctrl_c_held():  # the attempts have ended: their results are written whatever Ctrl-C comes now
        summary = _summary(plan, attempts, folder, engine, options, created, wall)
        (folder / SUITE_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return SuiteOutcome(folder, summary, attempts, _exit_code(summary, attempts, engine.interrupted),
                        engine.interrupted)


def _summary(plan: _Plan, attempts: list[Attempt], folder: Path, engine: Any, options: SuiteOptions,
             created: dt.datetime, wall: float) -> dict[str, Any]:
    by_index = {a.index: a for a in attempts}
    tasks = []
    for item, model, indices in plan.groups:
        group = [by_index[i] for i in indices]
        tasks.append({"name": item.name, "path": str(item.path), "source": item.source, "model": model,
                      **summarise(group), "runs": [_run(a, folder) for a in group]})
    by_model = {}
    for model in dict.fromkeys(m for _, m, _ in plan.groups):
        group = [by_index[i] for _, m, indices in plan.groups if m == model for i in indices]
        by_model[model or "scripted"] = summarise(group)
    totals = summarise(attempts)
    totals["wall_s"] = round(wall, 3)
    totals["attempts_per_minute"] = round(len(attempts) / wall * 60, 2) if wall > 0 else None
    met = None
    if options.min_success is not None:
        met = all((s["success_rate"] or 0) >= options.min_success for s in by_model.values())
    return {
        "format": FORMAT, "created": created.isoformat(timespec="seconds"),
        "ended": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "status": "stopped" if engine.interrupted else "completed", "interrupted": engine.interrupted,
        "engine": engine.describe(), "models": plan.used_models, "attempts_per_task": options.attempts,
        "versions": _versions(engine), "min_success": options.min_success, "met": met,
        "tasks": tasks, "by_model": by_model, "totals": totals,
    }


def _run(attempt: Attempt, folder: Path) -> dict[str, Any]:
    recording = relative(attempt.recording, folder)
    return {"number": attempt.number, "status": attempt.status, "passed": attempt.passed, "steps": attempt.steps,
            "seconds": round(attempt.duration_s, 3), "cost_usd": round(attempt.usage.cost_usd, 6),
            "tokens": attempt.usage.total_tokens, "message": attempt.message, "tries": attempt.tries,
            "worker": attempt.worker, "checks": [{k: c.get(k) for k in ("check", "ok", "detail")}
                                                  for c in attempt.checks],
            "recording": recording, "report": f"{recording}/{REPORT_FILE}" if recording else None}


def _versions(engine: Any) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"deskpilot": of("deskpilot"), "python": sys.version.split()[0], "ray": of("ray"),
            "platform": platform.platform(), "engine": engine.name}


def _exit_code(summary: dict[str, Any], attempts: list[Attempt], interrupted: str | None) -> int:
    if interrupted is not None:
        return int(ExitCode.STOPPED)
    if any(a.status == "error" and a.exit_code == int(ExitCode.ENVIRONMENT) for a in attempts):
        return int(ExitCode.ENVIRONMENT)
    if summary["met"] is False:
        return int(ExitCode.FAILED)
    return int(ExitCode.OK)
