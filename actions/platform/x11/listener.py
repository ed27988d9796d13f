"""Every key, button and pointer event of an X display, through the RECORD extension.

One listener serves `deskpilot record` and the kill switch. It uses python-xlib on connections
opened with the display's name (the mechanism of pynput's X backend, which is not used itself
because it connects to $DISPLAY on import and decodes keys with the keymap of its start, so
characters typed through re-mapped keycodes arrive as NoSymbol). The recorded stream also carries
the ChangeKeyboardMapping and SetModifierMapping requests of every client, in server order, so the
keymap used to decode each key is the one the server used. Event times are the server's, mapped
onto this host's time.monotonic().
"""

from __future__ import annotations

import contextlib
import math
import struct
import sys
import threading
import time
from typing import Any

from actions.platform.base import RawEvent, Sink
from actions.platform.x11.keymap import Keymap
from vision.geometry import Size

_CHANGE_KEYBOARD_MAPPING, _SET_MODIFIER_MAPPING = 100, 118  # core request opcodes
_BUTTONS_HELD = 0x1F00  # Button1Mask..Button5Mask of an event's state


class XRecordListener:
    """Every key, button and drag motion event of one X display (all motion with `motion`).

    `sink` receives RawEvents on the listener's thread, in server order.
    """

    def __init__(self, display: str, sink: Sink, motion: bool = False) -> None:
        from Xlib import X
        from Xlib import display as xdisplay
        from Xlib.ext import record
        from Xlib.protocol import rq

        self.display_name = display
        self._sink, self._motion = sink, motion
        self._record = record
        self._parser = rq.EventField(None)
        self._ctl = xdisplay.Display(display)
        self._rec = self._query = None
        try:
            if not self._ctl.has_extension("RECORD"):
                raise RuntimeError(f"the X server of {display} lacks the RECORD extension needed to record input")
            screen = self._ctl.screen()
            self.size = Size(screen.width_in_pixels, screen.height_in_pixels)
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
        """Whether the listener's thread still receives events."""
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
        except Exception as exc:  # a listener or sink bug must not end the listening: keep the first
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
        kind = event.type
        x, y = int(event.root_x), int(event.root_y)
        if kind == X.MotionNotify:
            if self._motion or event.state & _BUTTONS_HELD:  # else only while a button is held (drags)
                self._sink(RawEvent("motion", t, x, y))
            return
        mods = self.keymap.modifiers(event.state)
        if kind in (X.KeyPress, X.KeyRelease):
            key = self.keymap.decode(int(event.detail), int(event.state))
            name = "key_down" if kind == X.KeyPress else "key_up"
            self._sink(RawEvent(name, t, x, y, key=key, mods=mods))
        elif kind in (X.ButtonPress, X.ButtonRelease):
            name = "button_down" if kind == X.ButtonPress else "button_up"
            self._sink(RawEvent(name, t, x, y, button=int(event.detail), mods=mods))

    def stop(self) -> None:
        """Stop listening; every event the server recorded before is delivered first."""
        if not self._stopped:
            self._stopped = True
            with contextlib.suppress(Exception):
                self._ctl.record_disable_context(self._ctx)
                self._ctl.flush()
            if self._thread.ident is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=5)
            with contextlib.suppress(Exception):
                self._ctl.record_free_context(self._ctx)
        self._close_displays()

    def _close_displays(self) -> None:
        for conn in (self._ctl, self._rec, self._query):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
