"""`deskpilot record`: record what a person does on an X display as a replayable recording.

`record(options)` listens to the display's mouse and keyboard, keeps a ring of recent
screenshots, merges the raw X events into canonical actions (screen pixels) and writes them
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

How raw events become steps (times are the X server's event times):
- Clicks: press + release of button 1/2/3 at the press position -> left_click / middle_click /
  right_click. Left clicks at the same place (<= 5 px) within 400 ms of the previous press
  merge into double_click and triple_click (a fourth starts a new group). Right and middle
  clicks never merge.
- Drags: a left press whose pointer moves more than 5 px before the release ->
  left_click_drag from the press to the release position. Drags of other buttons are clicks.
- Modifiers held at a click, drag or scroll are its `text` ("ctrl", "ctrl+shift"; order ctrl,
  alt, shift, super).
- Scrolls: wheel buttons 4/5/6/7 -> scroll up/down/left/right at the pointer; wheel clicks in
  the same direction with the same modifiers, within 500 ms of the previous one and 30 px of
  the first, merge into one step whose scroll_amount is their count (at most 50).
- Typing: printable characters (any Unicode, also from keycodes that xdotool or the executor
  re-map on the fly, AltGr levels, Caps Lock, the keypad with Num Lock, dead keys composed)
  typed without ctrl/alt/super merge into one `type` step until another kind of step begins or
  the typing pauses for 2 s. Shift with a character is typing. BackSpace right after typed
  characters deletes the last one from the run (a BackSpace with nothing typed before it is a
  key step). Return and Tab are never part of a run: they are key steps of their own, so a
  replay sees the screen before a form is submitted or the focus moves.
- Keys: a key pressed with ctrl, alt or super, and every non-printable key (Return, Tab,
  BackSpace, Escape, arrows, F-keys, Delete, Home...), is a `key` step in xdotool syntax,
  the key named by its unshifted keysym: "ctrl+s", "alt+Tab", "ctrl+shift+t", "shift+Tab".
  The same combination pressed again within 500 ms (also key auto-repeat) merges into one
  step with `repeat` (at most 100). Super or alt pressed and released alone is a key step
  ("super"); shift, ctrl, Caps Lock and Num Lock alone are not recorded.
- Mouse buttons 8/9 (back/forward) and pointer motion without a button are not recorded.
- When Ctrl-C (SIGINT) stops the recording, a final pending "ctrl+c" key step is dropped: it
  was the interrupt typed in a terminal on the same display.

Each step line also holds `at`: seconds from the start of the recording to the step's first
raw event (`t` is when the line was written, which is later for merged steps).

Events injected by deskpilot's own executor in this process are not recorded: the executor
runs each action inside `injecting()`, and events whose time falls in such a span (plus
150 ms) are dropped. XTest events sent by other processes (xdotool, another deskpilot) cannot
be told apart from a person's at the X level and are recorded.

Implementation: the X RECORD extension through python-xlib, on connections opened with the
chosen display's name (the mechanism of pynput's X backend, which is not used itself because
it connects to $DISPLAY on import and decodes keys with the keymap of its start, so characters
typed through re-mapped keycodes arrive as NoSymbol). The recorded stream also carries the
ChangeKeyboardMapping and SetModifierMapping requests of every client, in server order, so the
keymap used to decode each key is the one the server used. Frames come from mss at ~15 fps on
a thread; each press takes the newest frame grabbed before it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import queue
import signal
import struct
import sys
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.session import RunOptions, RunOutcome

STOP_HOTKEY = "ctrl+alt+shift+s"
SECRET_HOTKEY = "ctrl+alt+shift+p"
SECRET_PREFIX = "RECORDED_SECRET_"
MASK = "•••"
SECRET_REGISTER_MIN = 8  # shorter secret values are never handed to the writer at all

DOUBLE_CLICK_S = 0.4
DOUBLE_CLICK_PX = 5
DRAG_PX = 5
SCROLL_RUN_S = 0.5
SCROLL_RUN_PX = 30
KEY_REPEAT_S = 0.5
TYPE_IDLE_S = 2.0
TICK_SLACK_S = 0.05  # extra wait before a pending step is closed by time, for events in flight
MAX_SCROLL = 50
MAX_REPEAT = 100
MAX_TYPE_CHARS = 10_000

FRAME_FPS = 15.0
FRAME_RING = 12
ANCHOR_HALF = (60, 40)
INJECT_GRACE_S = 0.15

MOD_ORDER = ("ctrl", "alt", "shift", "super")
_COMBO_MODS = frozenset(MOD_ORDER)
_NAMED_MODS = frozenset({"ctrl", "alt", "super"})
_CLICK_NAMES = {1: {1: "left_click", 2: "double_click", 3: "triple_click"}, 2: {1: "middle_click"},
                3: {1: "right_click"}}
_WHEEL = {4: "up", 5: "down", 6: "left", 7: "right"}
_CHANGE_KEYBOARD_MAPPING, _SET_MODIFIER_MAPPING = 100, 118  # core request opcodes

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
# keysyms

_XK_BACKSPACE, _XK_TAB, _XK_RETURN, _XK_KP_ENTER, _XK_ISO_LEFT_TAB = 0xFF08, 0xFF09, 0xFF0D, 0xFF8D, 0xFE20
_NOT_TYPED = frozenset({_XK_RETURN, _XK_KP_ENTER, _XK_TAB, _XK_ISO_LEFT_TAB})
_MODIFIER_KEYSYMS: dict[int, str] = {
    0xFFE1: "shift", 0xFFE2: "shift", 0xFFE3: "ctrl", 0xFFE4: "ctrl",
    0xFFE7: "alt", 0xFFE8: "alt", 0xFFE9: "alt", 0xFFEA: "alt",
    0xFFEB: "super", 0xFFEC: "super", 0xFFED: "super", 0xFFEE: "super",
    0xFE03: "level3", 0xFF7E: "level3", 0xFE04: "level3", 0xFE11: "level5", 0xFE12: "level5",
    0xFFE5: "lock", 0xFFE6: "lock", 0xFF7F: "numlock",
    0xFE08: "group", 0xFE09: "group", 0xFE0A: "group", 0xFE0B: "group", 0xFE0C: "group",
    0xFE0D: "group", 0xFE0E: "group", 0xFE0F: "group",
}
_LONE_TAPS = frozenset({"alt", "super"})
_KEY_NAMES: dict[int, str] = {
    _XK_RETURN: "Return", _XK_TAB: "Tab", _XK_ISO_LEFT_TAB: "Tab", _XK_BACKSPACE: "BackSpace",
    0xFF1B: "Escape", 0xFFFF: "Delete", 0xFF63: "Insert", 0xFF50: "Home", 0xFF57: "End",
    0xFF55: "Page_Up", 0xFF56: "Page_Down", 0xFF51: "Left", 0xFF52: "Up", 0xFF53: "Right",
    0xFF54: "Down", _XK_KP_ENTER: "KP_Enter", 0xFF61: "Print", 0xFF13: "Pause", 0xFF14: "Scroll_Lock",
    0xFF67: "Menu", 0x20: "space",
}
_KEYPAD_CHARS: dict[int, str] = {
    0xFF80: " ", 0xFFAA: "*", 0xFFAB: "+", 0xFFAC: ",", 0xFFAD: "-", 0xFFAE: ".", 0xFFAF: "/", 0xFFBD: "=",
    **{0xFFB0 + n: str(n) for n in range(10)},
}
_DEAD_KEYS: dict[int, str] = {  # dead keysym -> combining mark
    0xFE50: "\u0300", 0xFE51: "\u0301", 0xFE52: "\u0302", 0xFE53: "\u0303", 0xFE54: "\u0304",
    0xFE55: "\u0306", 0xFE56: "\u0307", 0xFE57: "\u0308", 0xFE58: "\u030a", 0xFE59: "\u030b",
    0xFE5A: "\u030c", 0xFE5B: "\u0327", 0xFE5C: "\u0328",
}


@cache
def _legacy_chars() -> dict[int, str]:
    """Keysym -> character for the pre-Unicode keysyms (Cyrillic, Greek, EuroSign...).

    The table is pynput's (a dependency); it is loaded as a plain data file, since importing
    the pynput package connects to $DISPLAY.
    """
    try:
        spec = importlib.util.find_spec("pynput")
        roots = list(spec.submodule_search_locations or []) if spec else []
        for root in roots:
            path = f"{root}/_util/xorg_keysyms.py"
            file_spec = importlib.util.spec_from_file_location("_deskpilot_xorg_keysyms", path)
            if file_spec is None or file_spec.loader is None:
                continue
            module = importlib.util.module_from_spec(file_spec)
            file_spec.loader.exec_module(module)
            table: dict[int, str] = {}
            for keysym, char in module.SYMBOLS.values():
                if char and len(char) == 1 and unicodedata.category(char)[0] not in "CM":
                    table.setdefault(keysym, char)
            return table
    except Exception:  # the table only adds coverage; never fail on it
        pass
    return {}


@cache
def _legacy_keysyms() -> dict[str, int]:
    table: dict[str, int] = {}
    for keysym, char in _legacy_chars().items():
        table.setdefault(char, keysym)
    return table


def keysym_char(keysym: int) -> str | None:
    """The printable character a keysym types, or None (control, function and modifier keys)."""
    if 0x20 <= keysym <= 0x7E or 0xA0 <= keysym <= 0xFF:
        return chr(keysym)
    if 0x01000100 <= keysym <= 0x0110FFFF:
        char = chr(keysym - 0x01000000)
        return None if unicodedata.category(char)[0] == "C" else char
    if keysym in _KEYPAD_CHARS:
        return _KEYPAD_CHARS[keysym]
    if keysym >= 0xFD00 or keysym <= 0:  # function, keypad, modifier, dead and 3270 keys
        return None
    return _legacy_chars().get(keysym)


@cache
def _keysym_names() -> dict[int, str]:
    from Xlib import XK

    for group in ("latin1", "latin2", "latin3", "latin4", "greek", "cyrillic", "miscellany", "xkb",
                  "xf86", "special", "technical", "publishing"):
        XK.load_keysym_group(group)
    names: dict[int, str] = {}
    for attr, value in vars(XK).items():
        if attr.startswith("XK_") and isinstance(value, int):
            name = attr[3:]
            if name.startswith("XF86_"):
                name = "XF86" + name[5:]
            names.setdefault(value, name)
    return names


def keysym_name(keysym: int) -> str | None:
    """The xdotool name of a key (`Return`, `F5`, `a`, `comma`, `é`), or None if it has none."""
    from actions.keys import KeyNameError, resolve_key

    if keysym <= 0:
        return None
    if keysym in _KEY_NAMES:
        return _KEY_NAMES[keysym]
    char = keysym_char(keysym) if keysym not in _KEYPAD_CHARS else None
    if char is not None and (char.isalnum() or ord(char) > 0x7E):
        return char
    name = _keysym_names().get(keysym)
    if name is not None:
        try:
            return resolve_key(name)[0]
        except KeyNameError:
            pass
    return char


def _case_pair(keysym: int) -> tuple[int, int]:
    """(lower, upper) keysyms of a letter with both cases, else (keysym, keysym): X's rule."""
    from actions.keys import char_keysym

    char = keysym_char(keysym)
    if char and char.isalpha() and len(char.lower()) == 1 and len(char.upper()) == 1 and char.lower() != char.upper():
        lower, upper = char.lower(), char.upper()
        if keysym >= 0x01000000:  # stay in the Unicode keysym space it came from
            return 0x01000000 + ord(lower), 0x01000000 + ord(upper)
        if 0x20 <= keysym <= 0xFF:
            return char_keysym(lower), char_keysym(upper)
        table = _legacy_keysyms()
        return table.get(lower, keysym), table.get(upper, keysym)
    return keysym, keysym


