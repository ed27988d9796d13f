"""Wires a model run together: desktop, executor, tools, recording, loop. Used by the CLI and the app."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.claude import Claude, ClaudeConfig, Usage, tool_version_for
from agent.errors import BadInput, EnvironmentProblem
from agent.loop import Agent, LoopConfig, RunResult, ToolCall
from agent.recording import RecordingWriter
from vision.geometry import ScreenMap, Size


@dataclass
class RunOptions:
    """What `deskpilot run GOAL` was asked to do."""

    claude: ClaudeConfig = field(default_factory=ClaudeConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    display: str = "auto"
    size: Size | None = None
    out: Path = Path("recordings")
    workdir: Path = field(default_factory=Path.cwd)


@dataclass
class RunOutcome:
    """A finished run and where its recording is."""

    result: RunResult
    recording: Path


def run_goal(goal: str, options: RunOptions, *, desktop: Any = None, secrets: dict[str, str] | None = None,
             on_step: Callable[[dict, Usage], None] | None = None,
             confirm: Callable[[ToolCall, Any], None] | None = None, stop: threading.Event | None = None,
             kind: str = "run", model: Any = None) -> RunOutcome:
    """Run `goal` with the model on the chosen display and return how it ended."""
    from actions.executor import open_executor
    from actions.result import ToolError
    from agent.desktop import DesktopError, open_desktop
    from agent.tools.bash import BashTool
    from agent.tools.computer import ComputerTool
    from agent.tools.editor import EditorTool

    if not goal.strip():
        raise BadInput("the goal is empty")
    version = tool_version_for(options.claude.model, options.claude.tool_version)  # BadInput before anything runs
    with ExitStack() as stack:
        if desktop is None:
            try:
                desktop = stack.enter_context(open_desktop(options.display, options.size))
            except ValueError as exc:
                raise BadInput(str(exc)) from None
            except DesktopError as exc:
                raise EnvironmentProblem(str(exc)) from None
        try:
            executor = open_executor(desktop.display)
        except ToolError as exc:
            raise EnvironmentProblem(str(exc)) from None
        stack.callback(executor.close)
        screen = executor.screen
        mapping = ScreenMap.for_claude(screen.size, screen.scale)
        model = model or Claude(options.claude)
        computer = ComputerTool(executor, mapping, version, secrets)
        bash = BashTool(cwd=options.workdir, env={"DISPLAY": desktop.display})
        stack.callback(bash.close)
        tools = {"bash": bash, "str_replace_based_edit_tool": EditorTool(root=options.workdir)}
        recorder = RecordingWriter(
            options.out, kind, goal=goal, model=options.claude.model,
            screen={"width": screen.size.width, "height": screen.size.height, "scale": screen.scale},
            model_image={"width": mapping.model.width, "height": mapping.model.height},
            secrets=secrets)
        agent = Agent(model, computer, tools, recorder, options.loop, on_step=on_step, confirm=confirm, stop=stop)
        result = agent.run(goal)
        return RunOutcome(result, recorder.path)
