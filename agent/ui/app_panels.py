"""The side panels of `deskpilot app`: the run history and the suite runner (widgets only; the controller
and `agent.ui.app_runs` hold the logic).
"""

from __future__ import annotations

import os
import tkinter as tk
from collections.abc import Callable
from tkinter import filedialog, ttk
from typing import Any

from agent.ui.app_history import STATUS_CHOICES
from agent.ui.step_rows import excerpt

STATUS_TAGS = {"failed": "error", "error": "error", "invalid": "error", "stopped": "warn", "succeeded": "ok"}


def _tree(master: tk.Misc, theme: Any, columns: tuple[tuple[str, str, int, str], ...]) -> ttk.Treeview:
    """A Treeview with headings (name, title, width at 96 DPI, anchor) and a scrollbar, packed to fill."""
    frame = ttk.Frame(master)
    frame.pack(fill="both", expand=True)
    tree = ttk.Treeview(frame, columns=[c[0] for c in columns], show="headings", selectmode="browse")
    for name, title, width, anchor in columns:
        tree.heading(name, text=title, anchor="center" if anchor == "e" else anchor)
        tree.column(name, width=theme.px(width), minwidth=theme.px(min(width, 36)), anchor=anchor,
                    stretch=name in ("what", "task"))
    scroll = ttk.Scrollbar(frame, orient="vertical", command=tree.yview)
    tree.configure(yscrollcommand=scroll.set)
    tree.pack(side="left", fill="both", expand=True)
    scroll.pack(side="right", fill="y")
    colors = theme.colors
    tree.tag_configure("error", foreground=colors["error"])
    tree.tag_configure("warn", foreground=colors["warn"])
    tree.tag_configure("ok", foreground=colors["ok"])
    return tree


