"""The portable input backend: pyautogui for the pointer and keys, pynput for text.

Pointer: pyautogui's platform functions (`platformModule._moveTo`, `_mouseDown`, `_mouseUp`,
and `_dragTo` for macOS drags) move and press; its public ones around them ask the pointer's
position before every move and press and move there again first (three server round trips where
one does, which kept a click at over twice the x11 backend's time) and add the fail-safe and
pause that deskpilot turns off. pyautogui's public functions serve the rest: size, position,
scrolling and keys.

Coordinates: the executor speaks screen pixels (what mss captures); pyautogui speaks logical
points, which differ on HiDPI screens (a Retina Mac: 2 pixels per point). `scale` (pixels per
point) is measured once, from the pixel size of the screen and pyautogui's size in points, and
every coordinate goes through vision.geometry's ScreenMap (`to_points`, `from_points`).

Keys: DESIGN.md's key names are X keysyms (actions.keys); keynames.py names them for
pyautogui, and the few it lacks (AltGr, media keys; on X any key of the keyboard map) are
pressed through pynput. Text goes through pynput (on X with the XTypist's care, see
xtyping.py). Everything pressed is tracked, and `release_all` lets go of it in reverse order.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

from actions.keys import keysym_char, keysym_name
from actions.platform.base import WHEEL_BUTTONS
from actions.platform.portable.keynames import gui_name, pynput_name
from actions.result import ToolError
from vision.geometry import ScreenMap, Size

BUTTON_NAMES = {1: "left", 2: "middle", 3: "right"}
MAX_SPARE = 1_000_000  # where any character can be typed at once (macOS, Windows)


def measure_scale(pixels: Size, points: tuple[int, int]) -> float:
    """Pixels per point of a screen `pixels` big that the pointer API sees as `points` (w, h).

    ToolError when the two disagree on the shape (then coordinates could not be mapped).
    """
    width, height = points
    if width <= 0 or height <= 0:
        raise ToolError(f"the pointer API reports a screen of {width}x{height} points")
    sx, sy = pixels.width / width, pixels.height / height
    if abs(sx - sy) > 0.02 * max(sx, sy):
        raise ToolError(f"the screen is {pixels} pixels but the pointer API sees {width}x{height} points; "
                        "their shapes differ, so coordinates cannot be mapped (more than one monitor?)")
    return round(sx, 3)


class PortableInput:
    """Mouse and keyboard input through pyautogui (pointer, keys) and pynput (text), in screen pixels.

    `gui` is the pyautogui module, `keyboard` pynput's keyboard module, `typist` what types text
    (`type(text)`, `spare`, `close()`); tests pass doubles.
    """

    def __init__(self, gui: Any, keyboard: Any, typist: Any, pixels: Size, *, platform: str = sys.platform,
                 display: str | None = None, x_keymap: set[int] | None = None) -> None:
        self._gui, self._keyboard, self._typist = gui, keyboard, typist
        self._pointer = gui.platformModule  # pyautogui's own platform functions, see the module docstring
        self.platform, self.display = platform, display
        self.scale = measure_scale(pixels, tuple(gui.size()))
        self._map = ScreenMap(pixels, pixels, self.scale)
        self._x_keymap = x_keymap  # keysyms of an X keyboard map, which pynput can press by keysym
        self._lock = threading.RLock()
        self._keys: list[tuple[int, str, Any]] = []  # (keysym, "gui" | "pynput", what was pressed)
        self._buttons: list[int] = []
        self._at: tuple[float, float] | None = None  # where this action last put the pointer, in points
        self._controller: Any = None

    # --- pointer ---------------------------------------------------------------------------
    def _points(self, x: int, y: int) -> tuple[int, int]:
        """The point that contains screen pixel (x, y) (pixel 2879 of a 2x screen is point 1439)."""
        px, py = self._map.to_points(x, y)
        return math.floor(px), math.floor(py)

    def move(self, x: int, y: int) -> None:
        """Move the pointer to screen pixel (x, y) (a drag while a button is held)."""
        with self._lock:
            px, py = self._points(x, y)
            if self._buttons and self.platform == "darwin":  # macOS needs drag events, not moves, for drags
                self._pointer._dragTo(px, py, BUTTON_NAMES.get(self._buttons[-1], "left"))
            else:
                self._pointer._moveTo(px, py)
            self._at = (px, py)

    def _here(self) -> tuple[int, int]:
        """Where the pointer is, in points: where this action put it, else as pyautogui reports it."""
        if self._at is None:
            x, y = self._gui.position()
            self._at = (int(x), int(y))
        return self._at

    def button(self, number: int, down: bool) -> None:
        """Press or release mouse button `number` (1 left, 2 middle, 3 right; 4-7 turn the wheel one notch)."""
        with self._lock:
            if number in WHEEL_BUTTONS:
                if down:
                    self.scroll(WHEEL_BUTTONS[number], 1)
                return
            name = BUTTON_NAMES.get(number)
            if name is None:
                raise ToolError(f"the portable backend has no mouse button {number} (only 1-3 and the wheel)")
            x, y = self._here()
            if down:
                self._pointer._mouseDown(x, y, name)
                self._buttons.append(number)
            else:
                self._pointer._mouseUp(x, y, name)
                if number in self._buttons:
                    self._buttons.remove(number)

    def scroll(self, direction: str, clicks: int = 1) -> None:
        """Turn the wheel `clicks` notches up, down, left or right at the pointer."""
        with self._lock:
            x, y = self._here()
            if direction in ("up", "down"):
                self._gui.vscroll(clicks if direction == "up" else -clicks, x, y, _pause=False)
            elif direction in ("left", "right"):
                self._gui.hscroll(clicks if direction == "right" else -clicks, x, y, _pause=False)
            else:
                raise ToolError(f"unknown scroll direction {direction!r}")

    def position(self) -> tuple[int, int]:
        """The pointer's position in screen pixels."""
        with self._lock:
            x, y = self._gui.position()
            return self._map.from_points(x, y)

    # --- keys ------------------------------------------------------------------------------
    def key(self, keysym: int, down: bool) -> None:
        """Press or release the key that produces X keysym `keysym`."""
        with self._lock:
            if down:
                how, what = self._resolve(keysym)
                if how == "gui":
                    self._gui.keyDown(what, _pause=False)
                else:
                    self._pynput().press(what)
                self._keys.append((keysym, how, what))
                return
            entry = next((k for k in reversed(self._keys) if k[0] == keysym), None)
            how, what = entry[1:] if entry else self._resolve(keysym)
            if entry:
                self._keys.remove(entry)
            self._let_go(how, what)

    def _resolve(self, keysym: int) -> tuple[str, Any]:
        name = gui_name(keysym, self.platform)
        if name is not None and self._gui.isValidKey(name):
            return "gui", name
        key_name = pynput_name(keysym)
        member = getattr(self._keyboard.Key, key_name, None) if key_name else None
        if member is not None and self._x_keymap is None:
            return "pynput", member
        if self._x_keymap is not None:  # on X pynput presses any key of the map by its keysym (XTest)
            if keysym in self._x_keymap:
                return "pynput", self._keyboard.KeyCode.from_vk(keysym)
        elif (char := keysym_char(keysym)) is not None:
            return "pynput", self._keyboard.KeyCode.from_char(char)
        label = keysym_name(keysym) or hex(keysym)
        raise ToolError(f"the portable backend cannot press {label!r} here (not on this keyboard for pyautogui or "
                        "pynput); type characters with a type action instead")

    def _let_go(self, how: str, what: Any) -> None:
        if how == "gui":
            self._gui.keyUp(what, _pause=False)
        else:
            self._pynput().release(what)

    def _pynput(self) -> Any:
        if self._controller is None:
            from actions.platform.portable.libs import keyboard_controller

            self._controller = keyboard_controller(self.display)
        return self._controller

    def type_chunk(self, text: str, stop: threading.Event | None = None) -> None:
        """Type a piece of text (any Unicode) through pynput, key by key; stop before the next key once
        `stop` is set (the kill switch does not wait for the chunk's end)."""
        with self._lock:
            self._typist.type(text, stop)

    @property
    def spare_keycodes(self) -> int:
        """How many characters the keyboard map lacks one piece of typing may contain."""
        return self._typist.spare

    # --- cleanup ---------------------------------------------------------------------------
    def held(self) -> dict[str, list[int]]:
        """What is held down now: keysyms and buttons."""
        return {"keys": [k[0] for k in self._keys], "buttons": list(self._buttons)}

    def release_all(self, keep_buttons: set[int] | frozenset[int] = frozenset()) -> None:
        """Release every key and button still held, except `keep_buttons`; every release is tried."""
        with self._lock:
            keys, self._keys = self._keys, []
            errors: list[Exception] = []
            for _, how, what in reversed(keys):
                try:
                    self._let_go(how, what)
                except Exception as exc:
                    errors.append(exc)
            self._at = None  # the pointer may have moved since this action put it somewhere: ask
            for number in reversed(self._buttons):
                if number not in keep_buttons:
                    try:
                        self._pointer._mouseUp(*self._here(), BUTTON_NAMES[number])
                    except Exception as exc:
                        errors.append(exc)
            self._buttons = [b for b in self._buttons if b in keep_buttons]
            self._at = None  # the next action asks again
            if errors:
                raise ToolError(f"releasing held keys and buttons failed: {errors[0]}")

    def has_extension(self, name: str) -> bool:
        """Whether the X server offers an extension (False where there is no X server)."""
        if self.platform in ("darwin", "win32") or not self.display:
            return False
        from Xlib import display as xdisplay

        conn = xdisplay.Display(self.display)
        try:
            return bool(conn.has_extension(name))
        finally:
            conn.close()

    def close(self) -> None:
        """Release everything and let go of the libraries' connections."""
        try:
            self.release_all()
        except ToolError:
            pass
        finally:
            self._controller = None
            self._typist.close()


class PynputTypist:
    """Types text with one pynput keyboard controller (macOS and Windows type any character directly)."""

    spare = MAX_SPARE

    def __init__(self, controller: Any) -> None:
        self._controller = controller

    def type(self, text: str, stop: threading.Event | None = None) -> None:
        """Type `text`, or its start until `stop` is set."""
        type_keys(self._controller, text, stop)

    def close(self) -> None:
        """Nothing to close."""


def type_keys(controller: Any, text: str, stop: threading.Event | None = None) -> None:
    """Type `text` with a pynput keyboard controller a character at a time, stopping once `stop` is set."""
    for char in text:
        if stop is not None and stop.is_set():
            return
        try:
            controller.type(char)
        except Exception as exc:  # pynput's InvalidCharacterException, X11Error
            raise ToolError(f"pynput could not type {char!r} of {text!r}: {type(exc).__name__}: {exc}") from exc
