"""The commands that act on or look at a display directly: `act`, `screenshot`, `inspect`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.errors import BadInput, EnvironmentProblem, ExitCode, RunEnded


def _actions(texts: Sequence[str], screen: Any = None) -> list[Any]:
    """The `act` command's actions, parsed from JSON; bounds are checked once `screen` is known."""
    from actions.vocabulary import ActionError, parse_action

    actions = []
    for n, text in enumerate(texts, 1):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"action {n}: not valid JSON ({exc.msg} at column {exc.colno}): {text}") from None
        try:
            actions.append(parse_action(data, screen.size, "screen") if screen else parse_action(data))
        except ActionError as exc:
            raise BadInput(f"action {n}: {exc}") from None
    return actions


def cmd_act(args: argparse.Namespace) -> int:
    """Validate every action first, then perform them in order on the display, recording each."""
    from contextlib import closing

    from agent.recording.writer import RecordingWriter
    from agent.session import hold_display, open_display, open_executor
    from agent.stepping import Stepper, ending, final_frame, finish_run
    from agent.types import Usage
    from vision.settle import SettleConfig

    _actions(args.actions)  # shape first, before a display is opened
    with open_display(args.display, args.size, backend=args.backend) as desktop, \
            hold_display(desktop.display, args.wait_display), \
            closing(open_executor(desktop.display, args.backend)) as executor:
        screen = executor.screen
        actions = _actions(args.actions, screen)
        guard = _act_guard(args, desktop.display)  # a bad policy file is bad input (exit 2) before anything acts
        recorder = RecordingWriter(Path(args.out), "act", screen={"width": screen.size.width,
                                                                 "height": screen.size.height, "scale": screen.scale})
        stepper = Stepper(recorder, screen.grab, SettleConfig(), source="script")
        status, code, message = "succeeded", ExitCode.OK, f"{len(actions)} actions performed"
        try:
            for n, action in enumerate(actions, 1):
                before = stepper.look()
                refused = _refused(guard, n, action)
                if refused is not None:  # the policy said no: nothing of this action is done (exit 1)
                    stepper.log(before, action=action.model_dump(exclude_none=True), result=refused, timing={})
                    print(f"action {n} ({action.action}) {refused.error}", file=sys.stderr)
                    status, code, message = "failed", ExitCode.FAILED, f"action {n} {refused.error}"
                    break
                result, timing = stepper.perform(lambda action=action: executor.perform(action))
                stepper.log(before, action=action.model_dump(exclude_none=True), result=result, timing=timing,
                            point=getattr(action, "coordinate", None) or getattr(action, "start_coordinate", None),
                            output=result.output)
                if result.error:
                    print(f"action {n} ({action.action}) failed: {result.error}", file=sys.stderr)
                    status, code, message = "failed", ExitCode.FAILED, f"action {n} failed: {result.error}"
                    break
                detail = result.output or (f"image {result.image.size}" if result.image is not None else "ok")
                print(f"{n} {action.action}: {detail}")
        except KeyboardInterrupt as exc:  # the recording still ends; main() says "interrupted"
            finish_run(recorder, *ending(exc), steps=recorder.steps, usage=Usage(),
                       final=final_frame(screen.grab, stepper.frame))
            raise
        except RunEnded as exc:  # the recording could not be written: stop before the next action
            status, code, message = ending(exc)
            print(f"deskpilot act: {message}", file=sys.stderr)
        finish_run(recorder, status, code, message, steps=recorder.steps, usage=Usage(),
                   final=final_frame(screen.grab, stepper.frame))
        print(f"recording: {recorder.path}")
        return code


def _act_guard(args: argparse.Namespace, display: str) -> Any:
    """`act`'s policy guard: the defaults and the user's policy file, `--confirm` as for `run`."""
    from agent.safety.confirm import default_confirm_mode, make_confirm, terminal_asker
    from agent.safety.guard import run_policy
    from agent.safety.rules import context_provider

    mode = args.confirm or default_confirm_mode()
    return make_confirm(run_policy(mode=args.confirm), mode, context_provider(Path.cwd(), display),
                        terminal_asker() if mode == "ask" else None)


def _refused(guard: Any, n: int, action: Any) -> Any:
    """None when the policy lets action `n` through, else the ToolResult that says which rule refused it."""
    from actions.result import ToolResult
    from agent.safety.guard import Denied
    from agent.types import ToolCall

    try:
        guard(ToolCall(f"act-{n}", "computer", action.model_dump(exclude_none=True)), action)
    except Denied as exc:
        return ToolResult(error=exc.why)
    return None


def cmd_screenshot(args: argparse.Namespace) -> int:
    """Save the screen (or the model's view of it) as PNG."""
    import time

    from agent.models import registry
    from agent.models.base import DEFAULT_MODEL
    from agent.session import open_display
    from vision.capture import CaptureError, Screen
    from vision.encode import encode, encode_for_model

    out = Path(args.out or time.strftime("screenshot-%Y%m%d-%H%M%S.png"))
    if out.suffix.lower() != ".png":
        raise BadInput(f"--out {out}: screenshots are saved as PNG; use a .png file name")
    if not out.parent.is_dir():
        raise BadInput(f"--out {out}: folder {out.parent} does not exist")
    with open_display(args.display, args.size, backend=args.backend) as desktop, \
            Screen(desktop.display or None) as screen:
        try:
            frame = screen.grab()
        except CaptureError as exc:
            raise EnvironmentProblem(str(exc)) from None
        if args.model_size:
            image = encode_for_model(frame.pixels, registry.image_size(DEFAULT_MODEL, frame.size))
        else:
            image = encode(frame.pixels)
    out.write_bytes(image.data)
    print(f"{out} {image.size} ({'model image' if args.model_size else 'screen'}, {len(image.data)} bytes)")
    return ExitCode.OK


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the display's accessibility tree, or the element at `--at`; exit 1 when nothing is there."""
    from agent.session import open_display
    from vision.locate.accessibility import NoTree, Snapshot, format_tree
    from vision.locate.atspi import AtspiTree

    with open_display(args.display) as desktop:
        size = desktop.size()
        if args.at and not (args.at[0] < size.width and args.at[1] < size.height):
            raise BadInput(f"--at {args.at[0]},{args.at[1]} lies outside the {size} screen of {desktop.display}")
        tree = AtspiTree(desktop.env(), problem=getattr(desktop, "accessibility_problem", None))
        try:
            snapshot = Snapshot(tree, (0, 0, size.width, size.height))
            found = [snapshot.at(args.at)] if args.at else snapshot.showing()
        except NoTree as exc:
            raise EnvironmentProblem(str(exc)) from None
        finally:
            tree.close()
    elements = [e for e in found if e is not None]
    if args.at and not elements:
        print(f"no accessible element at {args.at[0]},{args.at[1]} on {desktop.display}", file=sys.stderr)
        return ExitCode.FAILED
    if args.json:
        rows = [json.dumps(e.as_dict(), ensure_ascii=False) for e in elements]
        print(rows[0] if args.at else "[\n" + ",\n".join(rows) + "\n]")
    elif args.at:
        from vision.locate.accessibility import describe_path

        element = elements[0]
        print(f"{element.describe()}  states: {', '.join(element.states) or '-'}")
        print(f"path: {describe_path(element.path)}")
        print(f"target: {{role: {element.role}, name: {json.dumps(element.name, ensure_ascii=False)}}}")
    else:
        print(format_tree(elements))
        print(f"{len(elements)} elements showing on {desktop.display}")
    return ExitCode.OK
