"""Wires runs together: desktop, executor, tools, recording, loop. Used by the CLI, tasks and the app."""

from __future__ import annotations

import sys
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
    """What a run was asked to do: model, loop settings, display and output folder."""

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


@dataclass
class Callbacks:
    """How the CLI or the app follows and steers a run."""

    on_step: Callable[[dict, Usage], None] | None = None
    confirm: Callable[[ToolCall, Any], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)


class Session:
    """One display with its executor and tools, opened for a run and closed after it."""

    def __init__(self, options: RunOptions, *, desktop: Any = None, secrets: dict[str, str] | None = None,
                 model: Any = None) -> None:
        from actions.executor import open_executor
        from actions.result import ToolError
        from agent.desktop import DesktopError, open_desktop
        from agent.tools.bash import BashTool
        from agent.tools.computer import ComputerTool
        from agent.tools.editor import EditorTool

        self.options, self._model = options, model
        self.usage = Usage()  # what the model steps of a task cost
        self.version = tool_version_for(options.claude.model, options.claude.tool_version)  # BadInput first
        self._stack = ExitStack()
        try:
            if desktop is None:
                try:
                    desktop = self._stack.enter_context(open_desktop(options.display, options.size))
                except ValueError as exc:
                    raise BadInput(str(exc)) from None
                except DesktopError as exc:
                    raise EnvironmentProblem(str(exc)) from None
            self.desktop = desktop
            try:
                self.executor = open_executor(desktop.display)
            except ToolError as exc:
                raise EnvironmentProblem(str(exc)) from None
            self._stack.callback(self.executor.close)
            self.screen = self.executor.screen
            self.mapping = ScreenMap.for_claude(self.screen.size, self.screen.scale)
            self.computer = ComputerTool(self.executor, self.mapping, self.version, secrets)
            bash = BashTool(cwd=options.workdir, env={"DISPLAY": desktop.display})
            self._stack.callback(bash.close)
            self.tools = {"bash": bash, "str_replace_based_edit_tool": EditorTool(root=options.workdir)}
        except BaseException:
            self._stack.close()
            raise

    @property
    def model(self) -> Any:
        """The model, created on first use (scripted tasks never need an API key)."""
        if self._model is None:
            self._model = Claude(self.options.claude)
        return self._model

    def recorder(self, kind: str, secrets: dict[str, str] | None = None, **meta: Any) -> RecordingWriter:
        """A recording of this session's screen in the options' output folder."""
        return RecordingWriter(
            self.options.out, kind, model=self.options.claude.model,
            screen={"width": self.screen.size.width, "height": self.screen.size.height, "scale": self.screen.scale},
            model_image={"width": self.mapping.model.width, "height": self.mapping.model.height},
            secrets=secrets, **meta)

    def agent(self, recorder: RecordingWriter, callbacks: Callbacks, loop: LoopConfig | None = None,
              owns_recording: bool = True) -> Agent:
        """The loop for a goal on this session."""
        return Agent(self.model, self.computer, self.tools, recorder, loop or self.options.loop,
                     on_step=callbacks.on_step, confirm=callbacks.confirm, stop=callbacks.stop,
                     owns_recording=owns_recording)

    def command_env(self) -> dict[str, str]:
        """The environment of task commands: the display, and this Python first on PATH."""
        env = self.desktop.env()
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        return env

    def close(self) -> None:
        """Close the tools and executor, and stop the display if this session opened it."""
        self._stack.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def run_goal(goal: str, options: RunOptions, *, desktop: Any = None, secrets: dict[str, str] | None = None,
             callbacks: Callbacks | None = None, model: Any = None,
             on_step: Callable[[dict, Usage], None] | None = None, stop: threading.Event | None = None
             ) -> RunOutcome:
    """Run `goal` with the model on the chosen display and return how it ended."""
    if not goal.strip():
        raise BadInput("the goal is empty")
    callbacks = callbacks or Callbacks(on_step=on_step, stop=stop or threading.Event())
    with Session(options, desktop=desktop, secrets=secrets, model=model) as session:
        recorder = session.recorder("run", secrets, goal=goal)
        result = session.agent(recorder, callbacks).run(goal)
        return RunOutcome(result, recorder.path)
