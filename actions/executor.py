"""The executor: performs canonical actions (screen pixels) on one display.

It validates coordinates against the screen, performs the action through the input backend,
and always releases held keys and buttons, also when an action fails part-way or is cancelled.
It knows nothing of models.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING

from actions.keys import parse_keys, parse_modifiers, resolve_key
from actions.result import ToolError, ToolResult
from actions.vocabulary import (
    Action,
    ActionError,
    Click,
    CursorPosition,
    HoldKey,
    Key,
    LeftClickDrag,
    MouseButton,
    MouseMove,
    Screenshot,
    Scroll,
    Type,
    Wait,
    Zoom,
    check_bounds,
)
from vision.capture import Screen

if TYPE_CHECKING:
    from actions.platform.base import Input

# Set by agent.replay.recorder while it records in this process, so deskpilot's own input is not recorded.
inject_guard: Callable[[], AbstractContextManager[object]] = nullcontext

CLICKS: dict[str, tuple[int, int]] = {  # action -> (button, count)
    "left_click": (1, 1), "right_click": (3, 1), "middle_click": (2, 1),
    "double_click": (1, 2), "triple_click": (1, 3),
}
CLICK_GAP_S = 0.04
TYPE_CHUNK = 40
DRAG_STEPS = 12


class Cancelled(Exception):
    """The action was cancelled (stop or kill switch) while it ran."""


class Executor:
    """Performs actions on one display: `perform(action)` returns a ToolResult, never raises."""

    def __init__(self, screen: Screen, backend: Input) -> None:
        self.screen = screen
        self.backend = backend  # the platform backend's input on this display
        self._cancel = threading.Event()
        self._held_buttons: set[int] = set()  # pressed on purpose by left_mouse_down

    def perform(self, action: Action) -> ToolResult:
        """Perform one action; errors (bad coordinates, backend failures) become error results."""
        self._cancel.clear()
        try:
            check_bounds(action, self.screen.size, "screen")
            handler: Callable[[Action], ToolResult | None] = getattr(self, "_" + type(action).__name__)
            with inject_guard():
                return handler(action) or ToolResult()
        except (ActionError, ToolError) as exc:
            return ToolResult(error=str(exc))
        except Cancelled:
            return ToolResult(error="interrupted: the action was stopped before it finished")
        finally:
            self.backend.release_all(keep_buttons=self._held_buttons)

    def release(self) -> None:
        """Release every key and button, including a left_mouse_down still held on purpose."""
        self._held_buttons.clear()
        self.backend.release_all()

    def cancel(self) -> None:
        """Stop the running action as soon as possible (keys and buttons are released)."""
        self._cancel.set()

    def close(self) -> None:
        """Release everything and disconnect from the display."""
        self._held_buttons.clear()
        self.backend.close()

    # --- helpers ---------------------------------------------------------------------------
    def _sleep(self, seconds: float) -> None:
        if self._cancel.wait(seconds):
            raise Cancelled

    @contextmanager
    def _holding(self, modifiers: str | None) -> Iterator[None]:
        keysyms = [resolve_key(n)[1] for n in parse_modifiers(modifiers)] if modifiers else []
        for keysym in keysyms:
            self.backend.key(keysym, True)
        try:
            yield
        finally:
            for keysym in reversed(keysyms):
                self.backend.key(keysym, False)

    def _press_combo(self, names: list[str]) -> list[int]:
        keysyms = [resolve_key(n)[1] for n in names]
        for keysym in keysyms:
            self.backend.key(keysym, True)
        return keysyms

    def _release_combo(self, keysyms: list[int]) -> None:
        for keysym in reversed(keysyms):
            self.backend.key(keysym, False)

    # --- one handler per action class ------------------------------------------------------
    def _Screenshot(self, action: Screenshot) -> ToolResult:
        return ToolResult(image=self.screen.grab())

    def _Zoom(self, action: Zoom) -> ToolResult:
        return ToolResult(image=self.screen.grab().crop(action.region))

    def _CursorPosition(self, action: CursorPosition) -> ToolResult:
        x, y = self.backend.position()
        return ToolResult(output=f"X={x},Y={y}")

    def _MouseMove(self, action: MouseMove) -> None:
        self.backend.move(*action.coordinate)

    def _Click(self, action: Click) -> None:
        button, count = CLICKS[action.action]
        if action.coordinate:
            self.backend.move(*action.coordinate)
        with self._holding(action.text):
            for i in range(count):
                if i:
                    self._sleep(CLICK_GAP_S)
                self.backend.button(button, True)
                self.backend.button(button, False)

    def _LeftClickDrag(self, action: LeftClickDrag) -> None:
        (x0, y0), (x1, y1) = action.start_coordinate, action.coordinate
        self.backend.move(x0, y0)
        with self._holding(action.text):
            self.backend.button(1, True)
            for i in range(1, DRAG_STEPS + 1):
                self._sleep(0.01)
                fraction = i / DRAG_STEPS
                self.backend.move(round(x0 + (x1 - x0) * fraction), round(y0 + (y1 - y0) * fraction))
            self.backend.button(1, False)

    def _MouseButton(self, action: MouseButton) -> None:
        if action.coordinate:
            self.backend.move(*action.coordinate)
        down = action.action == "left_mouse_down"
        self.backend.button(1, down)
        if down:  # a deliberate press outlives its action, until left_mouse_up or release()
            self._held_buttons.add(1)
        else:
            self._held_buttons.discard(1)

    def _Scroll(self, action: Scroll) -> None:
        if action.coordinate:
            self.backend.move(*action.coordinate)
        with self._holding(action.text):
            self.backend.scroll(action.scroll_direction, action.scroll_amount)

    def _Type(self, action: Type) -> None:
        text = action.text.replace("\r\n", "\n")
        for chunk in _chunks(text, TYPE_CHUNK, self.backend.spare_keycodes):
            if self._cancel.is_set():
                raise Cancelled
            self.backend.type_chunk(chunk, self._cancel)
        if self._cancel.is_set():  # a backend that types key by key may have stopped part-way
            raise Cancelled

    def _Key(self, action: Key) -> None:
        for _ in range(action.repeat or 1):
            for combo in parse_keys(action.text):
                self._release_combo(self._press_combo(combo))

    def _HoldKey(self, action: HoldKey) -> None:
        for combo in parse_keys(action.text):
            keysyms = self._press_combo(combo)
            try:
                self._sleep(action.duration)
            finally:
                self._release_combo(keysyms)

    def _Wait(self, action: Wait) -> None:
        self._sleep(action.duration)


def _chunks(text: str, size: int, spare: int) -> Iterator[str]:
    """Split text into chunks of at most `size` characters and at most `spare` distinct non-ASCII ones."""
    chunk: list[str] = []
    special: set[str] = set()
    for char in text:
        if ord(char) > 0x7E and char not in special:
            if len(special) >= max(1, spare):
                yield "".join(chunk)
                chunk, special = [], set()
            special.add(char)
        chunk.append(char)
        if len(chunk) >= size:
            yield "".join(chunk)
            chunk, special = [], set()
    if chunk:
        yield "".join(chunk)
