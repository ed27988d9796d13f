"""The evaluation commands: `deskpilot eval`, `deskpilot check` and `deskpilot import osworld`.

`add_parsers(sub)` adds them to the command line's subparsers; `COMMANDS` maps their names to
the functions that run them (agent.ui.cli registers both).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.errors import BadInput, ExitCode


def rate(text: str) -> float:
    """A success rate: 0.8, or 80%."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a rate like 0.8 or 80%, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (0% and 100%), got {text!r}")
    return value


def add_parsers(sub: Any) -> None:
    """`eval`, `check` and `import` on the `deskpilot` command line."""
    from agent.models.base import DEFAULT_MODEL
    from agent.ui import options as opt

    run = sub.add_parser("eval", help="run a suite of tasks many times (locally or on Ray) and score it",
                         parents=[opt.out_option("the run folder"), opt.budget_options()])
    run.add_argument("suite", nargs="+", metavar="SUITE",
                     help="task files, folders of them, or OSWorld task JSON files")
    run.add_argument("--attempts", type=opt.positive_int, default=1, metavar="N",
                     help="attempts per task and model (default 1)")
    run.add_argument("--parallel", type=opt.positive_int, metavar="K",
                     help="attempts at once (default: this machine's CPUs; on a Ray cluster, its CPUs / --num-cpus)")
    run.add_argument("--engine", choices=("local", "ray"), default="local",
                     help="local worker processes (default) or Ray tasks")
    run.add_argument("--ray-address", metavar="ADDR", help="a running Ray cluster (default: a local Ray "
                                                           "started and stopped for the run)")
    run.add_argument("--num-cpus", type=opt.positive_float, default=1.0, metavar="F",
                     help="CPUs each attempt reserves on Ray (default 1)")
    run.add_argument("--model", action="append", default=None,
                     help=f"a model (default {DEFAULT_MODEL}); repeat to compare models on every task")
    run.add_argument("--min-success", type=rate, metavar="RATE",
                     help="exit 1 unless every model's success rate reaches RATE (0.8 or 80%%)")
    run.add_argument("--confirm", choices=("allow", "deny"), default=None,
                     help="risky model actions in attempts: deny (default: no one can answer) or allow")

    check = sub.add_parser("check", help="only a task's checks, against the display as it is now (exit 0 all "
                                         "hold, 1 one fails)", parents=[opt.display_options(size=False)])
    check.add_argument("task", metavar="TASK.yaml", help="a task file (or an OSWorld task JSON)")

    imp = sub.add_parser("import", help="convert tasks of another format into deskpilot task files")
    imp.add_argument("format", choices=("osworld",), help="the format: osworld (its task JSON files)")
    imp.add_argument("files", nargs="+", metavar="FILE.json", help="task files of that format")
    imp.add_argument("--out", default=".", help="folder for the task files (default: the current folder)")


def _load(path: str) -> Any:
    """A task file or an OSWorld task JSON as a loaded Task; BadInput when it is not valid."""
    from agent.eval.suite import load_suite

    return load_suite([path])[0].task


def cmd_check(args: argparse.Namespace) -> int:
    """Only the task's checks, against the display as it is; one line per check."""
    from agent.models.base import ModelConfig
    from agent.session import RunOptions
    from agent.tasks.runner import check_task

    if not Path(args.task).is_file():
        raise BadInput(f"{args.task}: no such task file")
    task = _load(args.task)
    if not task.checks:
        raise BadInput(f"{args.task}: the task has no checks")
    results = check_task(task, RunOptions(model=ModelConfig(), display=args.display))
    for c in results:
        print(f"check {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}", flush=True)
    held = sum(1 for c in results if c["ok"])
    print(f"{held} of {len(results)} checks hold")
    return ExitCode.OK if held == len(results) else ExitCode.FAILED


def cmd_import(args: argparse.Namespace) -> int:
    """Convert OSWorld tasks; every file is checked before any is written."""
    from agent.eval.osworld import import_files

    written = import_files(args.files, args.out)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} task{'s' if len(written) != 1 else ''} imported into {Path(args.out)}")
    return ExitCode.OK


