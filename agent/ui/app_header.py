"""The top of `deskpilot app`'s window: the goal and the run buttons, the model picker and the target.

Row 1: Goal (or a task file's path), Open task..., Start, Pause/Resume, Stop, Record.
Row 2: the model's family and name (every family of DESIGN.md's "Models"; any name may be typed), the
OpenAI-compatible server's base URL (not for Claude), Check (does the server answer and serve the model),
the target (this desktop, the sandbox, a given display) and Stop sandbox.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk
from typing import Any

from agent.ui import app_models


class Header(ttk.Frame):
    """The two rows of controls. `commands`: "start", "pause", "resume", "stop", "record", "open_task", "check",
    "target" (label), "stop_sandbox", "model_changed"."""

    def __init__(self, master: tk.Misc, theme: Any, commands: dict[str, Callable[..., None]], *, model: str,
                 base_url: str, targets: list[str], target: str) -> None:
        super().__init__(master, padding=(theme.px(12), theme.px(10), theme.px(12), theme.px(4)))
        self.theme, self.commands = theme, commands
        px = theme.px
        row = ttk.Frame(self)
        row.pack(fill="x")
        ttk.Label(row, text="Goal", style="Heading.TLabel").pack(side="left")
        self.goal_var = tk.StringVar(self)
        self.goal_entry = ttk.Entry(row, textvariable=self.goal_var)
        self.goal_entry.pack(side="left", fill="x", expand=True, padx=(px(8), px(6)))
        self.goal_entry.bind("<Return>", lambda _e: commands["start"]())
        self.open_button = ttk.Button(row, text="Open task\u2026", image=theme.icons("folder"), compound="left",
                                      command=commands["open_task"])
        self.open_button.pack(side="left", padx=(0, px(12)))
        self.start_button = ttk.Button(row, text="Start", image=theme.icons("start", color="#ffffff"),
                                       compound="left", style="Accent.TButton", command=commands["start"])
        self.pause_button = ttk.Button(row, text="Pause", image=theme.icons("pause"), compound="left",
                                       command=self._pause_or_resume)
        self.stop_button = ttk.Button(row, text="Stop", image=theme.icons("stop", color=theme.colors["error"]),
                                      compound="left", command=commands["stop"])
        self.record_button = ttk.Button(row, text="Record", image=theme.icons("record", color=theme.colors["error"]),
                                        compound="left", command=commands["record"])
        for button in (self.start_button, self.pause_button, self.stop_button, self.record_button):
            button.pack(side="left", padx=(0, px(6)))
        self.paused = False

        row = ttk.Frame(self)
        row.pack(fill="x", pady=(px(8), px(4)))
        family, name = app_models.split_choice(model)
        ttk.Label(row, text="Model").pack(side="left")
        self.family_var = tk.StringVar(self, value=family)
        self.family_box = ttk.Combobox(row, textvariable=self.family_var, values=app_models.families(),
                                       state="readonly", width=10)
        self.family_box.pack(side="left", padx=(px(8), px(4)))
        self.name_var = tk.StringVar(self, value=name or (app_models.models_of(family) or [""])[0])
        self.name_box = ttk.Combobox(row, textvariable=self.name_var, values=app_models.models_of(family), width=20)
        self.name_box.pack(side="left", padx=(0, px(12)))
        self.family_box.bind("<<ComboboxSelected>>", lambda _e: self._family_changed())
        ttk.Label(row, text="Server").pack(side="left")
        self.url_var = tk.StringVar(self, value=base_url)
        self.url_entry = ttk.Entry(row, textvariable=self.url_var, width=26)
        self.url_entry.pack(side="left", padx=(px(8), px(4)))
        self.check_button = ttk.Button(row, text="Check", image=theme.icons("check"), compound="left",
                                       command=commands["check"])
        self.check_button.pack(side="left", padx=(0, px(12)))
        ttk.Label(row, text="Target").pack(side="left")
        self.target_var = tk.StringVar(self, value=target)
        self.target_box = ttk.Combobox(row, textvariable=self.target_var, values=targets, state="readonly", width=22)
        self.target_box.pack(side="left", padx=(px(8), px(4)))
        self.target_box.bind("<<ComboboxSelected>>", lambda _e: commands["target"](self.target_var.get()))
        self.sandbox_button = ttk.Button(row, text="Stop sandbox", command=commands["stop_sandbox"])
        self.sandbox_button.pack(side="left")
        self._family_changed(keep_name=True)

    @property
    def model(self) -> str:
        """The --model value the picker shows."""
        return app_models.compose(self.family_var.get(), self.name_var.get())

    @property
    def base_url(self) -> str | None:
        """The base URL, where the family uses one."""
        url = self.url_var.get().strip()
        return url if url and app_models.uses_base_url(self.family_var.get()) else None

    def set_model(self, model: str) -> None:
        """Show `model` (FAMILY/NAME) in the picker."""
        family, name = app_models.split_choice(model)
        self.family_var.set(family)
        self._family_changed(keep_name=True)
        self.name_var.set(name)

    def _family_changed(self, keep_name: bool = False) -> None:
        family = self.family_var.get()
        names = app_models.models_of(family)
        self.name_box.configure(values=names)
        if not keep_name:
            self.name_var.set(names[0] if names else "")
        self.url_entry.state(["!disabled"] if app_models.uses_base_url(family) else ["disabled"])
        self.commands["model_changed"]()

    def _pause_or_resume(self) -> None:
        self.commands["resume" if self.paused else "pause"]()

    def refresh(self, *, running: bool, pausable: bool, paused: bool, recording: bool, sandbox: bool) -> None:
        """Buttons and fields as the state allows."""
        def able(widget: ttk.Widget, ok: bool) -> None:
            widget.state(["!disabled"] if ok else ["disabled"])

        self.paused = paused
        able(self.start_button, not running)
        able(self.pause_button, pausable)
        self.pause_button.configure(text="Resume" if paused else "Pause",
                                    image=self.theme.icons("start" if paused else "pause"))
        able(self.stop_button, running)
        able(self.record_button, not running or recording)
        self.record_button.configure(text="Stop recording" if recording else "Record")
        for widget in (self.family_box, self.name_box, self.target_box, self.goal_entry, self.check_button,
                       self.open_button):
            able(widget, not running)
        able(self.url_entry, not running and app_models.uses_base_url(self.family_var.get()))
        if not running:
            self.family_box.state(["readonly"])
            self.target_box.state(["readonly"])
        able(self.sandbox_button, sandbox and not running)

    def widgets(self) -> dict[str, tk.Misc]:
        """The named controls (for tests and scripting)."""
        pause = "resume" if self.paused else "pause"
        return {"goal": self.goal_entry, "open_task": self.open_button, "start": self.start_button,
                pause: self.pause_button, "stop": self.stop_button, "record": self.record_button,
                "family": self.family_box, "model_name": self.name_box, "base_url": self.url_entry,
                "check": self.check_button, "target": self.target_box, "stop_sandbox": self.sandbox_button}
