"""The app's dialogs and its small bar, each on its own:

- `ConfirmDialog`: the modal question for the policy's "ask" verdicts (Allow / Deny / Always allow).
- `SaveTaskDialog`: after a demonstration, save it as a task file (codegen) and open it in the editor.
- `HostBar`: the small always-on-top bar shown while the agent drives the desktop the app is on.
"""

from __future__ import annotations

import contextlib
import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import filedialog, ttk
from typing import Any

from agent.ui.step_rows import excerpt

BAR_SIZE = (380, 40)  # the host bar at the top-right corner, in 96-DPI pixels
BAR_MARGIN = 4  # off the very corner, which is the kill switch's fail-safe


def place_over(top: tk.Toplevel, root: tk.Tk, over_root: bool) -> None:
    """Centre `top` over the window (or on the screen while the window is hidden) and show it."""
    top.update_idletasks()
    w, h = top.winfo_reqwidth(), top.winfo_reqheight()
    if over_root and root.winfo_viewable():
        x = root.winfo_rootx() + (root.winfo_width() - w) // 2
        y = root.winfo_rooty() + (root.winfo_height() - h) // 3
    else:
        x, y = (root.winfo_screenwidth() - w) // 2, (root.winfo_screenheight() - h) // 3
    top.geometry(f"+{max(0, x)}+{max(0, y)}")
    top.deiconify()


class ConfirmDialog:
    """Modal: the action, the rule and its reason; Allow / Deny / Always allow for this run.

    `on_answer` gets "allow", "deny" or "always" exactly once; closing the window denies.
    """

    def __init__(self, root: tk.Tk, request: dict, on_answer: Callable[[str], None], *, over_root: bool,
                 theme: Any) -> None:
        self.root, self.on_answer, self.answered = root, on_answer, False
        self.top = top = tk.Toplevel(root)
        top.withdraw()  # mapped once placed
        top.title("deskpilot: allow this action?")
        top.resizable(False, False)
        with contextlib.suppress(tk.TclError):
            top.attributes("-topmost", True)
        if over_root:
            top.transient(root)
        wrap = theme.px(520)
        body = ttk.Frame(top, padding=theme.px(18))
        body.pack(fill="both", expand=True)
        ttk.Label(body, text="The agent wants to do this:", style="Heading.TLabel").pack(anchor="w")
        ttk.Label(body, text=request["action"], font="TkFixedFont", wraplength=wrap,
                  justify="left").pack(anchor="w", pady=(theme.px(4), theme.px(10)))
        rule = f"Policy rule: {request['rule']}" if request.get("rule") else "The policy's default"
        ttk.Label(body, text=f"{rule}: {request['reason']}", wraplength=wrap, justify="left").pack(anchor="w")
        if request.get("matched"):
            ttk.Label(body, text=f"Matched: {excerpt(request['matched'], 200)}", wraplength=wrap,
                      justify="left").pack(anchor="w", pady=(2, 0))
        row = ttk.Frame(body)
        row.pack(fill="x", pady=(theme.px(14), 0))
        self.buttons = {
            "allow": ttk.Button(row, text="Allow", style="Accent.TButton", command=lambda: self.answer("allow")),
            "deny": ttk.Button(row, text="Deny", command=lambda: self.answer("deny")),
            "always": ttk.Button(row, text="Always allow for this run", command=lambda: self.answer("always")),
        }
        for name in ("allow", "deny", "always"):
            self.buttons[name].pack(side="left", padx=(0, theme.px(8)))
        if not request.get("rule"):  # "always" remembers a rule; there is none to remember
            self.buttons["always"].state(["disabled"])
        top.protocol("WM_DELETE_WINDOW", lambda: self.answer("deny"))
        top.bind("<Escape>", lambda _e: self.answer("deny"))
        self.buttons["deny"].focus_set()  # the safe default for Return/space
        place_over(top, root, over_root)
        top.after(30, self._grab)

    def _grab(self) -> None:
        if self.answered:
            return
        try:
            self.top.grab_set()
            self.top.lift()
        except tk.TclError:  # not viewable yet
            self.top.after(100, self._grab)

    def answer(self, value: str) -> None:
        if self.answered:
            return
        self.close()
        self.on_answer(value)

    def close(self) -> None:
        """Remove the dialog without answering (the run ended or was stopped)."""
        self.answered = True
        with contextlib.suppress(tk.TclError):
            self.top.grab_release()
            self.top.destroy()


