"""The `deskpilot` command line: parses arguments, runs a command, maps errors to exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from agent.errors import BadInput, DeskpilotError, EnvironmentProblem, ExitCode, RunEnded
from agent.ui import desktop_cli
from vision.locate.ocr_engine import preload as preload_ocr


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command; options shared by several commands come from `agent.ui.options`."""
    from agent.models.base import DEFAULT_MODEL
    from agent.ui import options as opt

    display, display_only = opt.display_options(), opt.display_options(size=False)
    backend = opt.backend_option()
    run_out = opt.out_option()
    parser = argparse.ArgumentParser(prog="deskpilot", description="A computer-use desktop agent.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = opt.model_options(repeat=True, help=f"FAMILY/NAME (default {DEFAULT_MODEL}; families: anthropic, "
                                                 "ui-tars, qwen2.5-vl, qwen3-vl, openai, chat); repeat with "
                                                 "--rollouts to cycle models")
    run = sub.add_parser("run", help="run a goal with the model (or a task file)",
                         parents=[models, opt.model_server_options(), display, backend, run_out, opt.budget_options(),
                                  opt.confirm_option()])
    run.add_argument("goal", metavar="GOAL|TASK.yaml", help="what the agent should do, or a task file")
    run.add_argument("--tool-version", default=None,
                     help="computer tool version for a model the table does not know (20251124, 20250124, ...)")
    run.add_argument("--thinking", type=opt.positive_int, default=None, metavar="TOKENS",
                     help="extended thinking budget")
    run.add_argument("--rollouts", type=opt.positive_int, metavar="N",
                     help="N independent attempts in sandboxes; the best is kept")
    run.add_argument("--parallel", type=opt.positive_int, metavar="K",
                     help="with --rollouts: attempts at once (default min(N, 4))")
    run.add_argument("--apply", action="store_true", help="with --rollouts: replay the chosen attempt onto --display")
    run.add_argument("--observe", choices=("screenshot", "screenshot+tree"), default="screenshot",
                     help="what the model gets after each action: the screenshot (default), or the screenshot and a "
                          "list of the interactive elements showing (role, name, centre), from the accessibility tree")
    run.add_argument("--engine", choices=("local", "ray"), default=None,
                     help="with --rollouts: attempts in this process (local, default) or as Ray tasks")
    run.add_argument("--ray-address", metavar="ADDR", help="with --engine ray: a running cluster (default: a local "
                                                           "Ray for the run)")

    record = sub.add_parser("record", help="record a person's work on a display until the stop hotkey or Ctrl-C",
                            parents=[display, backend, opt.out_option("the recording")])
    record.add_argument("--codegen", metavar="TASK.yaml", help="also write the recording as an editable task file")

    codegen = sub.add_parser("codegen", help="turn a recording into an editable task file (targets by role and name, "
                                             "text, a label or an image)")
    codegen.add_argument("recording", help="a recording folder")
    codegen.add_argument("--out", metavar="TASK.yaml", help="the task file to write (default: task.yaml in the "
                                                           "recording's folder); images go beside it")

    replay = sub.add_parser("replay", help="replay a recording, finding every target again on the live screen",
                            parents=[display_only, backend, opt.out_option("the replay's recording"),
                                     opt.confirm_option()])
    replay.add_argument("recording", help="a recording folder")
    replay.add_argument("--from", dest="start", type=int, default=None, metavar="I",
                        help="first step to replay (its index i, default 0)")
    replay.add_argument("--to", dest="end", type=int, default=None, metavar="J",
                        help="last step to replay, inclusive (default the last)")
    replay.add_argument("--speed", type=opt.positive_float, default=1.0,
                        help="divide explicit waits by this (default 1); replay never sleeps recorded gaps")
    replay.add_argument("--no-verify", action="store_true",
                        help="replay the recorded coordinates as they are, without looking for the targets")

    report = sub.add_parser("report", help="write report.html (a self-contained page) for a recording")
    report.add_argument("recording", help="a recording folder")
    report.add_argument("--embed", action="store_true", help="inline the screenshots (one portable file)")

    app = sub.add_parser("app", help="the desktop app (Tk): goal or task file, live view, Start/Pause/Stop",
                         add_help=False)
    app.add_argument("rest", nargs=argparse.REMAINDER, help="[GOAL|TASK.yaml] [--model M] [--display D] ...")

    sub.add_parser("schema", help="print the task file's JSON Schema")
    sub.add_parser("demo", help="run the demo task on a virtual display (no API key needed)", parents=[run_out])
    doctor = sub.add_parser("doctor", help="check the environment and say how to fix problems",
                            parents=[display_only, backend])
    doctor.add_argument("--model", type=opt.model_spec, default=None, help="also check this model can be reached")
    doctor.add_argument("--base-url", type=opt.server_url, default=None, metavar="URL",
                        help="also check this OpenAI-compatible server answers (and serves --model)")

    act = sub.add_parser("act", help="perform canonical actions (JSON, screen pixels) in order",
                         parents=[display, backend, run_out, opt.confirm_option()])
    act.add_argument("actions", nargs="+", metavar="ACTION",
                     help='e.g. \'{"action":"left_click","coordinate":[200,150]}\'')

    inspect = sub.add_parser("inspect", help="print the accessibility tree (role, name, box, states), or the element "
                             "at a point, to write {role, name} targets with", parents=[display_only])
    inspect.add_argument("--at", type=opt.screen_point, metavar="X,Y", help="only the element a click there lands on")
    inspect.add_argument("--json", action="store_true", help="print JSON (a list of elements, or one element)")

    shot = sub.add_parser("screenshot", help="save the screen, or the image exactly as the model receives it",
                          parents=[display, backend])
    shot.add_argument("--model-size", action="store_true", help="resize to the model's image size")
    shot.add_argument("--out", help="output PNG file (default screenshot-<time>.png)")

    mcp = sub.add_parser("mcp", help="serve the desktop to MCP clients (Claude Desktop, Claude Code, ...)",
                         parents=[display, opt.out_option("the session's recording"), opt.confirm_option()])
    mcp.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                     help="stdio (default), or streamable HTTP on 127.0.0.1")
    mcp.add_argument("--port", type=opt.port_number, default=8765, help="with --transport http (default 8765; 0: any)")

    from agent.ui import eval_cli

    eval_cli.add_parsers(sub)
    return parser


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print the environment checks; exit 4 when something required is missing."""
    from agent.ui.doctor import format_table, healthy, run_checks

    checks = run_checks(args.display, args.backend, model=args.model, base_url=args.base_url)
    print(format_table(checks))
    if healthy(checks):
        print("deskpilot is ready.")
        return ExitCode.OK
    print("deskpilot is not ready: fix the FAIL lines above.")
    return ExitCode.ENVIRONMENT


def cmd_run(args: argparse.Namespace) -> int:
    """Run a goal with the model; live progress; `recording: PATH` as the last line."""
    from agent.loop import LoopConfig
    from agent.session import Callbacks, RunOptions, run_goal
    from agent.ui.options import limits, model_config

    models = args.model or []
    if args.rollouts is None and (args.parallel or args.apply or len(models) > 1 or args.engine):
        raise BadInput("--parallel, --apply, --engine and several --model need --rollouts N")
    if args.ray_address and args.engine != "ray":
        raise BadInput("--ray-address needs --engine ray")
    options = RunOptions(
        model=model_config(args, models[0] if models else None, tool_version=args.tool_version,
                           thinking_budget=args.thinking),
        loop=LoopConfig(limits=limits(args), observe=args.observe), display=args.display, size=args.size,
        out=Path(args.out), wait_display=args.wait_display, backend=args.backend)
    callbacks = Callbacks(on_step=print_step, confirm_mode=args.confirm)
    if args.rollouts is not None:
        from agent.rollouts.run import run_rollouts

        work = _load_task(args.goal) if _is_task_file(args.goal) else args.goal
        if args.engine == "ray":
            from agent.eval.engines.ray_cluster import import_ray

            import_ray()  # exit 4 naming the extra, before anything else
        rollouts = run_rollouts(work, options, n=args.rollouts, parallel=args.parallel or min(args.rollouts, 4),
                                models=models or None, apply=args.apply, callbacks=callbacks,
                                engine=args.engine or "local", ray_address=args.ray_address)
        print(rollouts.summary())
        print(f"recording: {rollouts.recording}")
        return rollouts.result.exit_code
    if _is_task_file(args.goal):
        outcome = _run_task_file(args.goal, options, callbacks)
    else:
        outcome = run_goal(args.goal, options, callbacks=callbacks)
    print(f"{outcome.result.status}: {outcome.result.message}")
    print(f"steps {outcome.result.steps}, tokens {outcome.result.usage.total_tokens}, "
          f"cost ${outcome.result.usage.cost_usd:.4f}")
    print(f"recording: {outcome.recording}")
    return outcome.result.exit_code


def _is_task_file(goal: str) -> bool:
    """A task file: a name ending .yaml/.yml (any case), or any path that exists (it must then parse as
    a task; a goal is never a file's name)."""
    if goal.lower().endswith((".yaml", ".yml")):
        return True
    try:
        return Path(goal).exists()
    except (OSError, ValueError):  # a goal too long or odd to be a path
        return False


def _load_task(path: str) -> object:
    from agent.tasks.loader import TaskFileError, load_task

    try:
        return load_task(path)
    except TaskFileError as exc:
        if not path.lower().endswith((".yaml", ".yml")):  # an existing file given as the goal
            raise BadInput(f"{path} is a file, so it must be a task file, and it is not one (to give a goal "
                           f"that happens to be a file's name, reword it):\n{exc}") from None
        raise BadInput(f"invalid task file:\n{exc}") from None


def _run_task_file(path: str, options: object, callbacks: object = None) -> object:
    from agent.session import Callbacks
    from agent.tasks.runner import run_task

    task = _load_task(path)  # run_task starts loading the OCR engine; a refused file never loads it
    outcome = run_task(task, options, callbacks=callbacks or Callbacks(on_step=print_step))
    from agent.recording.writer import Recording

    for check in Recording.load(outcome.recording).meta.get("checks") or []:
        print(f"check {'ok  ' if check['ok'] else 'FAIL'} {check['check']}: {check['detail']}")
    return outcome


def cmd_record(args: argparse.Namespace) -> int:
    """Record a demonstration (and with --codegen write it as a task file); `recording: PATH` as the last line."""
    from agent.replay.codegen import check_out
    from agent.replay.recorder import record
    from agent.session import RunOptions

    task = check_out(Path(args.codegen)) if args.codegen else None  # before anything is recorded
    outcome = record(RunOptions(display=args.display, size=args.size, out=Path(args.out), backend=args.backend),
                     on_step=print_step)
    print(f"{outcome.result.status}: {outcome.result.message}")
    if task is not None and outcome.result.exit_code == 0:
        _codegen(outcome.recording, task)
    print(f"recording: {outcome.recording}")
    return outcome.result.exit_code


def cmd_codegen(args: argparse.Namespace) -> int:
    """Write a recording as an editable task file; `task: PATH` as the last line."""
    _codegen(Path(args.recording), Path(args.out) if args.out else None)
    return ExitCode.OK


def _codegen(recording: Path, out: Path | None) -> None:
    from agent.replay.codegen import generate

    generated = generate(recording, out)
    for note in generated.notes:
        print(f"left out: {note}", file=sys.stderr)
    print(generated.summary())
    print(f"task: {generated.path}")


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay a recording; live progress; `recording: PATH` as the last line."""
    from agent.replay.replayer import print_step as print_replay_step
    from agent.replay.replayer import replay
    from agent.session import RunOptions

    preload_ocr()
    options = RunOptions(display=args.display, out=Path(args.out), wait_display=args.wait_display,
                         backend=args.backend)
    outcome = replay(Path(args.recording), options, start=args.start, end=args.end, speed=args.speed,
                     verify=not args.no_verify, on_step=print_replay_step, confirm_mode=args.confirm)
    print(f"{outcome.result.status}: {outcome.result.message}")
    print(f"recording: {outcome.recording}")
    return outcome.result.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    """Write a recording's report.html and print its path."""
    from agent.recording.writer import RecordingError
    from agent.ui.report import write_report

    if (Path(args.recording) / "suite.json").is_file():  # an evaluation run: its suite report
        from agent.ui.suite_report import write_suite_report

        print(f"report: {write_suite_report(args.recording)}")
        return ExitCode.OK
    try:
        path = write_report(args.recording, embed=args.embed)
    except RecordingError as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"cannot write the report into {args.recording}: {exc}") from None
    print(f"report: {path}")
    return ExitCode.OK


