"""Real GTK applications on a virtual desktop, for the OCR tests and the ocr_find benchmark.

mousepad (a text editor) shows a 45-line notes file full of the same few words, so that a phrase
has many near misses; galculator shows its keypad. Both come from Debian (scripts/setup).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

PHRASE = "archive the quarterly ledger"
TARGET_LINE = "Remember to archive the quarterly ledger before Friday"
TARGET_INDEX = 30  # 0-based line of the file
_WORDS = ["alpha", "budget", "archive", "ledger", "quarterly", "report", "invoice", "review", "notes", "draft",
          "summary", "meeting", "travel", "expenses", "vendor", "payment", "schedule", "backup", "server", "office",
          "supplies", "client", "contract"]
_DECOYS = {12: "archive the quarterly budget before Monday", 20: "the ledger archive is quarterly",
           36: "archive the monthly ledger"}


def notes_text() -> str:
    """The 45 lines: random words, a few near misses of PHRASE, and TARGET_LINE once."""
    rng = random.Random(7)
    lines = [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 9))) for _ in range(45)]
    lines[TARGET_INDEX] = TARGET_LINE
    for i, text in _DECOYS.items():
        lines[i] = text
    return "\n".join(lines) + "\n"


def gtk_env(home: Path) -> dict[str, str]:
    """Environment for a GTK application with a private home and no session services to look for."""
    home.mkdir(parents=True, exist_ok=True)
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local"),
            "XDG_CACHE_HOME": str(home / ".cache"), "GSETTINGS_BACKEND": "memory", "NO_AT_BRIDGE": "1"}


def require(*programs: str) -> None:
    """Fail clearly when a program scripts/setup installs is missing."""
    missing = [p for p in programs if shutil.which(p) is None]
    assert not missing, f"{', '.join(missing)} missing: run scripts/setup (apt-get install {' '.join(missing)})"


def place_window(display: str, wm_class: str, geometry: tuple[int, int, int, int] | None) -> None:
    """Wait for the application's window, then move and resize it to (x, y, width, height)."""
    env = dict(os.environ, DISPLAY=display)
    search = ["xdotool", "search", "--sync", "--onlyvisible", "--class", wm_class]
    subprocess.run(search, env=env, check=True, capture_output=True, timeout=30)
    if geometry is not None:
        x, y, w, h = geometry
        subprocess.run([*search, "windowsize", "%@", str(w), str(h), "windowmove", "%@", str(x), str(y)],
                       env=env, check=True, capture_output=True, timeout=30)


def wait_still(screen: Any, settle: float = 0.6, timeout: float = 20.0) -> Any:
    """Grab until the screen has not changed for `settle` seconds; the last frame."""
    frame, since = screen.grab(), time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.15)
        now = screen.grab()
        if not now.same_as(frame):
            frame, since = now, time.monotonic()
        elif time.monotonic() - since >= settle:
            return frame
    raise AssertionError("the screen never stopped changing")


def start_mousepad(desktop: Any, folder: Path) -> Path:
    """mousepad full screen showing the notes file (written to `folder`); returns the file's path."""
    require("mousepad", "xdotool")
    path = folder / "notes.txt"
    path.write_text(notes_text(), encoding="utf-8")
    desktop.launch(["mousepad", str(path)], env=gtk_env(folder / "home"))
    size = desktop.size()
    place_window(desktop.display, "mousepad", (0, 0, size.width, size.height))
    return path


def start_galculator(desktop: Any, folder: Path) -> None:
    """galculator at the top left of the screen."""
    require("galculator", "xdotool")
    desktop.launch(["galculator"], env=gtk_env(folder / "home"))
    place_window(desktop.display, "galculator", None)
