"""Wires runs together: desktop, executor, model, tools, recording, loop. Used by the CLI, tasks and the app."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import BadInput, EnvironmentProblem
from agent.loop import Agent, LoopConfig
from agent.models.base import ModelConfig
from agent.recording.writer import RecordingWriter
from agent.types import RunResult, StopSignal, ToolCall, Usage
from vision.geometry import ScreenMap, Size


@dataclass
class RunOptions:
    """What a run was asked to do: model, loop settings, display and output folder."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    display: str = "auto"
    size: Size | None = None
    out: Path = Path("recordings")
    workdir: Path = field(default_factory=Path.cwd)
    wait_display: bool = False  # another deskpilot acts on the display: wait for it (else exit 4)
    backend: str | None = None  # the platform backend (x11 | portable); None: $DESKPILOT_BACKEND or the default


@dataclass
class RunOutcome:
    """A finished run and where its recording is."""

    result: RunResult
    recording: Path


@dataclass
class Callbacks:
    """How the CLI or the app follows and steers a run."""

    on_step: Callable[[dict, Usage], None] | None = None
    confirm: Callable[[ToolCall, Any], None] | None = None  # None: the safety policy decides
    stop: threading.Event = field(default_factory=StopSignal)
    pause: threading.Event = field(default_factory=threading.Event)  # set: hold before the next step
    confirm_mode: str | None = None  # "ask" | "allow" | "deny"; None: ask on a terminal, else deny
    asker: Callable[..., str] | None = None  # answers "ask" verdicts (the app's dialog); None: the terminal
    policy_overrides: Any = None  # a task's own rules (they may only tighten unless confirm_mode is "allow")
    policy_source: str = "task policy"  # where those rules come from, for messages


def open_display(spec: str = "auto", size: Size | None = None, window_manager: bool = False,
                 backend: str | None = None) -> Any:
    """The desktop `--display SPEC` names, ready; BadInput for a malformed spec, EnvironmentProblem
    when the display cannot be had."""
    from actions.platform import DesktopError, open_desktop

    try:
        return open_desktop(spec, size, window_manager, backend=backend)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    except DesktopError as exc:
        raise EnvironmentProblem(str(exc)) from None


@contextmanager
def hold_display(display: str, wait: bool = False) -> Iterator[None]:
    """Hold the display's lock (one actor per display, see actions.platform.display_lock) for the block;
    EnvironmentProblem naming the holder's pid when another process acts there and `wait` is False."""
    from actions.platform.base import DesktopError
    from actions.platform.display_lock import hold

    with ExitStack() as stack:
        try:
            stack.enter_context(hold(display, wait=wait,
                                     notice=lambda m: print(f"deskpilot: {m}", file=sys.stderr, flush=True)))
        except DesktopError as exc:
            raise EnvironmentProblem(str(exc)) from None
        yield


def open_executor(display: str, backend: str | None = None) -> Any:
    """The executor acting on `display`; EnvironmentProblem when input cannot be had there."""
    from actions.platform import open_executor as open_platform_executor
    from actions.result import ToolError

    try:
        return open_platform_executor(display, backend=backend)
    except ToolError as exc:
        raise EnvironmentProblem(str(exc)) from None


_unpriced_said: set[str] = set()


def _say_unpriced(model: Any) -> None:
    """A note on stderr, once per model, when a model's cost cannot be counted (no known price, no --price)."""
    for part in (getattr(model, "planner", model), getattr(model, "grounder", None)):
        if part is not None and getattr(part, "price", True) is None and part.name not in _unpriced_said:
            _unpriced_said.add(part.name)
            print(f"deskpilot: no price is known for {part.name!r}; its cost counts as $0 and --max-cost cannot "
                  "stop it (give --price IN,OUT in USD per million tokens)", file=sys.stderr)


