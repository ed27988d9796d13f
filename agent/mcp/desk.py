"""The desktop an MCP server serves: one display, its session, one recording, one call at a time.

A `Desk` opens the display the way every run does (`agent.session.Session`: the desktop, the
executor, the computer tool with the one coordinate mapping, the kill switch) and writes one
recording of kind `mcp` for the whole server session. Its methods are synchronous and are
called from worker threads; each takes the display's lock, so calls from one client or several
run one after the other. Coordinates are the pixels of Claude's image of the screen (the
largest same-aspect size within 1568 px and 1.15 MP, as `claude-sonnet-4-6` receives it): the
size of every screenshot the server returns.

Every call becomes a step line: computer actions as the loop writes them (canonical action in
screen pixels, `model_action` as the client sent it, the frame seen before, an anchor, timing),
other tools as `{"tool": NAME, ...arguments}` with their result in `output`. Refused and
invalid calls are logged with `ok: false` and nothing runs. After the kill switch fires every
acting call is refused for the rest of the session.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import BadInput, DeskpilotError
from agent.models.base import DEFAULT_MODEL
from agent.types import StopSignal, ToolCall, stop_reason

if TYPE_CHECKING:
    from agent.safety.confirm import Asker
    from vision.capture import Frame
    from vision.encode import EncodedImage
    from vision.geometry import Size

IMAGE_MODEL = DEFAULT_MODEL  # whose image budget the screenshots follow (Claude's: 1568 px, 1.15 MP)
CLOSE_WAIT_S = 5.0  # how long closing waits for a running call to give up its lock
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def display_lock(display: str) -> threading.Lock:
    """The lock that serialises actions on `display` within this process."""
    with _locks_guard:
        return _locks.setdefault(display, threading.Lock())


@dataclass(frozen=True)
class DeskConfig:
    """What `deskpilot mcp` serves: the display, the recordings folder and the `--confirm` mode."""

    display: str = "auto"
    size: Size | None = None
    out: Path = Path("recordings")
    confirm: str = "ask"
    transport: str = "stdio"
    workdir: Path = field(default_factory=Path.cwd)


@dataclass(frozen=True)
class Answer:
    """A tool's answer: text, an optional PNG, whether it is an error, and optional structured data."""

    text: str
    image: EncodedImage | None = None
    error: bool = False
    data: dict[str, Any] | None = None


class Refused(DeskpilotError):
    """A call that is answered with an error and does nothing (stopped session, display gone)."""