class HistoryPanel(ttk.Frame):
    """Past runs: a filter (words, status), the list (goal or task, model, status, steps, cost, date) and
    Open report, Replay (this desktop or a sandbox), Run again, Show folder for the chosen run.

    `commands`: "filter" (status, text), "select" (path), "refresh", "report", "replay" (display),
    "again", "folder".
    """

    COLUMNS = (("what", "Goal or task", 150, "w"), ("model", "Model", 100, "w"), ("status", "Status", 76, "w"),
               ("steps", "Steps", 50, "e"), ("cost", "Cost", 66, "e"), ("date", "Date", 104, "w"))

    def __init__(self, master: tk.Misc, theme: Any, commands: dict[str, Callable[..., None]]) -> None:
        super().__init__(master, padding=theme.px(8))
        self.theme, self.commands = theme, commands
        px = theme.px
        row = ttk.Frame(self)
        row.pack(fill="x", pady=(0, px(6)))
        ttk.Label(row, text="Filter").pack(side="left", padx=(0, px(6)))
        self.text_var = tk.StringVar(self)
        self.filter_entry = ttk.Entry(row, textvariable=self.text_var)
        self.filter_entry.pack(side="left", fill="x", expand=True)
        self.status_var = tk.StringVar(self, value="all")
        self.status_box = ttk.Combobox(row, textvariable=self.status_var, values=STATUS_CHOICES, state="readonly",
                                       width=9)
        self.status_box.pack(side="left", padx=(px(6), 0))
        self.refresh_button = ttk.Button(row, image=theme.icons("refresh"), command=commands["refresh"])
        self.refresh_button.pack(side="left", padx=(px(6), 0))
        self.text_var.trace_add("write", lambda *_a: self._filter())
        self.status_box.bind("<<ComboboxSelected>>", lambda _e: self._filter())

        self.count_label = ttk.Label(self, text="", style="Caption.TLabel")
        self.count_label.pack(anchor="w", pady=(0, px(6)))
        self.tree = _tree(self, theme, self.COLUMNS)
        self.tree.bind("<<TreeviewSelect>>", self._selected)
        self.tree.bind("<Double-1>", lambda _e: commands["report"]())
        self._rendering = False
        self.current: str | None = None  # the chosen run's path

        buttons = ttk.Frame(self)
        buttons.pack(fill="x", pady=(px(8), 0))
        self.report_button = ttk.Button(buttons, text="Open report", image=theme.icons("report"), compound="left",
                                        command=commands["report"])
        self.replay_button = ttk.Menubutton(buttons, text="Replay", image=theme.icons("start"), compound="left")
        self.replay_menu = tk.Menu(self.replay_button, tearoff=False)
        self.replay_menu.add_command(label="On this desktop", command=lambda: commands["replay"]("host"))
        self.replay_menu.add_command(label="In a sandbox", command=lambda: commands["replay"]("virtual"))
        self.replay_button.configure(menu=self.replay_menu)
        self.again_button = ttk.Button(buttons, text="Run again", image=theme.icons("refresh"), compound="left",
                                       command=commands["again"])
        self.folder_button = ttk.Button(buttons, text="Show folder", image=theme.icons("folder"), compound="left",
                                        command=commands["folder"])
        for button in (self.report_button, self.replay_button, self.again_button, self.folder_button):
            button.pack(side="left", padx=(0, px(6)))
        self.rows: list[dict] = []

    def _filter(self) -> None:
        self.commands["filter"](self.status_var.get(), self.text_var.get())

    def _selected(self, _event: Any = None) -> None:
        chosen = self.tree.selection()
        path = chosen[0] if chosen else None
        if self._rendering or path == self.current:  # the list was drawn again, nobody chose anything
            return
        self.current = path
        self.commands["select"](path)

    def render(self, runs: list[dict], selected: str | None, total: int, folder: str) -> None:
        """Show `runs` (RunEntry.as_dict()) of the `total` in `folder`, `selected` chosen."""
        if not total:
            self.count_label.configure(text=f"No runs yet in {folder}: start one above.")
        else:
            shown = f"{len(runs)} of {total}" if len(runs) != total else str(total)
            self.count_label.configure(text=f"{shown} run{'s' if total != 1 else ''} in {folder}")
        self._rendering = True
        try:
            self.rows = runs
            self.tree.delete(*self.tree.get_children())
            for run in runs:
                cost = "" if run["cost_usd"] is None else f"${run['cost_usd']:.4f}"
                steps = "" if run["steps"] is None else str(run["steps"])
                values = (excerpt(run["what"], 120), run["model"] or "\u2014", run["status"], steps, cost, run["date"])
                tags = (STATUS_TAGS[run["status"]],) if run["status"] in STATUS_TAGS else ()
                self.tree.insert("", "end", iid=run["path"], values=values, tags=tags)
            self.current = selected if selected and self.tree.exists(selected) else None
            if self.current:
                self.tree.selection_set(self.current)
                self.tree.see(self.current)
        finally:
            self.update_idletasks()
            self._rendering = False

    def set_enabled(self, entry: Any, running: bool) -> None:
        """Buttons for what the chosen run (a RunEntry or None) allows."""
        def able(widget: ttk.Widget, ok: bool) -> None:
            widget.state(["!disabled"] if ok else ["disabled"])

        able(self.report_button, entry is not None and entry.status != "invalid")
        able(self.folder_button, entry is not None)
        able(self.replay_button, entry is not None and entry.can_replay and not running)
        able(self.again_button, entry is not None and entry.can_run_again and not running)

    def row_centers(self) -> dict[str, list[int]]:
        """`run:<index>` -> the screen centre of each visible row (for tests)."""
        found = {}
        x0, y0 = self.tree.winfo_rootx(), self.tree.winfo_rooty()
        for index, item in enumerate(self.tree.get_children()):
            box = self.tree.bbox(item)
            if box:
                x, y, w, h = box
                found[f"run:{index}"] = [x0 + x + min(w, self.theme.px(120)) // 2, y0 + y + h // 2]
        return found


class SuitePanel(ttk.Frame):
    """A suite: its folder of task files, attempts per task, the engine; Run suite, Stop, progress, one row per
    attempt as it ends, and Open report. `commands`: "run" (folder, attempts, engine), "stop", "report"."""

    COLUMNS = (("task", "Task", 150, "w"), ("n", "#", 32, "e"), ("verdict", "Verdict", 90, "w"),
               ("steps", "Steps", 48, "e"), ("seconds", "Time", 56, "e"), ("cost", "Cost", 64, "e"))

    def __init__(self, master: tk.Misc, theme: Any, commands: dict[str, Callable[..., None]], *, folder: str,
                 attempts: int, engine: str, engines: list[str]) -> None:
        super().__init__(master, padding=theme.px(8))
        self.theme, self.commands = theme, commands
        px = theme.px
        ttk.Label(self, text="Suite folder (task files)", style="Caption.TLabel").pack(anchor="w")
        row = ttk.Frame(self)
        row.pack(fill="x", pady=(px(2), px(8)))
        self.folder_var = tk.StringVar(self, value=folder)
        self.folder_entry = ttk.Entry(row, textvariable=self.folder_var)
        self.folder_entry.pack(side="left", fill="x", expand=True)
        self.browse_button = ttk.Button(row, text="Open suite\u2026", image=theme.icons("folder"), compound="left",
                                        command=self.browse)
        self.browse_button.pack(side="left", padx=(px(6), 0))

        row = ttk.Frame(self)
        row.pack(fill="x", pady=(0, px(8)))
        ttk.Label(row, text="Attempts").pack(side="left")
        self.attempts_var = tk.StringVar(self, value=str(attempts))
        self.attempts_box = ttk.Spinbox(row, from_=1, to=100, textvariable=self.attempts_var, width=4)
        self.attempts_box.pack(side="left", padx=(px(6), px(14)))
        ttk.Label(row, text="Engine").pack(side="left")
        self.engine_var = tk.StringVar(self, value=engine if engine in engines else engines[0])
        self.engine_box = ttk.Combobox(row, textvariable=self.engine_var, values=engines, state="readonly", width=7)
        self.engine_box.pack(side="left", padx=(px(6), 0))

        row = ttk.Frame(self)
        row.pack(fill="x", pady=(0, px(8)))
        self.run_button = ttk.Button(row, text="Run suite", image=theme.icons("start", color="#ffffff"),
                                     compound="left", style="Accent.TButton", command=self.run)
        self.stop_button = ttk.Button(row, text="Stop", image=theme.icons("stop"), compound="left",
                                      command=commands["stop"])
        self.report_button = ttk.Button(row, text="Open report", image=theme.icons("report"), compound="left",
                                        command=commands["report"])
        for button in (self.run_button, self.stop_button, self.report_button):
            button.pack(side="left", padx=(0, px(6)))

        self.progress = ttk.Progressbar(self, mode="determinate", maximum=1)
        self.progress.pack(fill="x", pady=(px(4), px(4)))
        self.progress_label = ttk.Label(self, text="No suite run yet.", style="Caption.TLabel")
        self.progress_label.pack(anchor="w", pady=(0, px(6)))
        self.tree = _tree(self, theme, self.COLUMNS)

    def browse(self) -> None:
        """Choose the suite's folder."""
        path = filedialog.askdirectory(parent=self, title="Open a suite (a folder of task files)", mustexist=True,
                                       initialdir=self.folder_var.get() or os.getcwd())
        if path:
            self.folder_var.set(path)

    def run(self) -> None:
        """Run the suite as the fields say."""
        try:
            attempts = int(self.attempts_var.get())
        except ValueError:
            attempts = 0
        self.commands["run"](self.folder_var.get(), attempts, self.engine_var.get())

    def render(self, suite: Any, running: bool) -> None:
        """Show a SuiteProgress; buttons as `running` allows."""
        self.progress.configure(maximum=max(1, suite.total), value=suite.done)
        if suite.summary:
            text = suite.summary
        elif suite.total:
            text = f"{suite.done} of {suite.total} attempts done, {suite.passed} passing, ${suite.cost_usd:.4f}"
        else:
            text = "Starting\u2026" if running else "No suite run yet."
        self.progress_label.configure(text=text)
        shown = len(self.tree.get_children())
        if shown > len(suite.rows):
            self.tree.delete(*self.tree.get_children())
            shown = 0
        for row in suite.rows[shown:]:
            tag = "ok" if row["verdict"] == "passed" else "error" if row["verdict"] in ("error", "failed") else "warn"
            self.tree.insert("", "end", values=(row["task"], row["number"], row["verdict"], row["steps"],
                                                f"{row['seconds']:.1f} s", f"${row['cost_usd']:.4f}"), tags=(tag,))
        self.run_button.state(["disabled"] if running else ["!disabled"])
        self.stop_button.state(["!disabled"] if running else ["disabled"])
        self.report_button.state(["!disabled"] if suite.report else ["disabled"])
