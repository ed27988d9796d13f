"""The agent loop: ask the model, validate, check policy, act, settle, record, check for exit.

A run ends only by a RunEnded exception (finished, budget, stopped, stuck) or a model that
cannot be reached; the loop catches them, writes the recording's final status and returns a
RunResult. Tool errors never end a run: they go back to the model as error results. The CLI and
the app attach through callbacks (`on_step`, `confirm`) and the stop and pause signals.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from actions.result import ToolError, ToolResult
from actions.vocabulary import ActionError
from agent.budget import Budget, Limits
from agent.errors import Finished, GaveUp, ModelUnavailable, RunEnded, Stopped, Stuck
from agent.stepping import Stepper, ending, final_frame, finish_run
from agent.tools.computer import POINTER_ACTIONS
from agent.types import AssistantTurn, Reply, RunResult, ToolCall, ToolTurn, Turn, Usage, UserTurn, stop_reason
from vision.settle import SettleConfig

if TYPE_CHECKING:
    from agent.models.base import Model
    from agent.recording.writer import RecordingWriter
    from agent.tools.base import Invocation, ToolBox
    from vision.capture import Frame


@dataclass
class LoopConfig:
    """The loop's settings: budgets, settling, loop detection."""

    limits: Limits = field(default_factory=Limits)
    settle: SettleConfig = field(default_factory=SettleConfig)
    warn_repeats: int = 3  # the same action on the same screen this often: tell the model
    stop_repeats: int = 5  # ... this often: stop the run as stuck
    observe: str = "screenshot"  # "screenshot+tree": each observation also lists the interactive elements


LIST_KEEP, LIST_BATCH = 1, 8  # element lists (--observe screenshot+tree) kept, and dropped at a time

SYSTEM_PROMPT = """You operate a Linux desktop through the computer tool; you also have a bash shell and a \
text editor. Screenshots show the whole screen as a {width}x{height} image; give coordinates in that image. \
After each action you receive a screenshot once the screen has settled, so there is no need to wait or take \
extra screenshots. Secrets are typed with placeholders such as {{{{secret:NAME}}}}; never ask for their values. \
When the task is done, reply with a short summary and no tool call. If it cannot be done, reply with a \
message that starts with "IMPOSSIBLE:" and says why. Today is {date}."""


