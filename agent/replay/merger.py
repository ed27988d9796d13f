"""How a person's raw input events become recorded steps (canonical actions), for `deskpilot record`.

`Merger` is fed RawEvents in server order and produces Steps; it knows nothing of X or files.
Times are the events' times (seconds, monotonic).

Hotkeys (never recorded; the modifiers must be held exactly, no others): `ctrl+alt+shift+s`
stops the recording, `ctrl+alt+shift+p` toggles secret mode (see agent.replay.recorder). Text typed
in secret mode becomes a `type` step with text "•••" and `"secret": "RECORDED_SECRET_<n>"` (one
name per run of secret text); the Step keeps the value apart, for the writer's masking only.

The rules:
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
- `close(interrupted=True)` (Ctrl-C stopped the recording) drops a final pending "ctrl+c" key
  step: it was the interrupt typed in a terminal on the same display.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actions.keys import (
    MODIFIER_ORDER,
    XK_BACKSPACE,
    XK_ISO_LEFT_TAB,
    XK_KP_ENTER,
    XK_RETURN,
    XK_TAB,
    combo_text,
    keysym_name,
    modifier_text,
)
from actions.platform.base import WHEEL_BUTTONS, RawEvent

STOP_HOTKEY = "ctrl+alt+shift+s"
SECRET_HOTKEY = "ctrl+alt+shift+p"
SECRET_PREFIX = "RECORDED_SECRET_"
MASK = "•••"

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

_COMBO_MODS = frozenset(MODIFIER_ORDER)
_NAMED_MODS = frozenset({"ctrl", "alt", "super"})
_LONE_TAPS = frozenset({"alt", "super"})
_NOT_TYPED = frozenset({XK_RETURN, XK_KP_ENTER, XK_TAB, XK_ISO_LEFT_TAB})
_CLICK_NAMES = {1: {1: "left_click", 2: "double_click", 3: "triple_click"}, 2: {1: "middle_click"},
                3: {1: "right_click"}}


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
        """Take the next event (ignored once the stop hotkey was pressed)."""
        if self.stop_requested:
            return
        kind = event.kind
        if kind == "motion":
            for press in self._down.values():
                if not _near(press.event.x, press.event.y, event.x, event.y, DRAG_PX):
                    press.moved = True
        elif kind == "button_down":
            self._lone = None
            if event.button in WHEEL_BUTTONS:
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
        """The steps finished since the last call."""
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
            if modifier_text(start.mods):
                action["text"] = modifier_text(start.mods)
            self._emit(Step(action, start.t, start.frame, (start.x, start.y)))
            return
        self.pending = _Group("click", start.t, start.t, start.frame, start.x, start.y, start.mods,
                              button=event.button)
        if event.button != 1:  # right and middle clicks never merge
            self._flush()

    def _scroll(self, event: RawEvent) -> None:
        direction = WHEEL_BUTTONS[event.button]
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
                self._key_step(combo_text(held, base), event)
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
        if key.keysym == XK_BACKSPACE and not held and group is not None and group.kind == "type" \
                and group.secret == self.secret_mode and group.text:
            group.text.pop()
            group.t_last = event.t
            return
        name = keysym_name(key.base if "shift" in held else key.keysym)
        if name:
            self._key_step(combo_text(held, name), event)

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
        if group.kind in ("click", "scroll") and modifier_text(group.mods):
            action["text"] = modifier_text(group.mods)
        self._emit(Step(action, group.t0, group.frame, point, secret))

