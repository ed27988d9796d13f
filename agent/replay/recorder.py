"""`deskpilot record`: record what a person does on a display as a replayable recording.

`record(options)` listens to the display's mouse and keyboard, keeps a ring of recent
screenshots, merges the raw input events into canonical actions (screen pixels) and writes them
as a recording of kind "human" (source "human"), one step as soon as it is complete, with the
frame taken just before it and, for pointer steps, an anchor crop around the target. It runs
until the stop hotkey, Ctrl-C (SIGINT) or SIGTERM, or until the caller's `stop` event is set;
all of them end it normally: status "succeeded", exit code 0, the recording complete.

Hotkeys (never recorded; the modifiers must be held exactly, no others):
- `ctrl+alt+shift+s` stops the recording.
- `ctrl+alt+shift+p` toggles secret mode. Text typed while it is on is written as a `type`
  step with text "•••" and `"secret": "RECORDED_SECRET_<n>"` (one name per run of secret text);
  the value itself never reaches any file, and the names are printed at the end and stored in
  meta.json's `secrets`. A replay reads each value from the environment variable of that name.
  Values of 8 characters or more are also registered with the writer, so that typing the same
  text later without secret mode is masked too; shorter ones are not, because the writer masks
  every occurrence of a secret in every string, and a short value would garble field names and
  frame paths. Secret mode hides text, not pixels: screenshots show what the screen shows.

How raw events become steps (clicks, double and triple clicks, drags, scrolls, typing, keys, and
what is not recorded) is the docstring of agent.replay.merger. When Ctrl-C (SIGINT) stops the
recording, a final pending "ctrl+c" key step is dropped: it was the interrupt typed in a
terminal on the same display.

Each step line also holds `at`: seconds from the start of the recording to the step's first
raw event (`t` is when the line was written, which is later for merged steps).

Events injected by deskpilot's own executor in this process are not recorded: the executor
runs each action inside `injecting()`, and events whose time falls in such a span (plus
150 ms) are dropped. XTest events sent by other processes (xdotool, another deskpilot) cannot
be told apart from a person's at the X level and are recorded.

Pointer steps also hold `element`: the accessible element under the press (role, name, box,
path), read from the display's accessibility tree on a helper thread as the button goes down, so
replay and codegen can name the target; a display without a tree is asked once, then never again.

Implementation: the platform's input listener (`actions.platform.open_listener`; on X11 the
RECORD extension, decoding each key with the keymap the server used for it, see
actions/platform/x11/listener.py, with the X server's event times; on the portable backend
pynput's listeners, see actions/platform/portable/listener.py); meta.json's `backend` names it.
Frames come from mss at ~15 fps on a thread (agent.replay.frames); each press takes the newest
frame grabbed before it.
"""

from __future__ import annotations

import contextlib
import math
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from agent.replay.frames import FrameRing
from agent.replay.merger import SECRET_HOTKEY, STOP_HOTKEY, Merger, Step

if TYPE_CHECKING:
    from actions.platform.base import RawEvent
    from agent.session import RunOptions, RunOutcome

__all__ = ["SECRET_HOTKEY", "STOP_HOTKEY", "injecting", "install_executor_hook", "record", "was_injected"]

SECRET_REGISTER_MIN = 8  # shorter secret values are never handed to the writer at all
ANCHOR_HALF = (60, 40)
INJECT_GRACE_S = 0.15

# ---------------------------------------------------------------------------------------------
# events injected by deskpilot itself

_inject_lock = threading.Lock()
_inject_spans: list[list[float]] = []  # [start, end] in time.monotonic(); end = inf while active


@contextlib.contextmanager
def injecting() -> Iterator[None]:
    """Mark input sent by deskpilot's own executor: a recorder in this process ignores it.

    Re-entrant and thread-safe; events up to INJECT_GRACE_S after the block are ignored too.
    """
    span = [time.monotonic(), math.inf]
    with _inject_lock:
        _inject_spans.append(span)
    try:
        yield
    finally:
        with _inject_lock:
            span[1] = time.monotonic()
            cutoff = span[1] - 60.0
            _inject_spans[:] = [s for s in _inject_spans if s[1] > cutoff]