class Agent:
    """Runs one goal to its end on one screen, recording every step.

    `view` turns a screen frame into the model's image of it (a frame of the model's size).
    """

    def __init__(self, model: Model, tools: ToolBox, recorder: RecordingWriter, *, grab: Callable[[], Frame],
                 view: Callable[[Frame], Frame], release: Callable[[], None], config: LoopConfig | None = None,
                 on_step: Callable[[dict, Usage], None] | None = None,
                 confirm: Callable[[ToolCall, Any], None] | None = None, stop: threading.Event | None = None,
                 pause: threading.Event | None = None, owns_recording: bool = True,
                 element_at: Callable[[tuple[int, int]], dict | None] | None = None,
                 observe: Callable[[], str | None] | None = None):
        self.model, self.tools, self.recorder = model, tools, recorder
        self.observe = observe  # text that goes with each screenshot the model gets (the element list), or None
        self.element_at = element_at  # the accessible element under a pointer step's point, recorded for replay
        self.view, self.release = view, release
        self.config = config or LoopConfig()
        self.confirm = confirm
        self.owns_recording = owns_recording  # False for a task's agent steps: the task finishes it
        self.stop = stop or threading.Event()
        self.budget = Budget(self.config.limits, self.stop, pause)
        self.stepper = Stepper(recorder, grab, self.config.settle, source="model", stop=self.stop,
                               on_step=on_step, usage=lambda: self.budget.usage)
        self.history: list[Turn] = []
        self._seen: deque[str] = deque(maxlen=20)
        self._listed: list[tuple[int, Turn]] = []  # turns holding element lists (history index, the turn without)

    @property
    def usage(self) -> Usage:
        """What the model calls cost so far."""
        return self.budget.usage

    @property
    def steps(self) -> int:
        """Tool calls performed so far."""
        return self.budget.steps

    @property
    def frame(self) -> Frame:
        """The screen as last seen."""
        return self.stepper.look()

    def run(self, goal: str) -> RunResult:
        """Work on `goal` until the model finishes or something ends the run."""
        self.budget.restart_clock()
        first = self.view(self.stepper.look())
        self.image = first.size
        seen = self.observe() if self.observe else None
        self.history.append(UserTurn((goal, first, seen) if seen else (goal, first)))
        if seen:
            self.keep_latest_list(UserTurn((goal, first)))
        try:
            while True:
                reply = self.ask()
                if not reply.tool_calls:
                    raise (GaveUp if reply.text.startswith("IMPOSSIBLE") else Finished)(reply.text or "done")
                self.act(reply)
        except (RunEnded, KeyboardInterrupt) as end:
            return self.end(*ending(end))
        except ModelUnavailable as exc:
            return self.end("error", exc.exit_code, str(exc))

    def ask(self) -> Reply:
        """One model call, abandoned (not awaited) when the run is stopped."""
        self.budget.check()
        system = SYSTEM_PROMPT.format(width=self.image.width, height=self.image.height,
                                      date=time.strftime("%Y-%m-%d"))
        history, tools = list(self.history), self.tools.specs()
        box: dict[str, Any] = {}
        done = threading.Event()

        def call() -> None:
            try:
                box["reply"] = self.model.query(system, history, tools)
            except BaseException as exc:  # handed to the loop's thread
                box["error"] = exc
            done.set()

        threading.Thread(target=call, daemon=True, name="model-call").start()
        while not done.wait(0.05):
            if self.stop.is_set():
                raise Stopped(f"{stop_reason(self.stop)} while waiting for the model")
        if "error" in box:
            raise box["error"]
        reply: Reply = box["reply"]
        self.budget.usage += reply.usage
        self.recorder.add_usage(**reply.usage.as_dict())
        for record in reply.requests or [{"model": reply.model, "stop_reason": reply.stop_reason,
                                          "latency_ms": round(reply.latency_s * 1000),
                                          "usage": reply.usage.as_dict(), "response": reply.raw}]:
            self.recorder.add_model_call(record)
        self.history.append(AssistantTurn(reply))
        return reply

    def act(self, reply: Reply) -> None:
        """Perform every tool call of a reply; each gets exactly one result, also when interrupted."""
        results: dict[str, ToolResult] = {}
        shows_screen: list[str] = []  # calls answered with the screen as it is after the reply
        try:
            for n, call in enumerate(reply.tool_calls):
                results[call.id], invocation = self.step(call, reply if n == 0 else None)
                if invocation is not None and invocation.action is not None:
                    shows_screen.append(call.id)
        finally:
            for call in reply.tool_calls:
                results.setdefault(call.id, ToolResult(error="interrupted: the run was stopped before this call"))
            last = shows_screen[-1] if shows_screen else None
            seen = plain = None
            if last and results[last].ok and results[last].image is None:
                seen = self.observe() if self.observe else None
                plain = replace(results[last], image=self.view(self.stepper.look()))
                note = "\n\n".join(part for part in (plain.system, seen) if part) or None
                results[last] = replace(plain, system=note)
            self.history.append(ToolTurn(tuple((c, results[c.id]) for c in reply.tool_calls)))
            if seen and last and plain:
                self.keep_latest_list(ToolTurn(tuple((c, plain if c.id == last else results[c.id])
                                                     for c in reply.tool_calls)))

    def keep_latest_list(self, without: Turn) -> None:
        """The newest turn has an element list (`without`: the same turn without it). Old lists would ride along
        in every later request (backends prune screenshots, not text), so once LIST_KEEP + LIST_BATCH turns hold
        one, all but the latest LIST_KEEP lose theirs at once: the cached prefix changes once a batch, not every
        step (benchmarks/tokens.py measured the choice)."""
        self._listed.append((len(self.history) - 1, without))
        if len(self._listed) > LIST_KEEP + LIST_BATCH:
            for index, plain in self._listed[:-LIST_KEEP]:
                self.history[index] = plain
            del self._listed[:-LIST_KEEP]

    def step(self, call: ToolCall, reply: Reply | None) -> tuple[ToolResult, Invocation | None]:
        """Validate, check policy, execute, settle and record one tool call."""
        self.budget.check()
        before = self.stepper.look()
        invocation: Invocation | None = None
        element: dict | None = None
        timing: dict[str, Any] = {"capture_ms": None, "exec_ms": None, "settle_ms": None}
        try:
            if call.error:  # the backend could not read what the model wrote
                raise ToolError(call.error)
            invocation = self.tools.validate(call)
            if self.confirm:
                self.confirm(call, invocation.action)
            elif call.checks:
                raise ToolError(f"refused: the model's provider asks a person to confirm this call "
                                f"({'; '.join(call.checks)}) and nobody can answer")
            element = self.element_under(invocation)
            result, timing = self.stepper.perform(lambda: self.tools.run(invocation), settle=invocation.settles)
        except (ActionError, ToolError) as exc:
            result = ToolResult(error=str(exc))
        repeats = self.count_repeats(before, call)
        if repeats >= self.config.warn_repeats:
            result = replace(result, system=f"This same call has now run {repeats} times on an unchanged screen "
                                            "without effect; try a different approach.")
        self.record(call, invocation, before, result, reply, {**timing, "model_ms": _ms(reply)}, element)
        if repeats >= self.config.stop_repeats:
            raise Stuck(f"stuck: the same {call.name} call repeated {repeats} times on an unchanged screen")
        return result, invocation

    def element_under(self, invocation: Invocation) -> dict | None:
        """The accessible element at a pointer action's first point, before it acts (None without a tree)."""
        point = _pointer(invocation.action)
        return self.element_at(point) if point is not None and self.element_at is not None else None

    def record(self, call: ToolCall, invocation: Invocation | None, before: Frame, result: ToolResult,
               reply: Reply | None, timing: dict, element: dict | None = None) -> None:
        """Append the step to the recording and tell the callback."""
        action = invocation.action if invocation else None
        point = getattr(action, "coordinate", None) or getattr(action, "start_coordinate", None)
        if action is None or action.action not in POINTER_ACTIONS:
            point = None
        model_action: Any = invocation.model_action if invocation else None
        model_action = model_action.model_dump(exclude_none=True) if model_action else None
        self.stepper.log(
            before, action=invocation.canonical if invocation else {"tool": call.name, **call.input}, result=result,
            timing={k: timing.get(k) for k in ("capture_ms", "model_ms", "exec_ms", "settle_ms")}, point=point,
            model_action=call.raw if call.raw is not None else model_action,
            usage=reply.usage.as_dict() if reply else None, thought=(reply.text or None) if reply else None,
            tool=call.name, output=(result.output or "")[:2000] or None, **({"element": element} if element else {}))
        self.budget.steps += 1

    def count_repeats(self, before: Frame, call: ToolCall) -> int:
        """How often, among the recent steps, this same call ran on this same screen."""
        key = hashlib.blake2b(before.pixels[::4, ::4].tobytes() + json.dumps(call.input, sort_keys=True).encode(),
                              digest_size=16).hexdigest()
        self._seen.append(key)
        return self._seen.count(key)

    def end(self, status: str, exit_code: int, message: str) -> RunResult:
        """Write the recording's final status (when this run owns it) and say how the run ended."""
        self.release()
        if not self.owns_recording:
            return RunResult(status, int(exit_code), message, self.steps, self.usage)
        return finish_run(self.recorder, status, exit_code, message, steps=self.steps, usage=self.usage,
                          final=final_frame(self.stepper.grab, self.stepper.frame))


def _pointer(action: Any) -> tuple[int, int] | None:
    """A pointer action's first point (a drag's start), in screen pixels; None for other actions."""
    if action is None or action.action not in POINTER_ACTIONS:
        return None
    point = getattr(action, "start_coordinate", None) or getattr(action, "coordinate", None)
    return (int(point[0]), int(point[1])) if point else None


def _ms(reply: Reply | None) -> float | None:
    return None if reply is None else round(reply.latency_s * 1000, 1)