def _combo(mods: frozenset[str] | set[str], key: str) -> str:
    return "+".join([*(m for m in MOD_ORDER if m in mods), key])


def _mod_text(mods: frozenset[str]) -> str | None:
    held = [m for m in MOD_ORDER if m in mods]
    return "+".join(held) if held else None


# ---------------------------------------------------------------------------------------------
# keyboard mapping


@dataclass(frozen=True)
class KeyInfo:
    """One decoded key event."""

    keycode: int
    keysym: int  # what the key produces in the event's modifier state
    base: int  # its unshifted keysym (group 1, level 1), which names it in combinations
    char: str | None  # the character it types, if printable
    modifier: str | None = None  # "shift", "ctrl", "alt", "super", "level3", "lock"... for modifier keys
    dead: str | None = None  # the combining mark of a dead key


class Keymap:
    """The server's keyboard and modifier mapping, decoding (keycode, state) like X clients do."""

    def __init__(self, min_keycode: int, rows: list[list[int]], modmap: list[list[int]]) -> None:
        self.rows: dict[int, list[int]] = {min_keycode + i: list(row) for i, row in enumerate(rows)}
        self.modmap = [list(codes) for codes in modmap] + [[] for _ in range(8 - len(modmap))]
        self.fetch: Callable[[int], list[int]] | None = None  # re-reads one row from the server

    @classmethod
    def from_display(cls, display: Any) -> Keymap:
        info = display.display.info
        count = info.max_keycode - info.min_keycode + 1
        rows = [list(row) for row in display.get_keyboard_mapping(info.min_keycode, count)]
        return cls(info.min_keycode, rows, [list(codes) for codes in display.get_modifier_mapping()])

    def change(self, first: int, per: int, keysyms: tuple[int, ...] | list[int]) -> None:
        """Apply a ChangeKeyboardMapping request."""
        if per <= 0:
            return
        for i in range(len(keysyms) // per):
            self.rows[first + i] = list(keysyms[i * per:(i + 1) * per])

    def set_modifiers(self, modmap: list[list[int]]) -> None:
        """Apply a SetModifierMapping request."""
        self.modmap = [[c for c in codes if c] for codes in modmap[:8]] + [[] for _ in range(8 - len(modmap))]

    def _col(self, keycode: int, column: int) -> int:
        row = self.rows.get(keycode) or []
        return row[column] if column < len(row) else 0

    def modifiers(self, state: int) -> frozenset[str]:
        """The names of the modifiers set in an event's state."""
        names: set[str] = set()
        fixed = {0: "shift", 1: "lock", 2: "ctrl"}
        for bit in range(8):
            if not state & (1 << bit):
                continue
            if bit in fixed:
                names.add(fixed[bit])
                continue
            kinds = {_MODIFIER_KEYSYMS.get(self._col(code, 0)) for code in self.modmap[bit]}
            for name in ("alt", "super", "level3", "level5", "numlock"):
                if name in kinds:
                    names.add(name)
                    break
        return frozenset(names)

    def decode(self, keycode: int, state: int) -> KeyInfo:
        """What a key press does in `state` (the core protocol's rules for groups and levels)."""
        row = self.rows.get(keycode) or []
        if not any(row) and self.fetch is not None:
            with contextlib.suppress(Exception):
                self.rows[keycode] = row = list(self.fetch(keycode))
        mods = self.modifiers(state)

        def pair(first: int) -> tuple[int, int]:
            low = row[first] if first < len(row) else 0
            high = row[first + 1] if first + 1 < len(row) else 0
            if not high:
                return _case_pair(low) if low else (0, 0)
            return low, high

        columns = [4, 2, 0] if "level3" in mods else [0]
        low = high = 0
        for first in columns:
            low, high = pair(first)
            if low or high:
                break
        shift = "shift" in mods
        keypad = "numlock" in mods and 0xFF80 <= high <= 0xFFBD  # Num Lock swaps a keypad key's levels
        keysym = high if shift != keypad else low
        if "lock" in mods:
            lower, upper = _case_pair(keysym)
            if lower != upper:
                keysym = lower if shift else upper
        base = next((k for k in row[:1] if k), keysym)
        modifier = _MODIFIER_KEYSYMS.get(keysym) or _MODIFIER_KEYSYMS.get(base)
        dead = _DEAD_KEYS.get(keysym)
        char = None if modifier or dead else keysym_char(keysym)
        return KeyInfo(keycode, keysym, base, char, modifier, dead)


# ---------------------------------------------------------------------------------------------
# raw events and the screenshots before them


@dataclass
class RawEvent:
    """One input event: kind key_down/key_up/button_down/button_up/motion, at monotonic time t."""

    kind: str
    t: float
    x: int = 0
    y: int = 0
    button: int = 0
    key: KeyInfo | None = None
    mods: frozenset[str] = frozenset()
    frame: Any = None


class FrameRing:
    """Grabs the screen continuously on a thread and keeps the last few frames."""

    def __init__(self, screen: Any, fps: float = FRAME_FPS, keep: int = FRAME_RING) -> None:
        self.screen = screen
        self.interval = 1.0 / fps
        self._frames: deque[Any] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deskpilot-record-frames", daemon=True)
        self.error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> FrameRing:
        """Start grabbing; returns once the first frame is there (or raises the grab's error)."""
        self._thread.start()
        if not self._first.wait(timeout):
            raise RuntimeError(f"no screenshot of the display within {timeout:.0f} s")
        if self.error is not None and not self._frames:
            raise self.error
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                frame = self.screen.grab()
            except Exception as exc:  # keep trying: the steps just lack fresh frames meanwhile
                self.error = exc
                self._first.set()
                if self._stop.wait(0.5):
                    break
                continue
            with self._lock:
                self._frames.append(frame)
            self._first.set()
            spent = time.monotonic() - began
            self._stop.wait(max(self.interval - spent, spent))  # at most half the time grabbing

    def before(self, t: float) -> Any:
        """The newest frame grabbed before monotonic time `t` (else the oldest one kept)."""
        with self._lock:
            frames = list(self._frames)
        for frame in reversed(frames):
            if frame.time <= t:
                return frame
        return frames[0] if frames else None

    def latest(self) -> Any:
        with self._lock:
            return self._frames[-1] if self._frames else None

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


class XRecordListener:
    """Every key, button and motion event of one X display, through the RECORD extension.

    `sink` receives RawEvents on the listener's thread, in server order; key presses and button
    presses carry the newest frame of `frames` grabbed before them.
    """

    def __init__(self, display: str, sink: Callable[[RawEvent], None], frames: FrameRing | None = None) -> None:
        from Xlib import X
        from Xlib import display as xdisplay
        from Xlib.ext import record
        from Xlib.protocol import rq

        self.display_name = display
        self._sink, self._frames = sink, frames
        self._record = record
        self._parser = rq.EventField(None)
        self._ctl = xdisplay.Display(display)
        self._rec = self._query = None
        try:
            if not self._ctl.has_extension("RECORD"):
                raise RuntimeError(f"the X server of {display} lacks the RECORD extension needed to record input")
            self._rec = xdisplay.Display(display)
            self._query = xdisplay.Display(display)  # used only by the listener thread
            self.keymap = Keymap.from_display(self._query)
            self.keymap.fetch = lambda code: list(self._query.get_keyboard_mapping(code, 1)[0])
            empty = {"core_requests": (0, 0), "core_replies": (0, 0), "ext_requests": (0, 0, 0, 0),
                     "ext_replies": (0, 0, 0, 0), "delivered_events": (0, 0), "device_events": (0, 0),
                     "errors": (0, 0), "client_started": False, "client_died": False}
            ranges = [
                {**empty, "core_requests": (_CHANGE_KEYBOARD_MAPPING, _CHANGE_KEYBOARD_MAPPING),
                 "device_events": (X.KeyPress, X.MotionNotify)},
                {**empty, "core_requests": (_SET_MODIFIER_MAPPING, _SET_MODIFIER_MAPPING)},
            ]
            self._ctx = self._rec.record_create_context(0, [record.AllClients], ranges)
        except BaseException:
            self._close_displays()
            raise
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deskpilot-record-input", daemon=True)
        self.error: BaseException | None = None
        self._offset = math.inf  # host monotonic seconds minus server seconds (its minimum)
        self._last_ms = -1
        self._wraps = 0
        self._stopped = False

    def start(self, timeout: float = 5.0) -> XRecordListener:
        """Start listening; returns once the server delivers events."""
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(self.error or f"the X RECORD extension of {self.display_name} did not start")
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._rec.record_enable_context(self._ctx, self._callback)
        except Exception as exc:
            if not self._stopped:
                self.error = exc
        finally:
            self._ready.set()

    def _callback(self, reply: Any) -> None:
        try:
            category = reply.category
            if category == self._record.StartOfData:
                self._ready.set()
            elif category == self._record.FromClient:
                self._requests(bytes(reply.data), bool(reply.client_swapped))
            elif category == self._record.FromServer:
                received = time.monotonic()
                data = reply.data
                while data and len(data) >= 32:
                    event, data = self._parser.parse_binary_value(data, self._rec.display, None, None)
                    self._event(event, received)
        except Exception as exc:  # a listener bug must not kill the recording: keep the first
            if self.error is None:
                self.error = exc

    def _requests(self, data: bytes, swapped: bool) -> None:
        little = (sys.byteorder == "little") != swapped
        order = "<" if little else ">"
        while len(data) >= 4:
            opcode, length = data[0], struct.unpack(order + "H", data[2:4])[0] * 4
            if length < 4 or length > len(data):
                return
            body, data = data[:length], data[length:]
            if opcode == _CHANGE_KEYBOARD_MAPPING and length >= 8:
                count, first, per = body[1], body[4], body[5]
                n = min(count * per, (length - 8) // 4)
                self.keymap.change(first, per, struct.unpack(f"{order}{n}I", body[8:8 + 4 * n]))
            elif opcode == _SET_MODIFIER_MAPPING:
                per = body[1]
                codes = body[4:4 + 8 * per]
                self.keymap.set_modifiers([list(codes[i * per:(i + 1) * per]) for i in range(8)])

    def _time(self, server_ms: int, received: float) -> float:
        if self._last_ms >= 0 and server_ms < self._last_ms - 2**31:
            self._wraps += 1
        self._last_ms = server_ms
        server = (server_ms + self._wraps * 2**32) / 1000.0
        self._offset = min(self._offset, received - server)
        return server + self._offset

    def _event(self, event: Any, received: float) -> None:
        from Xlib import X

        t = self._time(int(event.time), received)
        if was_injected(t):
            return
        kind = event.type
        x, y = int(event.root_x), int(event.root_y)
        if kind == X.MotionNotify:
            if event.state & 0x1F00:  # only while a button is held (drags)
                self._sink(RawEvent("motion", t, x, y))
            return
        mods = self.keymap.modifiers(event.state)
        frame = self._frames.before(t) if self._frames is not None else None
        if kind in (X.KeyPress, X.KeyRelease):
            key = self.keymap.decode(int(event.detail), int(event.state))
            name = "key_down" if kind == X.KeyPress else "key_up"
            self._sink(RawEvent(name, t, x, y, key=key, mods=mods, frame=frame))
        elif kind in (X.ButtonPress, X.ButtonRelease):
            name = "button_down" if kind == X.ButtonPress else "button_up"
            self._sink(RawEvent(name, t, x, y, button=int(event.detail), mods=mods, frame=frame))

    def stop(self) -> None:
        """Stop listening; every event the server recorded before is delivered first."""
        if not self._stopped:
            self._stopped = True
            with contextlib.suppress(Exception):
                self._ctl.record_disable_context(self._ctx)
                self._ctl.flush()
            self._thread.join(timeout=5)
            with contextlib.suppress(Exception):
                self._ctl.record_free_context(self._ctx)
        self._close_displays()

    def _close_displays(self) -> None:
        for conn in (self._ctl, self._rec, self._query):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()


# ---------------------------------------------------------------------------------------------
# merging raw events into steps


@dataclass
class Step:
    """A merged step: a canonical action, when it began, the frame before it, its target."""

    action: dict
    t: float
    frame: Any = None
    point: tuple[int, int] | None = None
    secret: tuple[str, str] | None = field(default=None, repr=False)  # (name, value); the value is never written


@dataclass
class _Group:
    kind: str  # type | key | click | scroll
    t0: float
    t_last: float
    frame: Any
    x: int = 0
    y: int = 0
    mods: frozenset[str] = frozenset()
    count: int = 1
    button: int = 0
    direction: str = ""
    combo: str = ""
    text: list[str] = field(default_factory=list, repr=False)  # may be secret
    secret: bool = False
    held: bool = False  # a click group whose last press is not released yet


@dataclass
class _Press:
    event: RawEvent
    continues: bool  # continues the pending click group (a double or triple click)
    moved: bool = False


def _near(ax: int, ay: int, bx: int, by: int, limit: float) -> bool:
    return abs(ax - bx) <= limit and abs(ay - by) <= limit


class Merger:
    """Turns a time-ordered stream of RawEvents into Steps (see the module docstring's rules).

    `feed` events in order, `tick(now)` now and then to close steps whose merge window has
    passed, `take()` the finished steps, `close()` at the end. `notice` is told about hotkeys.
    """

    def __init__(self, notice: Callable[[str], None] | None = None) -> None:
        self.notice = notice or (lambda message: None)
        self.pending: _Group | None = None
        self.secret_mode = False
        self.secret_names: list[str] = []
        self.stop_requested = False
        self._done: list[Step] = []
        self._down: dict[int, _Press] = {}
        self._lone: str | None = None
        self._dead: str | None = None

    # -- API -------------------------------------------------------------------------------------

    def feed(self, event: RawEvent) -> None:
        if self.stop_requested:
            return
        kind = event.kind
        if kind == "motion":
            for press in self._down.values():
                if not _near(press.event.x, press.event.y, event.x, event.y, DRAG_PX):
                    press.moved = True
        elif kind == "button_down":
            self._lone = None
            if event.button in _WHEEL:
                self._scroll(event)
            elif event.button in _CLICK_NAMES:
                self._press(event)
        elif kind == "button_up":
            if event.button in self._down:
                self._release(event)
        elif kind == "key_down":
            self._key(event)
        elif kind == "key_up":
            self._key_up(event)

    def tick(self, now: float) -> None:
        """Close the pending step if nothing can join it any more."""
        group = self.pending
        if group is None or group.held:
            return
        window = {"click": DOUBLE_CLICK_S, "scroll": SCROLL_RUN_S, "key": KEY_REPEAT_S,
                  "type": TYPE_IDLE_S}[group.kind]
        if now - group.t_last > window + TICK_SLACK_S:
            self._flush()

    def take(self) -> list[Step]:
        done, self._done = self._done, []
        return done

    def close(self, interrupted: bool = False) -> list[Step]:
        """Close everything still pending; with `interrupted`, drop a final lone ctrl+c."""
        group = self.pending
        if interrupted and group is not None and group.kind == "key" and group.combo == "ctrl+c" \
                and group.count == 1:
            self.pending = None
        if self.pending is not None:
            self.pending.held = False
        self._flush()
        self._down.clear()
        return self.take()

    # -- pointer ---------------------------------------------------------------------------------

    def _press(self, event: RawEvent) -> None:
        group = self.pending
        continues = (
            event.button == 1 and group is not None and group.kind == "click" and group.button == 1
            and not group.held and group.count < 3 and group.mods == event.mods
            and event.t - group.t_last <= DOUBLE_CLICK_S
            and _near(group.x, group.y, event.x, event.y, DOUBLE_CLICK_PX)
        )
        if continues:
            group.held = True
        else:
            self._flush()
        self._down[event.button] = _Press(event, continues)

    def _release(self, event: RawEvent) -> None:
        press = self._down.pop(event.button)
        start = press.event
        moved = press.moved or not _near(start.x, start.y, event.x, event.y, DRAG_PX)
        if press.continues and self.pending is not None and self.pending.kind == "click" and self.pending.held:
            group = self.pending
            group.held = False
            if event.button == 1 and moved:  # a double-click-and-drag: the clicks so far, then the drag
                self._flush()
            else:
                group.count += 1
                group.t_last = start.t
                if group.count >= 3:
                    self._flush()
                return
        self._flush()  # whatever began while the button was held (e.g. keys)
        if event.button == 1 and moved:
            action = {"action": "left_click_drag", "start_coordinate": [start.x, start.y],
                      "coordinate": [event.x, event.y]}
            if _mod_text(start.mods):
                action["text"] = _mod_text(start.mods)
            self._emit(Step(action, start.t, start.frame, (start.x, start.y)))
            return
        self.pending = _Group("click", start.t, start.t, start.frame, start.x, start.y, start.mods,
                              button=event.button)
        if event.button != 1:  # right and middle clicks never merge
            self._flush()

    def _scroll(self, event: RawEvent) -> None:
        direction = _WHEEL[event.button]
        group = self.pending
        if (group is not None and group.kind == "scroll" and group.direction == direction
                and group.mods == event.mods and event.t - group.t_last <= SCROLL_RUN_S
                and _near(group.x, group.y, event.x, event.y, SCROLL_RUN_PX) and group.count < MAX_SCROLL):
            group.count += 1
            group.t_last = event.t
            return
        self._flush()
        self.pending = _Group("scroll", event.t, event.t, event.frame, event.x, event.y, event.mods,
                              direction=direction)

    # -- keyboard --------------------------------------------------------------------------------

    def _key(self, event: RawEvent) -> None:
        key = event.key
        if key is None:
            return
        if key.modifier:
            self._lone = key.modifier if key.modifier in _LONE_TAPS else None
            return
        self._lone = None
        held = event.mods & _COMBO_MODS
        base = keysym_name(key.base) or ""
        if held == {"ctrl", "alt", "shift"} and base.lower() in ("s", "p"):
            self._hotkey(base.lower())
            return
        if held & _NAMED_MODS:
            if base:
                self._key_step(_combo(held, base), event)
            return
        if key.dead:
            self._dead = key.dead
            return
        if key.char is not None and key.keysym not in _NOT_TYPED:
            char = key.char
            if self._dead:
                composed = unicodedata.normalize("NFC", char + self._dead)
                char = composed if len(composed) == 1 else char
                self._dead = None
            self._type(char, event)
            return
        self._dead = None
        group = self.pending
        if key.keysym == _XK_BACKSPACE and not held and group is not None and group.kind == "type" \
                and group.secret == self.secret_mode and group.text:
            group.text.pop()
            group.t_last = event.t
            return
        name = keysym_name(key.base if "shift" in held else key.keysym)
        if name:
            self._key_step(_combo(held, name), event)

    def _key_up(self, event: RawEvent) -> None:
        key = event.key
        lone, self._lone = self._lone, None
        if key is not None and key.modifier and key.modifier == lone and not (event.mods & _COMBO_MODS) - {lone}:
            self._key_step(lone, event)

    def _hotkey(self, which: str) -> None:
        self._flush()
        if which == "s":
            self.stop_requested = True
            self.notice("stop hotkey pressed: finishing the recording")
            return
        self.secret_mode = not self.secret_mode
        if self.secret_mode:
            self.notice(f"secret mode on: text typed now is stored as {SECRET_PREFIX}{len(self.secret_names) + 1}, "
                        f"never in clear ({SECRET_HOTKEY} again to end it)")
        else:
            self.notice("secret mode off")

    def _type(self, char: str, event: RawEvent) -> None:
        group = self.pending
        if (group is not None and group.kind == "type" and group.secret == self.secret_mode
                and event.t - group.t_last <= TYPE_IDLE_S and len(group.text) < MAX_TYPE_CHARS):
            group.text.append(char)
            group.t_last = event.t
            return
        self._flush()
        self.pending = _Group("type", event.t, event.t, event.frame, event.x, event.y, text=[char],
                              secret=self.secret_mode)

    def _key_step(self, combo: str, event: RawEvent) -> None:
        group = self.pending
        if (group is not None and group.kind == "key" and group.combo == combo
                and event.t - group.t_last <= KEY_REPEAT_S and group.count < MAX_REPEAT):
            group.count += 1
            group.t_last = event.t
            return
        self._flush()
        self.pending = _Group("key", event.t, event.t, event.frame, event.x, event.y, combo=combo)

    # -- output ----------------------------------------------------------------------------------

    def _emit(self, step: Step) -> None:
        self._done.append(step)

    def _flush(self) -> None:
        group, self.pending = self.pending, None
        if group is None:
            return
        point = None
        secret = None
        if group.kind == "type":
            text = "".join(group.text)
            if not text:
                return
            if group.secret:
                name = f"{SECRET_PREFIX}{len(self.secret_names) + 1}"
                self.secret_names.append(name)
                action: dict = {"action": "type", "text": MASK, "secret": name}
                secret = (name, text)
            else:
                action = {"action": "type", "text": text}
        elif group.kind == "key":
            action = {"action": "key", "text": group.combo}
            if group.count > 1:
                action["repeat"] = group.count
        elif group.kind == "click":
            action = {"action": _CLICK_NAMES[group.button][group.count], "coordinate": [group.x, group.y]}
            point = (group.x, group.y)
        else:
            action = {"action": "scroll", "scroll_direction": group.direction, "scroll_amount": group.count,
                      "coordinate": [group.x, group.y]}
            point = (group.x, group.y)
        if group.kind in ("click", "scroll") and _mod_text(group.mods):
            action["text"] = _mod_text(group.mods)
        self._emit(Step(action, group.t0, group.frame, point, secret))


# ---------------------------------------------------------------------------------------------
# the command


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
    from agent.errors import EnvironmentProblem, ExitCode
    from agent.recording.writer import RecordingWriter
    from agent.session import RunOutcome, open_display
    from agent.types import RunResult, Usage
    from vision.capture import CaptureError, Screen

    stop = stop or threading.Event()
    usage = Usage()
    if not sys.platform.startswith("linux"):
        raise EnvironmentProblem(f"recording on {sys.platform} is not supported yet; deskpilot records X11 displays")
    install_executor_hook()
    with contextlib.ExitStack() as stack:
        if desktop is None:
            desktop = stack.enter_context(open_display(options.display, options.size))
        display = desktop.display
        screen = Screen(display)
        stack.callback(_quietly, screen.close)  # mss raises on close when the server is gone
        events: queue.SimpleQueue[RawEvent] = queue.SimpleQueue()
        try:
            size, scale = screen.size, screen.scale
            ring = FrameRing(screen)
            stack.callback(ring.stop)
            ring.start()
            listener = XRecordListener(display, events.put, ring)
            stack.callback(listener.stop)
            listener.start()
        except (CaptureError, RuntimeError, OSError) as exc:
            raise EnvironmentProblem(f"cannot record display {display}: {exc}") from None
        except Exception as exc:  # python-xlib's connection errors
            raise EnvironmentProblem(f"cannot record display {display}: {type(exc).__name__}: {exc}") from None

        writer = RecordingWriter(
            options.out, "human", screen={"width": size.width, "height": size.height, "scale": scale},
            extra_meta={"display": display, "hotkeys": {"stop": STOP_HOTKEY, "secret": SECRET_HOTKEY}})
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
                line = writer.add_step(action=step.action, source="human", frame=frame, anchor=anchor,
                                       at=round(max(0.0, step.t - started), 3))
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
            if interrupted:
                reason = "Ctrl-C" if interrupted[0] == signal.SIGINT else "SIGTERM"
            listener.stop()  # delivers everything recorded so far
            with contextlib.suppress(queue.Empty):
                while True:
                    merger.feed(events.get_nowait())
            write(merger.close(interrupted=bool(interrupted)))
            ring.stop()
            try:
                final = screen.grab()
            except CaptureError:
                final = ring.latest()
            if merger.secret_names:
                writer.set_meta(secrets=list(merger.secret_names))
            if error is not None:
                writer.finish("error", error=error, final_frame=final)
                result = RunResult("error", ExitCode.ENVIRONMENT, error, writer.steps, usage)
            else:
                message = f"recorded {writer.steps} steps; ended by {reason}"
                writer.finish("succeeded", final_frame=final)
                result = RunResult("succeeded", ExitCode.OK, message, writer.steps, usage)
        for name in merger.secret_names:
            say(f"secret text was recorded as {name}: set it in the environment before replaying (export {name}=...)")
        return RunOutcome(result, writer.path)


__all__ = [
    "Keymap", "Merger", "RawEvent", "Step", "XRecordListener", "FrameRing", "injecting", "was_injected",
    "install_executor_hook", "record", "STOP_HOTKEY", "SECRET_HOTKEY", "SECRET_PREFIX",
]