class Session:
    """One display with its executor, model and tools, opened for a run and closed after it."""

    def __init__(self, options: RunOptions, *, desktop: Any = None, secrets: dict[str, str] | None = None,
                 model: Any = None, stop: threading.Event | None = None, kill_switch: bool = True,
                 bash_env: dict[str, str] | None = None) -> None:
        from agent.models import registry
        from agent.tools.base import ToolBox
        from agent.tools.bash import BashTool
        from agent.tools.computer import ComputerTool
        from agent.tools.editor import EditorTool

        self.options = options
        self._guard: Callable[[ToolCall, Any], None] | None = None
        self._model = model if model is not None else registry.create(options.model)  # BadInput first
        if model is None:
            _say_unpriced(self._model)
        self._ready = model is not None
        self.usage = Usage()  # what the model steps of a task cost
        self.stop_event = stop or StopSignal()
        self._stack = ExitStack()
        self._tree: Any = None
        self._tree_noted = False
        try:
            if desktop is None:
                desktop = self._stack.enter_context(open_display(options.display, options.size,
                                                                 backend=options.backend))
            self.desktop = desktop
            self._stack.enter_context(hold_display(desktop.display, options.wait_display))
            self.executor = open_executor(desktop.display, options.backend)
            self._stack.callback(self.executor.close)
            self.screen = self.executor.screen
            self.mapping = ScreenMap(self.screen.size, self._model.image_size(self.screen.size), self.screen.scale)
            self.computer = ComputerTool(self.executor, self.mapping, fit=self._model.image_size,
                                         actions=self._model.computer_actions, secrets=secrets)
            bash = BashTool(cwd=options.workdir, env={"DISPLAY": desktop.display, **(bash_env or {})})
            self._stack.callback(bash.close)
            self.tools = ToolBox([self.computer, bash, EditorTool(root=options.workdir)],
                                 secrets=(secrets or {}).values())
            if kill_switch:
                self._start_kill_switch()
            self._closed = threading.Event()
            self._stack.callback(self._closed.set)
            threading.Thread(target=self._cancel_on_stop, daemon=True, name="stop-watch").start()
        except BaseException:
            self._stack.close()
            raise

    def _start_kill_switch(self) -> None:
        from agent.safety.killswitch import KillSwitch, current_display

        # the user's keyboard is on $DISPLAY when there is one; otherwise listen on the session's display
        hotkey_display = current_display() or self.desktop.display
        failsafe = self.desktop.display if self.desktop.kind == "host" else None
        try:
            switch = KillSwitch(self.stop, hotkey_display, failsafe, backend=self.options.backend).start()
        except Exception as exc:  # e.g. no RECORD extension: the run goes on, stoppable with Ctrl-C
            print(f"deskpilot: the kill switch is unavailable ({exc}); use Ctrl-C to stop", file=sys.stderr)
            return
        self._stack.callback(switch.stop)

    def _cancel_on_stop(self) -> None:
        """Whoever sets the stop event (app, kill switch, tests), the running action is cancelled."""
        while not self._closed.is_set():
            if self.stop_event.wait(0.05):
                self.executor.cancel()
                return

    def stop(self, reason: str = "stopped by the user") -> None:
        """Stop the run now: the loop ends before its next step, the running action is cancelled."""
        if isinstance(self.stop_event, StopSignal):
            self.stop_event.stop(reason)
        else:
            self.stop_event.set()
        self.executor.cancel()

    @property
    def tree(self) -> Any:
        """The accessibility tree of this session's display (`vision.locate.atspi.AtspiTree`), opened on first use."""
        if self._tree is None:
            from vision.locate.atspi import AtspiTree

            self._tree = AtspiTree(self.desktop.env(), problem=getattr(self.desktop, "accessibility_problem", None))
            self._stack.callback(self._tree.close)
        return self._tree

    def element_at(self, point: tuple[int, int]) -> dict | None:
        """The accessible element under `point` (role, name, box, path) as recorded for replay; None when there
        is none or no tree (a display without one is asked once)."""
        from vision.locate.accessibility import element_at

        size = self.screen.size
        element = element_at(self.tree, point, (0, 0, size.width, size.height))
        return element.as_dict() if element is not None else None

    def observe_tree(self) -> str | None:
        """For `--observe screenshot+tree`: the interactive elements showing, centres in the model's pixels; where
        there is no tree, a note saying so the first time, then nothing."""
        from vision.locate.accessibility import NoTree, Snapshot, observation
        from vision.locate.roles import INTERACTIVE

        size = self.screen.size
        try:
            elements = Snapshot(self.tree, (0, 0, size.width, size.height)).showing(INTERACTIVE)
        except NoTree as exc:
            if self._tree_noted:
                return None
            self._tree_noted = True
            return f"(No list of interactive elements: {exc}.)"
        return observation(elements, self.mapping.to_model)

    @property
    def model(self) -> Any:
        """The model, its credentials checked on first use (scripted tasks never need an API key)."""
        if not self._ready:
            self._model.preflight()
            self._ready = True
        return self._model

    def recorder(self, kind: str, secrets: dict[str, str] | None = None, **meta: Any) -> RecordingWriter:
        """A recording of this session's screen in the options' output folder."""
        from actions.platform import backend_name

        model = meta.pop("model", self.options.model.model)
        if self.options.model.grounder:  # the model that pointed is part of what ran
            meta["extra_meta"] = {**(meta.get("extra_meta") or {}), "grounder": self.options.model.grounder}
        meta["extra_meta"] = {**(meta.get("extra_meta") or {}), "backend": backend_name(self.options.backend)}
        return RecordingWriter(
            self.options.out, kind, model=model,
            screen={"width": self.screen.size.width, "height": self.screen.size.height, "scale": self.screen.scale},
            model_image={"width": self.mapping.model.width, "height": self.mapping.model.height},
            secrets=secrets, **meta)

    def agent(self, recorder: RecordingWriter, callbacks: Callbacks, loop: LoopConfig | None = None,
              owns_recording: bool = True) -> Agent:
        """The loop for a goal on this session."""
        return Agent(self.model, self.tools, recorder, grab=self.screen.grab, view=self.computer.model_view,
                     release=self.executor.release, config=loop or self.options.loop, on_step=callbacks.on_step,
                     confirm=self.policy_confirm(callbacks), stop=callbacks.stop,
                     pause=callbacks.pause, owns_recording=owns_recording, element_at=self.element_at,
                     observe=self.observe_tree if (loop or self.options.loop).observe == "screenshot+tree" else None)

    def policy_confirm(self, callbacks: Callbacks) -> Callable[[ToolCall, Any], None]:
        """The run's one policy guard (`callbacks.confirm` when given), shared by its model and scripted steps.

        Built on first use; a task policy that would loosen the rules without an explicit `--confirm
        allow` raises PolicyError (exit 2) here, before anything acts.
        """
        if callbacks.confirm is not None:
            return callbacks.confirm
        if self._guard is None:
            from agent.safety.confirm import default_confirm_mode, make_confirm, terminal_asker
            from agent.safety.guard import run_policy
            from agent.safety.rules import context_provider

            policy = run_policy(callbacks.policy_overrides, callbacks.confirm_mode, callbacks.policy_source)
            mode = callbacks.confirm_mode or default_confirm_mode()
            asker = callbacks.asker or (terminal_asker() if mode == "ask" else None)
            self._guard = make_confirm(policy, mode, context_provider(self.options.workdir, self.desktop.display),
                                       asker)
        return self._guard

    def command_env(self) -> dict[str, str]:
        """The environment of task commands: the display, this Python first on PATH, no secret variables."""
        from agent.vault import scrub

        env = scrub(self.desktop.env())
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
             on_step: Callable[[dict, Usage], None] | None = None, stop: threading.Event | None = None,
             kill_switch: bool = True, bash_env: dict[str, str] | None = None, meta: dict | None = None
             ) -> RunOutcome:
    """Run `goal` with the model on the chosen display and return how it ended.

    `kill_switch=False` leaves the hotkey to the caller (rollouts listen once for all attempts);
    `bash_env` adds variables to the model's shell; `meta` adds keys to the recording's meta.json.
    """
    if not goal.strip():
        raise BadInput("the goal is empty")
    if model is None:  # credentials before a display opens or a recording exists (exit 4, nothing left)
        from agent.models import registry

        model = registry.create(options.model)
        model.preflight()
    callbacks = callbacks or Callbacks(on_step=on_step, stop=stop or StopSignal())
    with Session(options, desktop=desktop, secrets=secrets, model=model, stop=callbacks.stop,
                 kill_switch=kill_switch, bash_env=bash_env) as session:
        recorder = session.recorder("run", secrets, goal=goal, extra_meta=meta)
        result = session.agent(recorder, callbacks).run(goal)
        return RunOutcome(result, recorder.path)
