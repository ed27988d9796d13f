"""What a platform backend provides: input, desktops, an input listener and window facts; its errors.

A backend is a module (or any object) with the functions of `Backend`; `actions.platform` chooses
one by name and is the only code that imports it. Button numbers are the X convention, which most
toolkits share: 1 left, 2 middle, 3 right, 4-7 wheel up/down/left/right, 8-9 back/forward.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vision.geometry import Size

if TYPE_CHECKING:
    import subprocess

DEFAULT_SIZE = Size(1280, 800)  # of a virtual desktop, unless --size says otherwise
WHEEL_BUTTONS: dict[int, str] = {4: "up", 5: "down", 6: "left", 7: "right"}  # button number -> scroll direction


class DesktopError(RuntimeError):
    """An environment problem: no display, Xvfb missing, a server that failed to start."""


class Input(Protocol):
    """Mouse and keyboard input on one display: what the executor (and `deskpilot doctor`) use."""

    def move(self, x: int, y: int) -> None:
        """Move the pointer to screen pixel (x, y)."""

    def button(self, number: int, down: bool) -> None:
        """Press or release mouse button `number` (1 left, 2 middle, 3 right)."""

    def scroll(self, direction: str, clicks: int = 1) -> None:
        """Turn the wheel `clicks` notches: up, down, left or right."""

    def key(self, keysym: int, down: bool) -> None:
        """Press or release the key that produces X keysym `keysym`."""

    def type_chunk(self, text: str, stop: threading.Event | None = None) -> None:
        """Type a short piece of text (at most `spare_keycodes` characters the keyboard lacks); a backend
        that types key by key stops before the next key once `stop` is set."""

    @property
    def spare_keycodes(self) -> int:
        """How many characters the keyboard map lacks one chunk of typing may contain."""

    def position(self) -> tuple[int, int]:
        """The pointer's position in screen pixels."""

    def held(self) -> dict[str, list[int]]:
        """What this input holds down now: {"keys": [...], "buttons": [...]}."""

    def release_all(self, keep_buttons: set[int] | frozenset[int] = frozenset()) -> None:
        """Release every key and button held, except `keep_buttons`."""

    def has_extension(self, name: str) -> bool:
        """Whether the display server offers a named extension (RECORD, which listening needs)."""

    def close(self) -> None:
        """Release everything and disconnect."""


class Desktop(Protocol):
    """A display the agent can act on, plus the programs started on it (ended by `stop()`)."""

    display: str  # the display's name, e.g. ":7"
    kind: str  # host | existing | virtual

    def env(self) -> dict[str, str]:
        """A copy of the environment for programs on this display."""

    def launch(self, command: str | list[str], cwd: str | Path | None = None, env: dict | None = None, *,
               environ: dict | None = None, stdout: Any = None, stderr: Any = None) -> subprocess.Popen:
        """Start a program in the background on this display (`environ`: its whole environment instead
        of `env()` plus `env`; `stdout`/`stderr` as for subprocess.Popen)."""

    def size(self) -> Size:
        """The screen size in pixels."""

    def stop(self) -> None:
        """End every program this desktop started (and its server, if it started one); idempotent."""

    def __enter__(self) -> Desktop: ...

    def __exit__(self, *exc: object) -> None: ...


class VirtualDisplay(Desktop, Protocol):
    """A private desktop that exists once started."""

    def start(self, timeout: float = 10.0) -> VirtualDisplay:
        """Start it (server, window manager); returns self."""


@dataclass(frozen=True)
class KeyInfo:
    """One decoded key event."""

    keycode: int
    keysym: int  # what the key produces in the event's modifier state
    base: int  # its unshifted keysym (group 1, level 1), which names it in combinations
    char: str | None  # the character it types, if printable
    modifier: str | None = None  # "shift", "ctrl", "alt", "super", "level3", "lock"... for modifier keys
    dead: str | None = None  # the combining mark of a dead key


@dataclass
class RawEvent:
    """One input event: kind key_down/key_up/button_down/button_up/motion, at monotonic time t.

    `mods` are the modifier kinds held (see actions.keys.MODIFIER_KEYSYMS); `frame` is the screenshot
    before the event, attached by whoever records it (a listener leaves it None).
    """

    kind: str
    t: float
    x: int = 0
    y: int = 0
    button: int = 0
    key: KeyInfo | None = None
    mods: frozenset[str] = frozenset()
    frame: Any = None


Sink = Callable[[RawEvent], None]


class Listener(Protocol):
    """Every key, button and pointer event of one display, to a sink, on the listener's own thread."""

    size: Size  # the screen's size, for sinks that watch its edges
    error: BaseException | None  # why listening failed or a sink raised, if it did

    def start(self, timeout: float = 5.0) -> Listener:
        """Start listening; returns once events flow."""

    @property
    def alive(self) -> bool:
        """Whether events still flow."""

    def stop(self) -> None:
        """Stop listening; events seen before are delivered first."""


@dataclass(frozen=True)
class Finding:
    """One thing a backend checks for `deskpilot doctor`: what, whether it is fine, and the fix if not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # a problem that stops deskpilot from acting (else a warning)


@dataclass(frozen=True)
class WindowInfo:
    """The window that has the keyboard focus: its class (as WM_CLASS: instance, class), title and id (if known)."""

    instance: str
    klass: str
    title: str | None = None
    id: int | None = None


class Backend(Protocol):
    """The functions a platform backend module provides (see actions.platform for their contracts)."""

    def open_desktop(self, spec: str, size: Size | None, window_manager: bool) -> Desktop: ...

    def virtual_desktop(self, size: Size | None, window_manager: bool) -> VirtualDisplay: ...

    def open_input(self, display: str | None) -> Input: ...

    def open_listener(self, display: str, sink: Sink, motion: bool = False) -> Listener: ...

    def focused_window(self, display: str) -> WindowInfo | None: ...
