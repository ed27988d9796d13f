"""The screens `ocr_find` reads, each on a private virtual desktop: a Tk settings window, mousepad showing a
notes file, and (optional) xterm showing a file listing; each with a phrase to find and a small change to make."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

APP = r'''
import queue, sys, threading, tkinter as tk
root = tk.Tk(); root.overrideredirect(True); root.geometry("1920x1080+0+0")
F = ("DejaVu Sans", -13); B = ("DejaVu Sans", -13, "bold"); T = ("DejaVu Sans", -20, "bold")
menu = tk.Frame(root, bg="#f0f0f0"); menu.pack(fill="x")
for m in "File Edit View Insert Format Tools Window Help".split():
    tk.Label(menu, text=m, font=F, bg="#f0f0f0", padx=10, pady=4).pack(side="left")
bar = tk.Frame(root, bg="#e4e4e4"); bar.pack(fill="x")
for b in ["New", "Open", "Save", "Save as", "Undo", "Redo", "Cut", "Copy", "Paste", "Find", "Replace",
          "Print", "Export PDF"]:
    tk.Button(bar, text=b, font=F).pack(side="left", padx=3, pady=4)
status = tk.Label(root, text="Connected as ada@example.com  |  Last saved 2 minutes ago  |  Version 4.2.1",
                  font=F, anchor="w", bg="#f0f0f0")
status.pack(fill="x", side="bottom")
body = tk.Frame(root); body.pack(fill="both", expand=True)
side = tk.Frame(body, bg="#2b2f36", width=260); side.pack(side="left", fill="y")
for s in ["Dashboard", "Projects", "Recent files", "Shared with me", "Starred", "Trash", "Team members",
          "Billing", "Integrations", "Notifications", "Security", "Audit log", "API keys", "Help center"]:
    tk.Label(side, text=s, font=F, bg="#2b2f36", fg="#e8e8e8", anchor="w", padx=16, pady=6).pack(fill="x")
feed = tk.Frame(body, padx=16, pady=16, bg="#fafafa"); feed.pack(side="right", fill="y")
tk.Label(feed, text="Recent activity", font=B, bg="#fafafa").pack(anchor="w", pady=(0, 8))
for a in ["Grace commented on Q3 roadmap", "Charles shared Engine drawings", "You renamed Notes to Notes v2",
          "Build 4.2.1 was published", "Mary joined the Analysis team", "Backup completed at 02:00",
          "Invoice 2024-031 was paid", "Ada updated Account settings"]:
    tk.Label(feed, text=a, font=F, bg="#fafafa", anchor="w").pack(anchor="w", pady=3)
main = tk.Frame(body, padx=24, pady=16); main.pack(side="left", fill="both", expand=True)
tk.Label(main, text="Account settings", font=T).grid(row=0, column=0, columnspan=4, sticky="w", pady=(0, 12))
fields = ["First name", "Last name", "Email address", "Phone number", "Company", "Job title",
          "Street address", "City", "Postal code", "Country", "Time zone", "Language", "Date format",
          "Currency"]
values = ["Ada", "Lovelace", "ada@example.com", "+44 20 7946 0958", "Analytical Engines Ltd", "Mathematician",
          "12 St James's Square", "London", "SW1Y 4JH", "United Kingdom", "Europe/London", "English (UK)",
          "DD/MM/YYYY", "GBP"]
for i, (f, v) in enumerate(zip(fields, values)):
    r, c = 1 + i % 7, (i // 7) * 2
    tk.Label(main, text=f + ":", font=F, anchor="e").grid(row=r, column=c, sticky="e", padx=8, pady=5)
    e = tk.Entry(main, font=F, width=28); e.insert(0, v); e.grid(row=r, column=c + 1, sticky="w", pady=5)
opts = tk.LabelFrame(main, text="Notifications", font=B, padx=10, pady=8)
opts.grid(row=8, column=0, columnspan=4, sticky="we", pady=12)
options = ["Email me when someone shares a file", "Send a weekly summary", "Notify me about comments",
           "Play a sound for new messages", "Show desktop notifications", "Remind me of due tasks"]
for i, o in enumerate(options):
    tk.Checkbutton(opts, text=o, font=F).grid(row=i // 2, column=i % 2, sticky="w", padx=6)
txt = tk.Text(main, font=F, height=8, width=110, wrap="word")
txt.grid(row=9, column=0, columnspan=4, sticky="w")
txt.insert("1.0", "Your profile is visible to members of your organisation. Changes to your email address "
 "must be confirmed from the new address before they take effect. Two-factor authentication is enabled "
 "for this account; recovery codes were generated on 3 March 2024.\n\nExported data includes projects, "
 "comments and activity history. Large exports can take several minutes and are delivered by email as a "
 "compressed archive. Deleting your account removes all personal data after a 30-day grace period.")
btns = tk.Frame(main); btns.grid(row=10, column=0, columnspan=4, sticky="e", pady=16)
draft = tk.Label(btns, text="Draft saved at 10:15:00", font=F, fg="#555555"); draft.pack(side="left", padx=24)
for b in ["Delete account", "Reset", "Cancel", "Apply", "Save changes"]:
    tk.Button(btns, text=b, font=F, padx=10).pack(side="left", padx=6)
inbox = queue.Queue()
threading.Thread(target=lambda: [inbox.put(line.rstrip("\n")) for line in sys.stdin], daemon=True).start()
def poll():
    while not inbox.empty():
        draft.config(text=inbox.get()); root.update(); print("ok", flush=True)
    root.after(10, poll)
def ready():
    root.update(); print("ready", flush=True); poll()
root.after(200, ready)
root.mainloop()
'''


def start_xvfb(size: str) -> tuple[subprocess.Popen, str]:
    """A private Xvfb; its display name comes back through -displayfd."""
    read_fd, write_fd = os.pipe()
    argv = ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{size}x24", "-nolisten", "tcp"]
    xvfb = subprocess.Popen(argv, pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    number = b""
    while not number.endswith(b"\n"):
        chunk = os.read(read_fd, 16)
        if not chunk:
            raise RuntimeError("Xvfb did not start")
        number += chunk
    os.close(read_fd)
    return xvfb, ":" + number.decode().strip()


@dataclass
class Screen:
    """A screen under test: its frame, phrase, and how to make a small change (returns the new text)."""

    name: str
    phrase: str
    grab: Callable[[], Any]
    change: Callable[[int], str]


@contextmanager
def tk_screen() -> Iterator[Screen]:
    """The Tk settings window on a 1920x1080 Xvfb; a change sets the status label."""
    xvfb, display = start_xvfb("1920x1080")
    app = subprocess.Popen([sys.executable, "-c", APP], env=dict(os.environ, DISPLAY=display),
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    from vision.capture import Screen as Capture

    try:
        assert app.stdout is not None and app.stdin is not None
        if app.stdout.readline().strip() != "ready":
            raise RuntimeError("the benchmark window did not start")
        time.sleep(0.5)
        with Capture(display) as capture:

            def change(i: int) -> str:
                label = f"Draft saved at 10:{16 + i}:{(7 * i) % 60:02d}"
                app.stdin.write(label + "\n")  # type: ignore[union-attr]
                app.stdin.flush()  # type: ignore[union-attr]
                app.stdout.readline()  # type: ignore[union-attr]
                return label

            yield Screen("tk", "Save changes", capture.grab, change)
    finally:
        app.kill()
        xvfb.kill()
        app.wait(timeout=10)
        xvfb.wait(timeout=10)


def typing_a_word(display: str) -> Callable[[int], str]:
    """A screen's small change: type the word `tagNN ` where the keyboard focus is; returns the word."""
    env = dict(os.environ, DISPLAY=display)

    def change(i: int) -> str:
        word = f"tag{i:02d}"
        subprocess.run(["xdotool", "type", "--delay", "0", word + " "], env=env, check=True)
        return word

    return change