def cmd_eval(args: argparse.Namespace) -> int:
    """Run the suite; a line per attempt as it ends; the table; `recording: PATH` last."""
    from agent.eval.engines.base import ctrl_c_held
    from agent.eval.run import SuiteOptions, run_suite
    from agent.eval.suite import load_suite
    from agent.loop import LoopConfig
    from agent.models.base import DEFAULT_MODEL, ModelConfig
    from agent.session import RunOptions
    from agent.ui.options import limits
    from agent.ui.suite_report import write_suite_report

    if args.ray_address and args.engine != "ray":
        raise BadInput("--ray-address needs --engine ray")
    if args.engine == "ray":
        from agent.eval.engines.ray_cluster import import_ray

        import_ray()  # exit 4 naming the extra, before anything else
    tasks = load_suite(args.suite)
    models = args.model or [DEFAULT_MODEL]
    run = RunOptions(model=ModelConfig(model=models[0]), loop=LoopConfig(limits=limits(args)), out=Path(args.out))
    options = SuiteOptions(run=run, attempts=args.attempts, parallel=args.parallel, engine=args.engine,
                           ray_address=args.ray_address, num_cpus=args.num_cpus, models=models,
                           min_success=args.min_success, confirm_mode=args.confirm)
    uses_model = [t for t in tasks if t.uses_model]
    total = sum(len(models) if t.uses_model else 1 for t in tasks) * args.attempts
    print(f"deskpilot eval: {len(tasks)} task{'s' if len(tasks) != 1 else ''}"
          f"{f' ({len(uses_model)} with a model: {len(models)} model(s) each)' if uses_model else ''}, "
          f"{args.attempts} attempt{'s' if args.attempts != 1 else ''} each: {total} attempts on {args.engine}",
          flush=True)
    outcome = run_suite(tasks, options, on_done=print_attempt)
    with ctrl_c_held():  # a second Ctrl-C while the report is written would lose the table and the folder's name
        write_suite_report(outcome.folder)
        print(summary_table(outcome.summary))
        if outcome.interrupted:
            print(f"stopped: {outcome.interrupted}")
        print(f"report: {outcome.folder / 'report.html'}")
        print(f"recording: {outcome.folder}", flush=True)
    return outcome.exit_code


def print_attempt(attempt: Any, progress: dict) -> None:
    """One line per attempt as it ends, with the run's progress."""
    from agent.rollouts.narrative import short

    verdict = "passed" if attempt.passed else attempt.status if attempt.status != "succeeded" else "not passed"
    retried = f", {attempt.tries} tries" if attempt.tries > 1 else ""
    print(f"[{progress['done']}/{progress['total']}] {attempt.task} ({attempt.model or 'scripted'}) "
          f"#{attempt.number}: {verdict}, {attempt.steps} steps, {attempt.duration_s:.1f} s, "
          f"${attempt.usage.cost_usd:.4f}{retried}: {short(attempt.message, 80)}  | done {progress['done']}/"
          f"{progress['total']}, passing {progress['passed']}, cost ${progress['cost_usd']:.4f}", flush=True)


def summary_table(summary: dict) -> str:
    """The results as a text table: one line per task and model, then the totals."""
    rows = [("task", "model", "passed", "rate", "95% interval", "steps", "seconds", "cost")]
    for t in summary["tasks"]:
        interval = "-".join(f"{v:.2f}" for v in t["interval95"] or [])
        rows.append((t["name"], t["model"] or "scripted", f"{t['passed']}/{t['attempts']}",
                     f"{t['success_rate']:.2f}", interval, _fmt(t["median_steps"]), _fmt(t["median_seconds"], ".1f"),
                     f"${t['cost_usd']:.4f}"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    totals = summary["totals"]
    lines.append(f"total: {totals['passed']}/{totals['attempts']} passed ({totals['success_rate']:.2f}, 95% "
                 f"{'-'.join(f'{v:.2f}' for v in totals['interval95'] or [])}), {totals['errors']} errors, "
                 f"${totals['cost_usd']:.4f}, wall {totals['wall_s']:.1f} s "
                 f"({totals['attempts_per_minute']} attempts/min)")
    if summary.get("min_success") is not None:
        failing = [f"{m} {s['success_rate']:.2f}" for m, s in summary["by_model"].items()
                   if (s["success_rate"] or 0) < summary["min_success"]]
        lines.append(f"min success {summary['min_success']:.2f}: " + ("met" if summary["met"] else
                                                                      "NOT met: " + ", ".join(failing)))
    return "\n".join(lines)


def _fmt(value: Any, spec: str = "g") -> str:
    return "-" if value is None else format(value, spec)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"eval": cmd_eval, "check": cmd_check,
                                                             "import": cmd_import}
