"""The agent loop: ask the model, validate, check policy, act, settle, record, check for exit.

A run ends only by a RunEnded exception (finished, budget, stopped, stuck) or a model that
cannot be reached; the loop catches them, writes the recording's final status and returns a
RunResult. Tool errors never end a run: they go back to the model as error results. The CLI and
the app attach through callbacks (`on_step`, `confirm`) and the `stop` event.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from actions.result import ToolError, ToolResult
from actions.vocabulary import ActionError
from agent.claude import ModelUnavailable, Reply, ToolCall, Usage
from agent.context import ContextConfig, Conversation, image_block, system_blocks, tool_result_block
from agent.errors import ExitCode
from agent.recording import RecordingWriter
from agent.tools.computer import POINTER_ACTIONS, ComputerTool
from vision.settle import SettleConfig, wait_until_settled

READ_ONLY = frozenset({"screenshot", "cursor_position", "zoom"})


@dataclass
class Limits:
    """Budgets of one run (YAML key `limits`); None means unlimited."""

    max_steps: int | None = 50
    max_seconds: float | None = 600.0
    max_cost_usd: float | None = 5.0
    max_tokens: int | None = None


@dataclass
class LoopConfig:
    """The loop's settings: budgets, settling, context policy, loop detection."""

    limits: Limits = field(default_factory=Limits)
    settle: SettleConfig = field(default_factory=SettleConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    warn_repeats: int = 3  # the same action on the same screen this often: tell the model
    stop_repeats: int = 5  # ... this often: stop the run as stuck


class RunEnded(Exception):
    """Ends a run; only the loop catches it. Carries the final message."""

    status, exit_code = "failed", ExitCode.FAILED


class Finished(RunEnded):
    """The model replied without a tool call."""

    status, exit_code = "succeeded", ExitCode.OK


class GaveUp(RunEnded):
    """The model said the task cannot be done."""


class BudgetExceeded(RunEnded):
    """A step, time, cost or token budget ran out."""

    status, exit_code = "stopped", ExitCode.STOPPED


class Stopped(RunEnded):
    """The user interrupted the run (Ctrl-C, stop button, kill switch)."""

    status, exit_code = "stopped", ExitCode.STOPPED


class Stuck(RunEnded):
    """The same action kept repeating on an unchanged screen."""


class Denied(ToolError):
    """The policy refused an action; the model is told why."""


@dataclass(frozen=True)
class RunResult:
    """How a run ended."""

    status: str
    exit_code: int
    message: str
    steps: int
    usage: Usage


SYSTEM_PROMPT = """You operate a Linux desktop through the computer tool; you also have a bash shell and a \
text editor. Screenshots show the whole screen as a {width}x{height} image; give coordinates in that image. \
After each action you receive a screenshot once the screen has settled, so there is no need to wait or take \
extra screenshots. Secrets are typed with placeholders such as {{{{secret:NAME}}}}; never ask for their values. \
When the task is done, reply with a short summary and no tool call. If it cannot be done, reply with a \
message that starts with "IMPOSSIBLE:" and says why. Today is {date}."""


class Agent:
    """Runs one goal to its end on one display, recording every step."""

    def __init__(self, model: Any, computer: ComputerTool, tools: dict[str, Any], recorder: RecordingWriter,
                 config: LoopConfig | None = None, *, on_step: Callable[[dict, Usage], None] | None = None,
                 confirm: Callable[[ToolCall, Any], None] | None = None, stop: threading.Event | None = None,
                 pause: threading.Event | None = None, owns_recording: bool = True):
        self.model, self.computer, self.recorder = model, computer, recorder
        self.tools = {"computer": computer, **tools}
        self.config = config or LoopConfig()
        self.on_step, self.confirm = on_step, confirm
        self.owns_recording = owns_recording  # False for a task's agent steps: the task finishes it
        self.stop = stop or threading.Event()
        self.pause = pause or threading.Event()
        self.screen = computer.executor.screen
        self.conversation = Conversation(self.config.context)
        self.usage, self.steps, self.started = Usage(), 0, time.monotonic()
        self._seen: deque[str] = deque(maxlen=20)
        self._saved: tuple[int, str] | None = None

    def run(self, goal: str) -> RunResult:
        """Work on `goal` until the model finishes or something ends the run."""
        self.started = time.monotonic()
        self.frame = self.screen.grab()
        self.conversation.add_user([{"type": "text", "text": goal},
                                    image_block(self.computer.model_view(self.frame).pixels)])
        try:
            while True:
                reply = self.ask()
                if not reply.tool_calls:
                    raise (GaveUp if reply.text.startswith("IMPOSSIBLE") else Finished)(reply.text or "done")
                self.act(reply)
        except RunEnded as end:
            return self.end(end.status, end.exit_code, str(end))
        except ModelUnavailable as exc:
            return self.end("error", exc.exit_code, str(exc))
        except KeyboardInterrupt:
            return self.end("stopped", ExitCode.STOPPED, "interrupted by the user")

    def ask(self) -> Reply:
        """One model call, abandoned (not awaited) when the run is stopped."""
        self.check_budgets()
        image = self.computer.mapping.model
        system = system_blocks(SYSTEM_PROMPT.format(width=image.width, height=image.height,
                                                    date=time.strftime("%Y-%m-%d")), self.config.context.cache)
        tools = [tool.to_params() for tool in self.tools.values()]
        box: dict[str, Any] = {}
        done = threading.Event()

        def call() -> None:
            try:
                box["reply"] = self.model.query(system, self.conversation.request(), tools)
            except BaseException as exc:  # handed to the loop's thread
                box["error"] = exc
            done.set()

        threading.Thread(target=call, daemon=True, name="model-call").start()
        while not done.wait(0.05):
            if self.stop.is_set():
                raise Stopped(f"{getattr(self.stop, 'reason', 'stopped by the user')} while waiting for the model")
        if "error" in box:
            raise box["error"]
        reply: Reply = box["reply"]
        self.usage += reply.usage
        self.recorder.add_usage(**reply.usage.as_dict())
        self.recorder.add_model_call({"model": reply.model, "stop_reason": reply.stop_reason,
                                      "latency_ms": round(reply.latency_s * 1000), "usage": reply.usage.as_dict(),
                                      "response": reply.content})
        self.conversation.add_assistant(reply.content)
        return reply

    def act(self, reply: Reply) -> None:
        """Perform every tool call of a reply; each gets exactly one result, also when interrupted."""
        results: dict[str, ToolResult] = {}
        try:
            for n, call in enumerate(reply.tool_calls):
                results[call.id] = self.step(call, reply if n == 0 else None)
        finally:
            for call in reply.tool_calls:
                results.setdefault(call.id, ToolResult(error="interrupted: the run was stopped before this call"))
            computer_calls = [c.id for c in reply.tool_calls if c.name == "computer"]
            if computer_calls and results[computer_calls[-1]].ok and results[computer_calls[-1]].image is None:
                # the screen as it is now, once per reply, with the last computer action's result
                results[computer_calls[-1]] = replace(results[computer_calls[-1]],
                                                      image=self.computer.model_view(self.frame))
            self.conversation.add_user([tool_result_block(c.id, results[c.id]) for c in reply.tool_calls])

    def step(self, call: ToolCall, reply: Reply | None) -> ToolResult:
        """Validate, check policy, execute, settle and record one tool call."""
        self.check_budgets()
        before, started = self.frame, time.monotonic()
        action = model_action = None
        exec_ms = settle_ms = capture_ms = None
        try:
            if call.name not in self.tools:
                raise ToolError(f"unknown tool {call.name!r}; the tools are {', '.join(self.tools)}")
            if call.name == "computer":
                action, model_action = self.computer.parse(call.input)
            if self.confirm:
                self.confirm(call, action)
            result = self.computer.run(action) if action else self.tools[call.name](**call.input)
            exec_ms = (time.monotonic() - started) * 1000
            if result.ok and not self.stop.is_set() and (action is None or action.action not in READ_ONLY):
                settled = wait_until_settled(self.screen.grab, self.config.settle, before)
                self.frame, settle_ms, capture_ms = settled.frame, settled.elapsed_s * 1000, settled.capture_s * 1000
        except (ActionError, ToolError) as exc:
            result = ToolResult(error=str(exc))
        repeats = self.count_repeats(before, call)
        if repeats >= self.config.warn_repeats:
            result = replace(result, system=f"This same call has now run {repeats} times on an unchanged screen "
                                            "without effect; try a different approach.")
        self.record(call, action, model_action, before, result, reply,
                    {"capture_ms": _ms(capture_ms), "model_ms": _ms(reply and reply.latency_s * 1000),
                     "exec_ms": _ms(exec_ms), "settle_ms": _ms(settle_ms)})
        if repeats >= self.config.stop_repeats:
            raise Stuck(f"stuck: the same {call.name} call repeated {repeats} times on an unchanged screen")
        return result

    def record(self, call: ToolCall, action: Any, model_action: Any, before: Any, result: ToolResult,
               reply: Reply | None, timing: dict) -> None:
        """Append the step to the recording and tell the callback."""
        if self._saved is None or self._saved[0] != id(before):
            self._saved = (id(before), self.recorder.save_frame(before))
        anchor = None
        point = getattr(action, "coordinate", None) or getattr(action, "start_coordinate", None)
        if action is not None and action.action in POINTER_ACTIONS and point:
            anchor = self.recorder.save_anchor(before, point, self.steps)
        canonical = action.model_dump(exclude_none=True) if action else {"tool": call.name, **call.input}
        sent = model_action.model_dump(exclude_none=True) if model_action else None
        line = self.recorder.add_step(
            source="model", action=canonical, model_action=sent,
            frame=self._saved[1], anchor=anchor, ok=result.ok, error=result.error, timing=timing,
            usage=reply.usage.as_dict() if reply else None, thought=(reply.text or None) if reply else None,
            tool=call.name, output=(result.output or "")[:2000] or None)
        self.steps += 1
        if self.on_step:
            self.on_step(line, self.usage)

    def count_repeats(self, before: Any, call: ToolCall) -> int:
        """How often, among the recent steps, this same call ran on this same screen."""
        key = hashlib.blake2b(before.pixels[::4, ::4].tobytes() + json.dumps(call.input, sort_keys=True).encode(),
                              digest_size=16).hexdigest()
        self._seen.append(key)
        return self._seen.count(key)

    def check_budgets(self) -> None:
        """Hold while paused; raise BudgetExceeded or Stopped before more work is done."""
        paused_at = time.monotonic()
        while self.pause.is_set() and not self.stop.wait(0.05):
            pass
        self.started += time.monotonic() - paused_at  # time spent paused does not count against the budget
        if self.stop.is_set():
            raise Stopped(getattr(self.stop, "reason", "stopped by the user"))
        limits, elapsed = self.config.limits, time.monotonic() - self.started
        if limits.max_steps is not None and self.steps >= limits.max_steps:
            raise BudgetExceeded(f"step budget of {limits.max_steps} used up")
        if limits.max_seconds is not None and elapsed >= limits.max_seconds:
            raise BudgetExceeded(f"time budget of {limits.max_seconds:g} s used up")
        if limits.max_cost_usd is not None and self.usage.cost_usd >= limits.max_cost_usd:
            raise BudgetExceeded(f"cost budget of ${limits.max_cost_usd:g} used up (${self.usage.cost_usd:.4f})")
        if limits.max_tokens is not None and self.usage.total_tokens >= limits.max_tokens:
            raise BudgetExceeded(f"token budget of {limits.max_tokens} used up")

    def end(self, status: str, exit_code: int, message: str) -> RunResult:
        """Write the recording's final status (when this run owns it) and say how the run ended."""
        self.computer.executor.release()
        if not self.owns_recording:
            return RunResult(status, int(exit_code), message, self.steps, self.usage)
        final = None
        try:
            final = self.screen.grab()
        except Exception:  # the display may be gone; the recording still gets its status
            final = getattr(self, "frame", None)
        if not self.recorder.finished:
            self.recorder.set_meta(result=message)
            self.recorder.finish(status, error=None if status == "succeeded" else message, final_frame=final)
        return RunResult(status, int(exit_code), message, self.steps, self.usage)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