def cmd_app(args: argparse.Namespace) -> int:
    """Open the desktop app."""
    from agent.ui.app import main as app_main

    return app_main(args.rest)


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the task file's JSON Schema."""
    from agent.tasks.loader import task_json_schema

    print(json.dumps(task_json_schema(), indent=2))
    return ExitCode.OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo task on a fresh virtual display, with no model and no API key."""
    from agent.session import RunOptions

    demo = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"
    if not demo.is_file():
        raise EnvironmentProblem(f"the demo task {demo} is missing; reinstall deskpilot from its repository")
    print(f"deskpilot demo: running {demo} on a private virtual display")
    outcome = _run_task_file(str(demo), RunOptions(display="virtual", out=Path(args.out)))
    print(f"{outcome.result.status}: {outcome.result.message}")
    print(f"recording: {outcome.recording}")
    return outcome.result.exit_code


def cmd_mcp(args: argparse.Namespace) -> int:
    """Serve the desktop over MCP until the client disconnects; `recording: PATH` last, on stderr."""
    from agent.mcp.desk import DeskConfig
    from agent.mcp.server import serve
    from agent.ui.report import write_report

    config = DeskConfig(display=args.display, size=args.size, out=Path(args.out), confirm=args.confirm or "ask",
                        transport=args.transport)
    code, recording = serve(config, port=args.port, reporter=write_report)
    print(f"recording: {recording}", file=sys.stderr)
    return code


def print_step(step: dict, usage: object) -> None:
    """One line of live progress per step."""
    action = step["action"]
    what = action.get("action") or action.get("tool")
    where = action.get("coordinate") or action.get("text") or action.get("command") or ""
    where = where if step.get("target") is None else f"{where} <- {step['target']['method']}"
    where = step.get("describe") or where
    what = f"a{step['attempt']} {what}" if "attempt" in step else what
    thought = (step.get("thought") or "").replace("\n", " ")
    thought = f"  \"{thought[:60]}{'...' if len(thought) > 60 else ''}\"" if thought else ""
    status = "" if step["ok"] else f"  ERROR {step['error'][:80]}"
    spent = f"  tokens {usage.total_tokens}  ${usage.cost_usd:.4f}" if usage.total_tokens else ""
    print(f"[{step['i']}] {what} {where}{thought}{status}{spent}", flush=True)


ACTING = frozenset({"run", "act", "replay", "record", "demo", "mcp", "eval"})  # commands that write into --out
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "schema": cmd_schema,
    "app": cmd_app,
    "report": cmd_report,
    "record": cmd_record,
    "replay": cmd_replay,
    "demo": cmd_demo,
    "doctor": cmd_doctor,
    "act": desktop_cli.cmd_act,
    "screenshot": desktop_cli.cmd_screenshot,
    "inspect": desktop_cli.cmd_inspect,
    "codegen": cmd_codegen,
    "mcp": cmd_mcp,
}


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    from agent.ui import eval_cli

    return COMMANDS.get(name) or eval_cli.COMMANDS[name]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `deskpilot` console script (`argv` None: the process's own arguments, and its
    secret variables are sealed first, see agent.vault)."""
    if argv is None:
        import atexit

        from agent.vault import seal

        seal()
        _stop_on_termination()
        atexit.register(_ignore_signals_from_now_on)  # registered first, so it runs after every other
    parser = build_parser()
    given = list(sys.argv[1:] if argv is None else argv)
    try:  # the app parses its own options: argparse's REMAINDER would refuse a leading --option
        args = argparse.Namespace(command="app", rest=given[1:]) if given[:1] == ["app"] else parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    code = _run_command(args)
    if argv is None:
        _exit_on_late_signals(code)
    return code