class HostBar:
    """A small always-on-top bar (no window-manager frame) at the top-right corner: Pause/Resume, Stop and
    the last action. Shown instead of the main window while the agent acts on the app's own desktop."""

    def __init__(self, root: tk.Tk, *, on_pause: Callable[[], None], on_resume: Callable[[], None],
                 on_stop: Callable[[], None], can_pause: bool, theme: Any) -> None:
        self.on_pause, self.on_resume, self.paused, self.theme = on_pause, on_resume, False, theme
        self.top = top = tk.Toplevel(root)
        top.overrideredirect(True)
        with contextlib.suppress(tk.TclError):
            top.attributes("-topmost", True)
        w, h = theme.px(BAR_SIZE[0]), theme.px(BAR_SIZE[1])
        top.geometry(f"{w}x{h}+{root.winfo_screenwidth() - w - BAR_MARGIN}+{BAR_MARGIN}")
        frame = ttk.Frame(top, padding=(theme.px(6), theme.px(4)))
        frame.pack(fill="both", expand=True)
        self.pause_button = ttk.Button(frame, text="Pause", image=theme.icons("pause"), compound="left",
                                       command=self._toggle)
        self.pause_button.pack(side="left")
        if not can_pause:
            self.pause_button.state(["disabled"])
        stop = ttk.Button(frame, text="Stop", image=theme.icons("stop", color=theme.colors["error"]),
                          compound="left", command=on_stop)
        stop.pack(side="left", padx=(theme.px(4), theme.px(8)))
        self.buttons = {"bar_pause": self.pause_button, "bar_stop": stop}
        self.label = ttk.Label(frame, text="deskpilot is working\u2026", anchor="w")
        self.label.pack(side="left", fill="x", expand=True)

    def _toggle(self) -> None:
        (self.on_resume if self.paused else self.on_pause)()

    def set_paused(self, paused: bool) -> None:
        """Show Resume while paused, else Pause."""
        self.paused = paused
        self.pause_button.configure(text="Resume" if paused else "Pause",
                                    image=self.theme.icons("start" if paused else "pause"))

    def set_action(self, text: str) -> None:
        """The last action, shortened."""
        self.label.configure(text=excerpt(text, 34))

    def destroy(self) -> None:
        """Remove the bar."""
        with contextlib.suppress(tk.TclError):
            self.top.destroy()


class SaveTaskDialog:
    """After a demonstration: save it as a task file (agent.replay.codegen) and, if ticked, open it in the
    system editor. `on_save(path, open_editor)` is called once; Not now (or closing) does nothing."""

    def __init__(self, root: tk.Tk, recording: Path, suggested: Path, on_save: Callable[[str, bool], None],
                 theme: Any) -> None:
        self.root, self.on_save = root, on_save
        self.top = top = tk.Toplevel(root)
        top.withdraw()
        top.title("deskpilot: save the demonstration as a task file?")
        top.resizable(False, False)
        top.transient(root)
        px = theme.px
        body = ttk.Frame(top, padding=px(18))
        body.pack(fill="both", expand=True)
        ttk.Label(body, text="Save this demonstration as a task file?", style="Heading.TLabel").pack(anchor="w")
        ttk.Label(body, text=f"The steps of {recording.name} become an editable task file that `deskpilot run` "
                             "replays, naming each target by its text or image.", wraplength=px(520),
                  justify="left", style="Caption.TLabel").pack(anchor="w", pady=(px(4), px(12)))
        row = ttk.Frame(body)
        row.pack(fill="x")
        self.path_var = tk.StringVar(top, value=str(suggested))
        self.entry = ttk.Entry(row, textvariable=self.path_var, width=56)
        self.entry.pack(side="left", fill="x", expand=True)
        browse = ttk.Button(row, text="Browse\u2026", command=self._browse)
        browse.pack(side="left", padx=(px(6), 0))
        self.open_var = tk.BooleanVar(top, value=True)
        check = ttk.Checkbutton(body, text="Open it in the editor", variable=self.open_var)
        check.pack(anchor="w", pady=(px(10), 0))
        buttons = ttk.Frame(body)
        buttons.pack(fill="x", pady=(px(14), 0))
        save = ttk.Button(buttons, text="Save task file", style="Accent.TButton", command=self.save)
        cancel = ttk.Button(buttons, text="Not now", command=self.close)
        save.pack(side="right")
        cancel.pack(side="right", padx=(0, px(8)))
        self.buttons = {"task_path": self.entry, "task_browse": browse, "task_open": check, "task_save": save,
                        "task_cancel": cancel}
        top.protocol("WM_DELETE_WINDOW", self.close)
        top.bind("<Escape>", lambda _e: self.close())
        top.bind("<Return>", lambda _e: self.save())
        place_over(top, root, True)
        self.entry.focus_set()
        self.entry.icursor("end")

    def _browse(self) -> None:
        current = Path(self.path_var.get() or ".")
        path = filedialog.asksaveasfilename(parent=self.top, title="Save the task file", defaultextension=".yaml",
                                            initialdir=str(current.parent), initialfile=current.name,
                                            filetypes=[("Task files", "*.yaml *.yml")])
        if path:
            self.path_var.set(path)

    def save(self) -> None:
        """Save where the field says (the controller reports errors in the window)."""
        path, open_editor = self.path_var.get().strip(), bool(self.open_var.get())
        self.close()
        if path:
            self.on_save(path, open_editor)

    def close(self) -> None:
        """Remove the dialog."""
        with contextlib.suppress(tk.TclError):
            self.top.destroy()

    @property
    def open(self) -> bool:
        """True while the dialog is shown."""
        try:
            return bool(self.top.winfo_exists())
        except tk.TclError:
            return False
