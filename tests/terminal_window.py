"""A pretend terminal for the policy tests: a Tk window whose class is in no terminal list, titled "Terminal - Bash".

Run as `python terminal_window.py OUT.jsonl CLASS TITLE`. It writes {"type": "ready"} once focused,
then one line per key press ({"type": "key", "keysym", "char"}), so a test sees exactly what reached it.
"""

from __future__ import annotations

import json
import sys
import tkinter as tk


def main(path: str, class_name: str, title: str) -> None:
    """Open the window and log every key press into `path` until it is closed."""
    out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the window's life

    def write(record: dict) -> None:
        out.write(json.dumps(record) + "\n")
        out.flush()

    root = tk.Tk(className=class_name)
    root.title(title)
    root.geometry("600x300+20+20")
    text = tk.Text(root, font=("DejaVu Sans Mono", 12))
    text.pack(fill="both", expand=True)
    text.bind("<KeyPress>", lambda e: write({"type": "key", "keysym": e.keysym, "char": e.char}))

    def ready() -> None:
        root.focus_force()
        text.focus_force()
        write({"type": "ready"})

    root.after(300, ready)
    root.mainloop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