class Desk:
    """One display served over MCP: screenshot, computer, find, and the lock delegated runs share."""

    def __init__(self, config: DeskConfig) -> None:
        from agent.mcp.guard import policy_hook
        from agent.mcp.journal import Journal
        from agent.models.base import ModelConfig
        from agent.session import RunOptions, Session
        from agent.stepping import Stepper

        self.config = config
        options = RunOptions(model=ModelConfig(model=IMAGE_MODEL), display=config.display, size=config.size,
                             out=Path(config.out), workdir=config.workdir)
        self.session = Session(options)
        try:
            self.display = self.session.desktop.display
            self.mapping = self.session.mapping
            self.lock = display_lock(self.display)
            self._ask: Asker | None = None  # the elicitation of the call being confirmed
            self._confirm_asking = policy_hook(self.session, config.confirm, self._elicit)
            self._confirm_alone = policy_hook(self.session, config.confirm, None)
            try:
                self.recorder = self.session.recorder(
                    "mcp", model=None, extra_meta={"display": self.display, "transport": config.transport,
                                                   "confirm": config.confirm})
            except OSError as exc:
                raise BadInput(f"--out {config.out}: cannot write a recording there: {exc.strerror or exc}") from None
            self.stepper = Stepper(self.recorder, self.session.screen.grab, options.loop.settle, source="model",
                                   stop=self.session.stop_event)
            self.journal = Journal(self.recorder, self.stepper)
            self._finder: Any = None
            self._run_stop: StopSignal | None = None
            self._calls = 0
        except BaseException:
            self.session.close()
            raise

    # --- what clients are told -----------------------------------------------------------
    @property
    def image_size(self) -> Size:
        """The size of every screenshot, which every coordinate refers to."""
        return self.mapping.model

    def describe_screen(self) -> str:
        """The screenshot size and what coordinates mean, in one sentence."""
        model, screen = self.mapping.model, self.mapping.screen
        scaled = "" if model == screen else f" (the {screen} screen scaled down)"
        return (f"Screenshots of display {self.display} are {model} pixels{scaled}; every coordinate is in these "
                f"pixels: x 0..{model.width - 1}, y 0..{model.height - 1}.")

    @property
    def stopped(self) -> bool:
        """True once the kill switch (or a stop) fired: acting calls are refused from then on."""
        return self.session.stop_event.is_set()

    # --- the tools -------------------------------------------------------------------------
    def screenshot(self) -> Answer:
        """The screen now, as the PNG the coordinates refer to."""
        with self.exclusive(acting=False):
            frame = self.stepper.grab()
            self.stepper.frame = frame
            image = self.encode(frame)
            answer = Answer(f"Screenshot {image.size}. {self.describe_screen()}", image)
            self.journal.log_call("screenshot", {}, answer, frame=frame, action={"action": "screenshot"})
            return answer

    def computer(self, data: dict[str, Any], ask: Asker | None = None) -> Answer:
        """Validate, check with the policy, perform, settle and record one action; the settled screen back."""
        from actions.vocabulary import ActionError
        from agent.safety.confirm import Denied

        with self.exclusive(acting=True):
            self._calls += 1
            call = ToolCall(f"mcp-{self._calls}", "computer", dict(data))
            tool = self.session.computer
            try:
                invocation = tool.validate(call)
                self._confirm(call, invocation.action, ask)
            except (ActionError, Denied) as exc:  # the client's coordinates are the screenshot's pixels
                reason = str(exc).replace("model image", "screenshot").rstrip(". ")
                answer = Answer(f"{reason}. Nothing was executed.", error=True)
                self.journal.log_call("computer", data, answer)
                return answer
            action, model_action = invocation.action, invocation.model_action
            assert action is not None and model_action is not None
            before = self.stepper.look()
            result, timing = self.stepper.perform(lambda: tool(invocation), settle=invocation.settles)
            point = getattr(action, "coordinate", None) or getattr(action, "start_coordinate", None)
            self.journal.defer(functools.partial(
                self.stepper.log, before, action=invocation.canonical, result=result, timing=timing, point=point,
                model_action=model_action.model_dump(exclude_none=True), tool="computer",
                output=(result.output or "")[:2000] or None))
            if not result.ok:
                return Answer(f"{model_action.action} failed: {result.error}", error=True)
            if result.image is not None:  # screenshot, zoom: already the model's view
                image = self.encode_view(result.image)
                what = ("Zoomed region" if model_action.action == "zoom" else "Screenshot") + f" {image.size}."
                return Answer(f"{what} {self.describe_screen()}", image)
            if result.output:
                return Answer(result.output)
            image = self.encode(self.stepper.look())
            return Answer(f"{model_action.action} done; the screen after it settled ({image.size}):", image)

    def find(self, text: str | None, role: str | None, name: str | None, exact: bool) -> Answer:
        """Text on the screen by OCR, or elements by role and name, in screenshot pixels; see agent.mcp.find."""
        from agent.mcp.find import find_on_screen

        args = {k: v for k, v in (("text", text), ("role", role), ("name", name)) if v is not None}
        if exact:
            args["exact"] = True
        with self.exclusive(acting=False):
            if self._finder is None:
                from vision.locate.ocr import TextFinder

                self._finder = TextFinder()
            frame = self.stepper.grab()
            answer = find_on_screen(self._finder, frame, self.mapping, text=text, role=role, name=name, exact=exact,
                                    tree=lambda: self.session.tree)
            self.journal.log_call("find", args, answer, frame=frame)
            return answer

    # --- shared by the tools and the delegated runs ------------------------------------------
    @contextmanager
    def exclusive(self, *, acting: bool) -> Iterator[None]:
        """Hold the display for one call; Refused when the session is stopped (acting calls) or the
        display does not answer."""
        with self.lock:
            self.journal.flush()
            if acting and self.stopped:
                raise Refused(f"{stop_reason(self.session.stop_event)}: deskpilot refuses every action for the "
                              "rest of this MCP session. Nothing was executed. Restart the server to go on.")
            try:
                yield
            except DeskpilotError:
                raise
            except Exception as exc:
                if self.display_answers():
                    raise
                raise Refused(f"the display {self.display} does not answer ({type(exc).__name__}: {exc}); it may "
                              "have been closed. The server keeps running; start the display again and restart "
                              "deskpilot mcp.") from None

    @contextmanager
    def delegated(self) -> Iterator[StopSignal]:
        """Hold the display for a run deskpilot drives itself (task, replay, goal). The run's stop signal
        fires with the kill switch, or when the call is abandoned (`interrupt`)."""
        with self.exclusive(acting=True):
            stop, done = StopSignal(), threading.Event()

            def forward() -> None:
                while not done.is_set():
                    if self.session.stop_event.wait(0.05):
                        stop.stop(stop_reason(self.session.stop_event))
                        return

            self._run_stop = stop
            threading.Thread(target=forward, daemon=True, name="mcp-stop-forward").start()
            try:
                yield stop
            finally:
                done.set()
                self._run_stop = None
                self.stepper.frame = None  # the run changed the screen: the next step looks afresh

    def display_answers(self) -> bool:
        """True when the display can still be captured."""
        from vision.capture import Screen

        try:
            with Screen(self.display) as screen:
                screen.grab()
        except Exception:
            return False
        return True

    def encode(self, frame: Frame) -> EncodedImage:
        """A full-screen frame as the PNG the client sees (the model's image size)."""
        return self.encode_view(self.session.computer.model_view(frame))

    @staticmethod
    def encode_view(view: Frame) -> EncodedImage:
        """An image already at the size the client sees, as PNG."""
        from vision.encode import encode

        return encode(view.pixels)

    def _confirm(self, call: ToolCall, action: Any, ask: Asker | None) -> None:
        if ask is None:
            self._confirm_alone(call, action)
            return
        self._ask = ask
        try:
            self._confirm_asking(call, action)
        finally:
            self._ask = None

    def _elicit(self, verdict: Any, call: ToolCall, action: Any) -> str:
        ask = self._ask
        return ask(verdict, call, action) if ask is not None else "deny"

    # --- ending -------------------------------------------------------------------------------
    def interrupt(self) -> None:
        """A call was abandoned (its client went away): stop the running action, then release every key
        and button, also a left_mouse_down held on purpose."""
        self.session.executor.cancel()
        if self._run_stop is not None:
            self._run_stop.stop("the MCP client went away or cancelled the call")
        threading.Thread(target=self.release_all, daemon=True, name="mcp-release").start()

    def release_all(self) -> None:
        """Between calls, release every key and button, also a left_mouse_down held on purpose."""
        if self.lock.acquire(timeout=CLOSE_WAIT_S):
            try:
                with suppress(Exception):
                    self.session.executor.release()
            finally:
                self.lock.release()

    def close(self, status: str | None = None, message: str = "the MCP session ended") -> Path:
        """Stop what runs, release every key and button, finish the recording and close the display.

        `status` defaults to "stopped" when the kill switch fired, else "succeeded". Returns the recording.
        """
        from agent.stepping import final_frame, finish_run
        from agent.types import Usage

        self.session.executor.cancel()
        if self._run_stop is not None:
            self._run_stop.stop("the MCP server is shutting down")
        locked = self.lock.acquire(timeout=CLOSE_WAIT_S)
        try:
            self.journal.flush()
            with suppress(Exception):
                self.session.executor.release()
            if status is None:
                status = "stopped" if self.stopped else "succeeded"
                message = stop_reason(self.session.stop_event) if self.stopped else message
            code = {"succeeded": 0, "stopped": 3}.get(status, 1)
            with suppress(Exception):
                finish_run(self.recorder, status, code, message, steps=self.recorder.steps, usage=Usage(),
                           final=final_frame(self.session.screen.grab, self.stepper.frame))
        finally:
            if locked:
                self.lock.release()
            try:
                self.session.close()
            except Exception as exc:  # e.g. the display is gone: what could be closed is closed
                print(f"deskpilot mcp: closing the display: {type(exc).__name__}: {exc}", file=sys.stderr)
        return self.recorder.path


__all__ = ["Answer", "Desk", "DeskConfig", "IMAGE_MODEL", "Refused", "display_lock"]