def _run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit code, with errors and Ctrl-C mapped to theirs."""
    try:
        if args.command in ACTING and getattr(args, "out", None):
            from agent.recording.files import check_out_dir

            check_out_dir(Path(args.out))  # before anything runs (exit 4)
        return int(_command(args.command)(args))
    except RunEnded as exc:  # e.g. RecordingFailed outside a run's loop
        print(f"deskpilot {args.command}: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except DeskpilotError as exc:
        print(f"deskpilot {args.command}: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt as exc:
        print(f"deskpilot {args.command}: {exc or 'interrupted'}", file=sys.stderr)
        return int(ExitCode.STOPPED)


_ENDING_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")  # the signals that end a command (see _stop_on_termination)


def _exit_on_late_signals(code: int) -> None:
    """Once the command has ended (everything written), Ctrl-C, SIGTERM or SIGHUP during the interpreter's
    own shutdown (a library's atexit clean-up) exits at once with the command's code, not a traceback."""
    import contextlib
    import os
    import signal

    def handler(_number: int, _frame: object) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)

    for name in _ENDING_SIGNALS:
        if signal.getsignal(getattr(signal, name)) != signal.SIG_IGN:
            signal.signal(getattr(signal, name), handler)


def _ignore_signals_from_now_on() -> None:
    """The last atexit step: Ctrl-C, SIGTERM and SIGHUP are ignored for the rest of the interpreter's
    teardown, where Python has put back their default action (a signal then would kill the process,
    exit -2, although the command ended and wrote everything; a Ray driver's threads take a moment)."""
    import signal

    for name in _ENDING_SIGNALS:
        signal.signal(getattr(signal, name), signal.SIG_IGN)


def _stop_on_termination() -> None:
    """SIGTERM and SIGHUP end a command as Ctrl-C does (status stopped, exit 3, the recording finished).

    The first one raises `Terminated` in the main thread; later ones are ignored, so the ending
    (killing children, writing meta.json) is not cut short. SIGKILL cannot be handled.
    """
    import signal

    from agent.errors import Terminated

    def handler(number: int, _frame: object) -> None:
        for name in ("SIGTERM", "SIGHUP"):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        raise Terminated(f"terminated by {signal.Signals(number).name}")

    for name in ("SIGTERM", "SIGHUP"):
        if signal.getsignal(getattr(signal, name)) != signal.SIG_IGN:  # nohup's SIGHUP stays ignored
            signal.signal(getattr(signal, name), handler)


if __name__ == "__main__":
    sys.exit(main())
