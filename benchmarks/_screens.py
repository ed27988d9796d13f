"""Shared set-up for benchmarks: a virtual desktop showing realistic, text-heavy content."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from actions.platform.x11.desktop import VirtualDesktop
from vision.geometry import Size

ROOT = Path(__file__).resolve().parent.parent

_TEXT_WINDOW = """
import sys, tkinter as tk
root = tk.Tk(); root.overrideredirect(True)
root.geometry(f"{root.winfo_screenwidth()}x{root.winfo_screenheight()}+0+0")
text = tk.Text(root, font=("DejaVu Sans Mono", 11), wrap="none")
text.insert("1.0", open(sys.argv[1], encoding="utf-8").read() * 3)
text.pack(fill="both", expand=True)
root.mainloop()
"""


def text_desktop(size: Size) -> VirtualDesktop:
    """A virtual desktop with a full-screen window of source code (a busy, realistic screen)."""
    desktop = VirtualDesktop(size).start()
    desktop.launch([sys.executable, "-c", _TEXT_WINDOW, str(ROOT / "actions" / "executor.py")])
    time.sleep(1.5)
    return desktop


def median_ms(samples: list[float]) -> float:
    """Median of samples in seconds, as milliseconds rounded to 0.1."""
    ordered = sorted(samples)
    mid = len(ordered) // 2
    value = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return round(value * 1000, 1)
