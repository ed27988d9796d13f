"""A Tk window that reacts to a click after a delay, for settle tests and benchmarks.

`python reactive_window.py DELAY_MS [ANIMATE_MS]`: covers the screen; each click changes the
background colour DELAY_MS later; with ANIMATE_MS it then keeps changing every 20 ms for that
long.
"""

from __future__ import annotations

import itertools
import sys
import tkinter as tk

COLOURS = ["#1e88e5", "#43a047", "#e53935", "#fdd835", "#8e24aa", "#00acc1"]


def main(delay_ms: int, animate_ms: int = 0) -> None:
    """Run the window until it is killed."""
    root = tk.Tk()
    root.overrideredirect(True)
    root.geometry(f"{root.winfo_screenwidth()}x{root.winfo_screenheight()}+0+0")
    canvas = tk.Canvas(root, bg="white", highlightthickness=0)
    canvas.pack(fill="both", expand=True)
    colours = itertools.cycle(COLOURS)
    label = canvas.create_text(200, 100, text="clicks: 0", font=("DejaVu Sans", 24))
    clicks = itertools.count(1)

    def change(remaining_ms: int) -> None:
        canvas.configure(bg=next(colours))
        if remaining_ms > 0:
            root.after(20, change, remaining_ms - 20)

    def react() -> None:
        canvas.itemconfigure(label, text=f"clicks: {next(clicks)}")
        change(animate_ms)

    canvas.bind("<ButtonRelease-1>", lambda _: root.after(delay_ms, react))
    root.mainloop()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