@contextmanager
def mousepad_screen() -> Iterator[Screen]:
    """mousepad at 1280x800 with openbox; a change types a new word at the start of the first line."""
    from actions.platform.x11.desktop import VirtualDesktop
    from tests.real_apps import PHRASE, start_mousepad, wait_still
    from vision.capture import Screen as Capture
    from vision.geometry import Size

    desktop = VirtualDesktop(Size(1280, 800), window_manager=True).start()
    try:
        with tempfile.TemporaryDirectory() as folder, Capture(desktop.display) as capture:
            start_mousepad(desktop, Path(folder))
            wait_still(capture)
            yield Screen("mousepad", PHRASE, capture.grab, typing_a_word(desktop.display))
    finally:
        desktop.stop()


LISTING_PHRASE = "quarterly_ledger_archive.csv"


def listing_text() -> str:
    """A 40-line `ls -l`-style listing (permissions, sizes, dates, file names), the phrase once."""
    import random

    rng = random.Random(11)
    stems = ["report", "ledger", "invoice", "budget", "archive", "backup", "summary", "payroll", "quarterly"]
    exts = [".csv", ".py", ".txt", ".json", ".tar.gz", ".log"]
    lines = []
    for n in range(40):
        name = (LISTING_PHRASE if n == 27 else
                f"{rng.choice(stems)}_{rng.choice(stems)}_{rng.randint(2019, 2026)}{rng.choice(exts)}")
        mode = rng.choice(["-rw-r--r--", "-rwxr-xr-x", "drwxr-xr-x", "-rw-------"])
        lines.append(f"{mode} 1 ada staff {rng.randint(120, 9_999_999):>9} Dec {rng.randint(1, 28):>2} "
                     f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} {name}")
    return "\n".join(lines) + "\n"


@contextmanager
def xterm_screen() -> Iterator[Screen]:
    """xterm (DejaVu Sans Mono 11) at 1280x800 showing a 40-line file listing; a change types a
    word at the shell's prompt. Optional (OCR_FIND_SCREENS=...,xterm): a terminal's monospaced,
    punctuation-dense text, for the narrow monospaced reading."""
    from actions.platform.x11.desktop import VirtualDesktop
    from tests.real_apps import require, wait_still
    from vision.capture import Screen as Capture
    from vision.geometry import Size

    require("xterm", "xdotool")
    desktop = VirtualDesktop(Size(1280, 800), window_manager=True).start()
    try:
        with tempfile.TemporaryDirectory() as folder, Capture(desktop.display) as capture:
            listing = Path(folder) / "listing.txt"
            listing.write_text(listing_text(), encoding="utf-8")
            desktop.launch(["xterm", "-geometry", "150x46+0+0", "-fa", "DejaVu Sans Mono", "-fs", "11", "-e", "bash",
                            "--norc", "-i", "-c", f"cat {listing}; PS1='$ ' exec bash --norc -i"])
            time.sleep(1.0)
            wait_still(capture)
            yield Screen("xterm", LISTING_PHRASE, capture.grab, typing_a_word(desktop.display))
    finally:
        desktop.stop()
