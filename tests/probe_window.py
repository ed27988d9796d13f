"""A Tk window that covers the screen and records every event it receives as JSON lines.

Run as `python probe_window.py OUT.jsonl`. The first line is {"type": "ready", ...} once the
window is mapped and focused. Each event line holds its type and, as applicable, the button,
root coordinates, keysym, character, modifier state, scroll direction and the X server's timestamp
of the event in milliseconds ("xtime"; "t" is the wall-clock time the probe wrote the line). The text typed into
the window's text area is recorded as {"type": "text", "value": ...} after each key release.
"""

from __future__ import annotations

import json
import sys
import time
import tkinter as tk

SCROLL = {4: "up", 5: "down", 6: "left", 7: "right"}
# Tk 8.6 delivers X buttons 6/7 (horizontal wheel) as buttons 4/5 with Shift in the state.
SHIFTED_SCROLL = {4: "left", 5: "right"}


def main(path: str) -> None:
    """Open the probe window and record events into `path` until it is closed."""
    out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the window's life

    def write(record: dict) -> None:
        record["t"] = time.time()  # wall clock, comparable with the test process
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()

    root = tk.Tk()
    width, height = root.winfo_screenwidth(), root.winfo_screenheight()
    root.overrideredirect(True)
    root.geometry(f"{width}x{height}+0+0")
    text = tk.Text(root, font=("DejaVu Sans", 14), bg="white")
    text.pack(fill="both", expand=True)

    def button(kind: str):
        def handler(event: tk.Event) -> None:
            record = {"type": kind, "button": event.num, "x": event.x_root, "y": event.y_root,
                      "state": event.state, "xtime": event.time}
            if kind == "press" and event.num in SCROLL:
                shifted = event.state & 0x1 and event.num in SHIFTED_SCROLL
                record["scroll"] = SHIFTED_SCROLL[event.num] if shifted else SCROLL[event.num]
            write(record)
        return handler

    def key(kind: str):
        def handler(event: tk.Event) -> None:
            write({"type": kind, "keysym": event.keysym, "char": event.char, "state": event.state,
                   "xtime": event.time})
            if kind == "keyrelease":
                write({"type": "text", "value": text.get("1.0", "end-1c")})
        return handler

    def motion(event: tk.Event) -> None:
        write({"type": "motion", "x": event.x_root, "y": event.y_root, "state": event.state})

    # a tag of our own, first in line, so no class or `all` binding (e.g. <Alt-Key>) hides an event
    text.bindtags(("probe", *text.bindtags()))
    root.bind_class("probe", "<ButtonPress>", button("press"))
    root.bind_class("probe", "<ButtonRelease>", button("release"))
    root.bind_class("probe", "<KeyPress>", key("keypress"))
    root.bind_class("probe", "<KeyRelease>", key("keyrelease"))
    root.bind_class("probe", "<Motion>", motion)

    def ready() -> None:
        text.focus_force()
        write({"type": "ready", "width": width, "height": height})

    root.after(200, ready)
    root.mainloop()


if __name__ == "__main__":
    main(sys.argv[1])