def was_injected(t: float) -> bool:
    """True when an event at monotonic time `t` was sent inside an `injecting()` block."""
    with _inject_lock:
        return any(start - 0.005 <= t <= end + INJECT_GRACE_S for start, end in _inject_spans)


def install_executor_hook() -> None:
    """Let actions.executor wrap its actions in `injecting()` (it reads `inject_guard`)."""
    import actions.executor as executor

    executor.inject_guard = injecting


# ---------------------------------------------------------------------------------------------
# the command


class _ElementWatch:
    """The accessible element under each press, read on a helper thread (the listener must not wait)."""

    def __init__(self, desktop: Any) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from vision.locate.atspi import AtspiTree

        self.tree = AtspiTree(desktop.env(), problem=getattr(desktop, "accessibility_problem", None))
        self.size = desktop.size()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="record-elements")
        self.pending: dict[float, Any] = {}
        self.last_wheel = -1.0

    def watch(self, event: RawEvent) -> None:
        """Start reading the element under a press, unless the display has no tree (or it continues a scroll)."""
        from actions.platform.base import WHEEL_BUTTONS

        if event.button in WHEEL_BUTTONS:
            wheel, self.last_wheel = self.last_wheel, event.t
            if event.t - wheel < 1.0:
                return
        if self.tree.available is not False:
            self.pending[event.t] = self.pool.submit(self._read, (event.x, event.y))

    def _read(self, point: tuple[int, int]) -> dict | None:
        from vision.locate.accessibility import element_at

        element = element_at(self.tree, point, (0, 0, self.size.width, self.size.height))
        return element.as_dict() if element is not None else None

    def take(self, t: float) -> dict | None:
        """The element of the press at time `t` (waiting at most a second), or None."""
        future = self.pending.pop(t, None)
        try:
            return future.result(timeout=1.0) if future is not None else None
        except Exception:  # a slow or vanished application: the step is recorded without it
            return None

    def close(self) -> None:
        """Stop the helper thread and disconnect."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.tree.close()


def _quietly(close: Callable[[], Any]) -> None:
    with contextlib.suppress(Exception):
        close()


def record(options: RunOptions, *, desktop: Any = None, stop: threading.Event | None = None,
           on_step: Callable[[dict, Any], None] | None = None, print_fn: Callable[..., Any] = print) -> RunOutcome:
    """Record a person's actions on `options.display` (or `desktop`) into `options.out`.

    Returns a RunOutcome once the stop hotkey is pressed, `stop` is set, or Ctrl-C/SIGTERM
    arrives (signal handlers are installed only when called on the main thread): status
    "succeeded", exit code 0. `on_step(step_line, usage)` follows each written step (the line
    as written, secrets masked). Raises BadInput for an invalid display and EnvironmentProblem
    when the display cannot be captured or recorded.
    """
    from actions.platform import backend_name, open_listener
    from agent.errors import EnvironmentProblem, ExitCode, RecordingFailed
    from agent.recording.writer import RecordingWriter
    from agent.session import RunOutcome, open_display
    from agent.stepping import final_frame, finish_run
    from agent.types import Usage
    from vision.capture import CaptureError, Screen

    stop = stop or threading.Event()
    usage = Usage()
    backend = backend_name(options.backend)
    if backend == "x11" and not sys.platform.startswith("linux"):
        raise EnvironmentProblem(f"the x11 backend records X11 displays; on {sys.platform} use --backend portable")
    install_executor_hook()
    with contextlib.ExitStack() as stack:
        if desktop is None:
            desktop = stack.enter_context(open_display(options.display, options.size, backend=backend))
        display = desktop.display
        screen = Screen(display)
        stack.callback(_quietly, screen.close)  # mss raises on close when the server is gone
        events: queue.SimpleQueue[RawEvent] = queue.SimpleQueue()
        elements = _ElementWatch(desktop)
        stack.callback(elements.close)
        try:
            size, scale = screen.size, screen.scale
            ring = FrameRing(screen)
            stack.callback(ring.stop)
            ring.start()

            def sink(event: RawEvent) -> None:  # on the listener's thread, as each event arrives
                if was_injected(event.t):
                    return
                if event.kind != "motion":  # presses and releases carry the screen just before them
                    event.frame = ring.before(event.t)
                if event.kind == "button_down":
                    elements.watch(event)
                events.put(event)

            listener = open_listener(display, sink, backend=backend)
            stack.callback(listener.stop)
            listener.start()
        except (CaptureError, RuntimeError, OSError) as exc:
            raise EnvironmentProblem(f"cannot record display {display}: {exc}") from None
        except Exception as exc:  # python-xlib's connection errors
            raise EnvironmentProblem(f"cannot record display {display}: {type(exc).__name__}: {exc}") from None

        writer = RecordingWriter(
            options.out, "human", screen={"width": size.width, "height": size.height, "scale": scale},
            extra_meta={"display": display, "backend": backend,
                        "hotkeys": {"stop": STOP_HOTKEY, "secret": SECRET_HOTKEY}})
        started = time.monotonic()
        interrupted: list[int] = []

        def on_signal(signum: int, _frame: Any) -> None:
            if stop.is_set():  # a second Ctrl-C while finishing: give up at once
                raise KeyboardInterrupt
            interrupted.append(signum)
            stop.set()

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous = signal.signal(signum, on_signal)
                stack.callback(signal.signal, signum, previous)

        def say(message: str) -> None:
            print_fn(message)
            if print_fn is print:
                sys.stdout.flush()

        merger = Merger(notice=say)

        def write(steps: list[Step]) -> None:
            for step in steps:
                i = writer.steps
                frame = anchor = None
                if step.frame is not None:
                    frame = writer.save_frame(step.frame, i)
                    if step.point is not None:
                        with contextlib.suppress(ValueError):
                            anchor = writer.save_anchor(step.frame, step.point, i, ANCHOR_HALF)
                if step.secret is not None and len(step.secret[1]) >= SECRET_REGISTER_MIN:
                    writer.add_secret(*step.secret)
                element = elements.take(step.t) if step.point is not None else None
                line = writer.add_step(action=step.action, source="human", frame=frame, anchor=anchor,
                                       at=round(max(0.0, step.t - started), 3), **({"element": element} if element
                                                                                  else {}))
                if on_step is not None:
                    on_step(line, usage)

        with writer:
            say(f"recording display {display} ({size.width}x{size.height}) into {writer.path}")
            if getattr(desktop, "kind", "") == "virtual":
                say(f"note: {display} is a private virtual display; only programs started on it can be recorded")
            say(f"stop: {STOP_HOTKEY} or Ctrl-C; secret mode on/off: {SECRET_HOTKEY}")
            error: str | None = None
            reason = "the stop event"
            try:
                while not stop.is_set():
                    try:
                        merger.feed(events.get(timeout=0.05))
                        while True:
                            merger.feed(events.get_nowait())
                    except queue.Empty:
                        pass
                    merger.tick(time.monotonic())
                    write(merger.take())
                    if merger.stop_requested:
                        reason = "the stop hotkey"
                        break
                    if not listener.alive:
                        error = f"the input of display {display} can no longer be recorded: {listener.error}"
                        break
            except KeyboardInterrupt:
                interrupted.append(signal.SIGINT)
            except RecordingFailed as exc:  # a full disk: what is written stays, the recording ends "error"
                error = str(exc)
            if interrupted:
                reason = "Ctrl-C" if interrupted[0] == signal.SIGINT else "SIGTERM"
            listener.stop()  # delivers everything recorded so far
            with contextlib.suppress(queue.Empty):
                while True:
                    merger.feed(events.get_nowait())
            try:
                write(merger.close(interrupted=bool(interrupted)))
            except RecordingFailed as exc:
                error = error or str(exc)
            ring.stop()
            final = final_frame(screen.grab, ring.latest())
            if merger.secret_names:
                writer.set_meta(secrets=list(merger.secret_names))
            if error is not None:
                result = finish_run(writer, "error", ExitCode.ENVIRONMENT, error, steps=writer.steps, usage=usage,
                                    final=final)
            else:
                result = finish_run(writer, "succeeded", ExitCode.OK,
                                    f"recorded {writer.steps} steps; ended by {reason}", steps=writer.steps,
                                    usage=usage, final=final)
        for name in merger.secret_names:
            say(f"secret text was recorded as {name}: set it in the environment before replaying (export {name}=...)")
        return RunOutcome(result, writer.path)
