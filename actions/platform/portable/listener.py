"""Every key, button and pointer event of a display, through pynput's keyboard and mouse listeners.

pynput reports keys as `Key` members or `KeyCode`s, buttons by name, the wheel as scroll
deltas, positions in the pointer API's points, and no times. The listener turns them into the
RawEvents the x11 listener sends (X keysyms, X button numbers, wheel buttons 4-7, screen
pixels, monotonic arrival times, the modifier kinds held), so `deskpilot record`'s merger and
the kill switch work unchanged. Its two pynput listeners run on their own threads; events go to
the sink one at a time, in arrival order.

What pynput cannot tell, and so the events do not carry: the key's keycode (0), Caps Lock's
state, and the unshifted key of a shifted symbol (ctrl+shift+1 is recorded as ctrl+shift+exclam;
letters are named by their lower case, as on X). On X pynput reads the keyboard map once, when
it starts: characters another program types by re-mapping keycodes on the fly (xdotool's type
does, for characters the map lacks) arrive as unknown keys and are not recorded; use the x11
backend to record those.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from actions.keys import DEAD_KEYS, MODIFIER_KEYSYMS, case_pair, char_keysym, keysym_char
from actions.platform.base import KeyInfo, RawEvent, Sink
from actions.platform.portable.keynames import PYNPUT_KEYSYMS
from vision.geometry import ScreenMap, Size

READY_GRACE_S = 0.05  # pynput reports ready just before its X listener enables recording
MAX_NOTCHES = 50
STOP_WAIT_S = 2.0
_TRACKED = frozenset({"shift", "ctrl", "alt", "super", "level3", "level5"})


def key_info(key: Any, x_keysyms: bool, held: frozenset[str]) -> KeyInfo | None:
    """A pynput key as KeyInfo: on X its `vk` is the keysym; elsewhere keys are known by name or character."""
    if key is None:
        return None
    value = getattr(key, "value", None)
    name = getattr(key, "name", None)
    code = value if value is not None and hasattr(value, "vk") else key  # a Key member wraps a KeyCode
    vk, char = getattr(code, "vk", None), getattr(code, "char", None)
    if x_keysyms and vk:
        keysym = int(vk)
    elif name in PYNPUT_KEYSYMS:
        keysym = PYNPUT_KEYSYMS[name]
    elif char:
        if len(char) == 1 and ord(char) < 0x20 and "ctrl" in held:  # Windows reports ctrl+a as "\x01"
            char = chr(ord(char) + 0x60)
        keysym = char_keysym(char) if len(char) == 1 else 0
    else:
        keysym = 0
    modifier = MODIFIER_KEYSYMS.get(keysym)
    dead = DEAD_KEYS.get(keysym) or (getattr(code, "combining", None) if getattr(code, "is_dead", False) else None)
    typed = None if modifier or dead else keysym_char(keysym)
    return KeyInfo(0, keysym, case_pair(keysym)[0], typed, modifier, dead)


class PynputListener:
    """Every key, button and drag motion of one display (all motion with `motion`), from pynput.

    `keyboard` and `mouse` are pynput's modules (tests pass doubles); `scale` is pixels per point.
    """

    def __init__(self, display: str | None, sink: Sink, motion: bool, *, keyboard: Any, mouse: Any, size: Size,
                 scale: float = 1.0, x_keysyms: bool = False,
                 connect: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext) -> None:
        self.display_name, self.size = display, size
        self.error: BaseException | None = None
        self._sink, self._motion, self._x = sink, motion, x_keysyms
        self._map = ScreenMap(size, size, scale)
        self._connect = connect  # sets $DISPLAY while pynput connects (on X)
        self._lock = threading.Lock()
        self._mods: dict[int, str] = {}  # modifier keysyms held -> their kind
        self._buttons: set[int] = set()
        self._last: tuple[float, float] = (0, 0)  # the pointer's last position, in points
        self._button_numbers = {"left": 1, "middle": 2, "right": 3}
        self._keyboard = keyboard.Listener(on_press=self._key(True), on_release=self._key(False))
        self._mouse = mouse.Listener(on_move=self._on_move, on_click=self._on_click, on_scroll=self._on_scroll)
        self._stopped = False

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 5.0) -> PynputListener:
        """Start both pynput listeners; returns once both are ready. RuntimeError if they are not."""
        with self._connect():
            self._keyboard.start()
            self._mouse.start()
            deadline = time.monotonic() + timeout
            for listener in (self._keyboard, self._mouse):
                ready = threading.Event()
                threading.Thread(target=lambda li=listener, done=ready: (li.wait(), done.set()), daemon=True).start()
                while not ready.wait(0.02):
                    if not listener.is_alive() or time.monotonic() > deadline:
                        self.stop()
                        why = "did not start in time" if listener.is_alive() else "stopped at once"
                        raise RuntimeError(f"pynput's input listener on {self.display_name or 'the screen'} {why}"
                                           f"{_failure(listener)}")
        time.sleep(READY_GRACE_S)
        return self

    @property
    def alive(self) -> bool:
        """Whether both pynput listeners still run."""
        return not self._stopped and self._keyboard.is_alive() and self._mouse.is_alive()

    def stop(self) -> None:
        """Stop listening; events seen before are delivered first."""
        if self._stopped:
            return
        self._stopped = True
        for listener in (self._keyboard, self._mouse):
            with contextlib.suppress(Exception):
                listener.stop()
            if self._x:
                self._end_recording(listener)
        for listener in (self._keyboard, self._mouse):
            if listener.ident is not None and listener is not threading.current_thread():
                with contextlib.suppress(Exception):  # pynput re-raises the error that ended its thread
                    listener.join(timeout=STOP_WAIT_S)

    def _end_recording(self, listener: Any) -> None:
        """On X, pynput's stop takes effect at the listener's next event; ending its RECORD context ends it now.

        The context's id is pynput's `_context`; without it the thread ends at the next event.
        """
        context = getattr(listener, "_context", None)
        if context is None or not self.display_name:
            return
        with contextlib.suppress(Exception):
            from Xlib import display as xdisplay

            conn = xdisplay.Display(self.display_name)
            try:
                conn.record_disable_context(context)
                conn.sync()
            finally:
                conn.close()

    # --- events ----------------------------------------------------------------------------
    def _send(self, event: RawEvent) -> None:
        try:
            self._sink(event)
        except Exception as exc:  # a sink bug must not end the listening: keep the first
            if self.error is None:
                self.error = exc

    def _key(self, down: bool) -> Callable[..., None]:
        def handler(key: Any, injected: bool = False) -> None:
            with self._lock:
                t = time.monotonic()
                held = frozenset(self._mods.values())
                info = key_info(key, self._x, held)
                if info is None:
                    return
                if info.modifier in _TRACKED:
                    if down:
                        self._mods[info.keysym] = info.modifier
                    else:
                        self._mods.pop(info.keysym, None)
                        if info.modifier == "alt":  # Alt pressed with Shift held is released as Meta on X
                            self._mods = {k: v for k, v in self._mods.items() if v != "alt"}
                x, y = self._pixels(*self._last)
                self._send(RawEvent("key_down" if down else "key_up", t, x, y, key=info, mods=held))

        return handler

    def _pixels(self, x: float, y: float) -> tuple[int, int]:
        px, py = self._map.from_points(x, y)
        return min(max(px, 0), self.size.width - 1), min(max(py, 0), self.size.height - 1)

    def _on_move(self, x: float, y: float, injected: bool = False) -> None:
        with self._lock:
            self._last = (x, y)
            if self._motion or self._buttons:  # else only while a button is held (drags)
                self._send(RawEvent("motion", time.monotonic(), *self._pixels(x, y)))

    def _on_click(self, x: float, y: float, button: Any, pressed: bool, injected: bool = False) -> None:
        with self._lock:
            self._last = (x, y)
            name = getattr(button, "name", str(button))
            number = self._button_numbers.get(name) or (int(name[6:]) if name.startswith("button") and
                                                        name[6:].isdigit() else 0)
            if not number:
                return
            if pressed:
                self._buttons.add(number)
            else:
                self._buttons.discard(number)
            self._send(RawEvent("button_down" if pressed else "button_up", time.monotonic(), *self._pixels(x, y),
                                button=number, mods=frozenset(self._mods.values())))

    def _on_scroll(self, x: float, y: float, dx: float, dy: float, injected: bool = False) -> None:
        with self._lock:
            self._last = (x, y)
            t, (px, py) = time.monotonic(), self._pixels(x, y)
            mods = frozenset(self._mods.values())
            for number, amount in ((4, dy), (5, -dy), (7, dx), (6, -dx)):  # up, down, right, left
                for _ in range(min(MAX_NOTCHES, max(0, round(amount)))):
                    for kind in ("button_down", "button_up"):
                        self._send(RawEvent(kind, t, px, py, button=number, mods=mods))


def _failure(listener: Any) -> str:
    try:
        listener.join(timeout=0.5)  # pynput re-raises the error that ended its thread here
    except Exception as exc:
        return f": {type(exc).__name__}: {exc}"
    return ""
