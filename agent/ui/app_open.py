"""Opening files and folders from the app with the desktop's own programs (no Tk here).

- a task file opens in the system editor: `xdg-open` (the desktop's program for YAML files) where it
  exists, else `$VISUAL`, else `$EDITOR` (a graphical editor there: nothing gives a terminal one a
  terminal), `open -t` on macOS, `notepad` on Windows;
- a folder opens in the file manager: `xdg-open`, `open` on macOS, `explorer` on Windows.

`launch(argv)` starts the program detached (its own session, no input, its output discarded), so it
outlives neither more nor less than it would from a desktop menu, and never blocks the window.
`LAUNCHED` lists what was started in this process (tests read it; nothing else does).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

LAUNCHED: list[list[str]] = []


def editor_command(path: Path, env: Mapping[str, str] | None = None,
                   which: Callable[[str], str | None] = shutil.which, platform: str = sys.platform) -> list[str] | None:
    """The command that opens `path` in the system editor, or None when there is none."""
    env = os.environ if env is None else env
    if platform == "darwin":
        return ["open", "-t", str(path)]
    if platform.startswith("win"):
        return ["notepad", str(path)]
    if which("xdg-open"):
        return ["xdg-open", str(path)]
    for name in ("VISUAL", "EDITOR"):
        value = (env.get(name) or "").strip()
        if value:
            try:
                words = shlex.split(value)
            except ValueError:
                continue
            if words and which(words[0]):
                return [*words, str(path)]
    return None


def folder_command(path: Path, which: Callable[[str], str | None] = shutil.which,
                   platform: str = sys.platform) -> list[str] | None:
    """The command that shows folder `path` in the file manager, or None when there is none."""
    if platform == "darwin":
        return ["open", str(path)]
    if platform.startswith("win"):
        return ["explorer", str(path)]
    return ["xdg-open", str(path)] if which("xdg-open") else None


def launch(argv: list[str]) -> None:
    """Start `argv` detached from the app (OSError when it cannot start)."""
    LAUNCHED.append(list(argv))
    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True)


def open_in_editor(path: Path) -> str:
    """Open a task file in the system editor; what was done, for the status line. OSError when it cannot."""
    argv = editor_command(path)
    if argv is None:
        raise OSError(f"no program to open {path} with: install xdg-utils, or set $VISUAL or $EDITOR")
    launch(argv)
    return f"opened {path.name} with {Path(argv[0]).name}"


def show_folder(path: Path) -> str:
    """Show a folder in the file manager; what was done, for the status line. OSError when it cannot."""
    argv = folder_command(path)
    if argv is None:
        raise OSError(f"no file manager to show {path} with: install xdg-utils (xdg-open)")
    launch(argv)
    return f"showing {path}"
