"""`deskpilot app`: a Tk window to run goals and task files, watch the agent, and steer it.

The window holds a goal field (or a task file's path: a name ending in .yaml/.yml runs the
task), the model, the target ("This desktop" or "Sandbox (virtual desktop)", a private Xvfb
that the app starts with the first run and keeps until it quits, so the result stays visible),
Start / Pause / Resume / Stop, a live view of the target screen with the last action circled,
the step list, the cost against the budget and a status line. The File menu opens task files,
replays recordings, records demonstrations, writes and opens a run's report, and stores the API
key in the system keyring.

Safety: the policy's "ask" verdicts open a modal dialog (Allow / Deny / Always allow this rule
for the rest of the run). While a job acts on the desktop the app itself is on, the main window
is iconified and a small always-on-top bar at the top-right corner offers Pause and Stop; the
kill switch (Ctrl+Alt+Shift+K, or the pointer pushed into a screen corner) works as in the CLI.

This module is the window: layout, menus, dialogs, and the `AppView` the controller
(`agent.ui.app_controller`, which runs the jobs and keeps the state) shows through. No Tk call is
made off the Tk thread: the window drains the controller's events every 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import filedialog, simpledialog, ttk
from typing import Any

from agent.errors import ExitCode
from agent.session import RunOptions
from agent.ui.app_controller import (
    HOST_TARGET,
    SANDBOX_TARGET,
    AppController,
    target_choices,
    target_spec,
)
from agent.ui.app_views import ERROR_COLOR, ConfirmDialog, FileMenu, HostBar, LiveView, StepList, center_of

POLL_MS = 50


def model_choices() -> list[str]:
    """DEFAULT_MODEL first, then every model the backends know."""
    from agent.models import registry
    from agent.models.base import DEFAULT_MODEL

    names = [DEFAULT_MODEL]
    names += [name for name in registry.known_models() if name not in names]
    return names


class DeskpilotApp:
    """The deskpilot window on `root`. `model` replaces Claude (tests inject a scripted model)."""

    def __init__(self, root: tk.Tk, *, options: RunOptions | None = None, model: Any = None) -> None:
        self.root = root
        self.view_frames = 0
        self._dialog: ConfirmDialog | None = None
        self._bar: HostBar | None = None
        self._hidden = False
        self.controller = AppController(self, options, model=model)
        self.options = self.controller.options
        self._build()
        self.controller.show_target()
        self.refresh()
        root.after(POLL_MS, self._drain)

    # ------------------------------------------------------------------------------ the window
    def _build(self) -> None:
        root = self.root
        root.title("deskpilot")
        root.geometry("1120x700")
        root.minsize(760, 460)
        root.protocol("WM_DELETE_WINDOW", self.quit)
        root.report_callback_exception = self._tk_error
        self.file_menu = FileMenu(root, {name: getattr(self, name) for name in (
            "open_task_file", "replay_recording", "toggle_recording", "open_report", "set_api_key", "quit")})

        row = ttk.Frame(root, padding=(8, 8, 8, 0))
        row.pack(fill="x")
        ttk.Label(row, text="Goal or task file:").pack(side="left")
        self.goal_var = tk.StringVar()
        self.goal_entry = ttk.Entry(row, textvariable=self.goal_var)
        self.goal_entry.pack(side="left", fill="x", expand=True, padx=6)
        self.goal_entry.bind("<Return>", lambda _e: self.start())
        ttk.Button(row, text="Open task\u2026", command=self.open_task_file).pack(side="left")

        row = ttk.Frame(root, padding=8)
        row.pack(fill="x")
        ttk.Label(row, text="Model:").pack(side="left")
        self.model_var = tk.StringVar(value=self.options.model.model)
        self.model_box = ttk.Combobox(row, textvariable=self.model_var, values=model_choices(), width=20)
        self.model_box.pack(side="left", padx=(4, 12))
        ttk.Label(row, text="Target:").pack(side="left")
        targets, initial = target_choices(self.options.display)
        self.target_var = tk.StringVar(value=initial)
        self.target_box = ttk.Combobox(row, textvariable=self.target_var, values=targets, state="readonly", width=24)
        self.target_box.pack(side="left", padx=(4, 12))
        self.target_box.bind("<<ComboboxSelected>>",
                             lambda _e: self.controller.choose_target(target_spec(self.target_var.get())))
        self.buttons = {name: ttk.Button(row, text=name.capitalize(), command=getattr(self, name), width=8)
                        for name in ("start", "pause", "resume", "stop")}
        for button in self.buttons.values():
            button.pack(side="left", padx=2)
        self.cost_label = ttk.Label(row, text="")
        self.cost_label.pack(side="right")

        panes = ttk.PanedWindow(root, orient="horizontal")
        panes.pack(fill="both", expand=True, padx=8)
        self.view = LiveView(panes)
        self.step_list = StepList(panes)
        panes.add(self.view, weight=3)
        panes.add(self.step_list, weight=2)

        self.status_label = tk.Label(root, anchor="w", justify="left", padx=10, pady=6)
        self.status_label.pack(fill="x")
        self.status_label.bind("<Configure>", lambda e: self.status_label.configure(wraplength=max(200, e.width - 20)))
        self._normal_color = self.status_label.cget("foreground")

    def _drain(self) -> None:
        """Every POLL_MS on the Tk thread: the controller's events, then the newest frame of the live view."""
        try:
            self.controller.drain()
            latest = self.controller.feed.take()
            if latest is not None and not self.closing:
                self.view.show(latest[0], latest[1])
                self.view_frames += 1
            self.controller.feed.box = self.view.box
            self.controller.feed.active = not self._hidden
        finally:
            if not self.closing:
                self.root.after(POLL_MS, self._drain)

    def _tk_error(self, exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        """Errors in Tk callbacks go to the status line (and the traceback to stderr), never only to stderr."""
        if issubclass(exc_type, KeyboardInterrupt):
            self.quit()
            return
        self.controller.show_error(exc.with_traceback(tb))

    # ------------------------------------------------------------------------------ AppView: what the controller shows
    def refresh(self) -> None:
        """Buttons, menu, cost and status as the controller's state says."""
        state, pausable = self.controller.state, self.controller.can_pause
        for name, enabled in (("start", not state.running), ("pause", pausable and not state.paused),
                              ("resume", pausable and state.paused), ("stop", state.running)):
            self.buttons[name].state(["!disabled"] if enabled else ["disabled"])
        for widget in (self.model_box, self.target_box, self.goal_entry):
            widget.state(["disabled"] if state.running else ["!disabled"])
        if not state.running:
            self.target_box.state(["readonly"])
        self.file_menu.refresh(state.running, state.job)
        self.cost_label.configure(text=f"Cost {state.cost_text}")
        self.status_label.configure(text=state.status,
                                    foreground=ERROR_COLOR if state.status_is_error else self._normal_color)
        if self._bar is not None:
            self._bar.set_paused(state.paused)

    def step_added(self, row: dict) -> None:
        """A new row in the step list, its point circled on the live view and named on the bar."""
        self.step_list.add(row)
        if row["point"] is not None:
            self.view.mark(row["point"])
        if self._bar is not None:
            self._bar.set_action(row["action"])

    def job_started(self, job: str, step_aside: bool) -> None:
        """Clear the steps; on the app's own desktop, iconify behind a small bar with Pause and Stop."""
        self.step_list.clear()
        self.view.mark(None)
        if step_aside:  # get out of the agent's way
            self._hidden = True
            self._bar = HostBar(self.root, on_pause=self.pause, on_resume=self.resume, on_stop=self.stop,
                                can_pause=self.controller.can_pause)
            self.root.iconify()

    def job_ended(self) -> None:
        """Remove the bar and bring the window back."""
        if self._bar is not None:
            self._bar.destroy()
            self._bar = None
        if self._hidden:
            self._hidden = False
            self.root.deiconify()
            self.root.lift()

    def ask(self, request: dict, answer: Callable[[str], None]) -> None:
        """The modal confirmation dialog (over the window, or centred on the screen while it is hidden)."""
        def answered(value: str) -> None:
            self._dialog = None
            answer(value)

        self._dialog = ConfirmDialog(self.root, request, answered, over_root=not self._hidden)

    def close_question(self) -> None:
        """Close the confirmation dialog, unanswered."""
        if self._dialog is not None:
            self._dialog.close()
        self._dialog = None

    def placeholder(self, text: str) -> None:
        """A message in the live view instead of a screen."""
        self.view.placeholder(text)

    # ------------------------------------------------------------------------------ public actions
    def start(self, goal_or_task: str | None = None) -> bool:
        """Run the goal (or the task file, by its .yaml/.yml name) in the field, or `goal_or_task`."""
        if goal_or_task is not None and not self.controller.state.running:
            self.goal_var.set(goal_or_task)
        text = goal_or_task if goal_or_task is not None else self.goal_var.get()
        return self.controller.start(text, self.model_var.get())

    def pause(self) -> None:
        """Hold the run before its next step."""
        self.controller.pause()

    def resume(self) -> None:
        """Let a paused run go on."""
        self.controller.resume()

    def stop(self) -> None:
        """Stop the running job: before its next step, cancelling the running action."""
        self.controller.stop()

    def open_task_file(self, path: str | None = None) -> None:
        """Put a task file in the goal field (a file dialog when `path` is None); Start runs it."""
        if path is None:
            path = filedialog.askopenfilename(parent=self.root, title="Open a task file",
                                              filetypes=[("Task files", "*.yaml *.yml"), ("All files", "*")])
            if not path:
                return
        self.goal_var.set(str(path))
        self.controller.set_status(f"task file {Path(path).name}: press Start to run it")

    def replay_recording(self, path: str | Path | None = None) -> None:
        """Replay a recording folder on the target."""
        if path is None:
            path = self._ask_folder("Replay a recording")
            if not path:
                return
        self.controller.replay(path, self.model_var.get())

    def toggle_recording(self) -> None:
        """Record a person's demonstration on the target; again (or Stop) to end it."""
        self.controller.toggle_recording(self.model_var.get())

    def open_report(self, path: str | Path | None = None) -> None:
        """Write a recording's report.html and open it in the browser."""
        if path is None:
            path = self._ask_folder("Open a run's report")
            if not path:
                return
        self.controller.open_report(path)

    def set_api_key(self) -> None:
        """Ask for the Anthropic API key and store it in the system keyring."""
        key = simpledialog.askstring("Anthropic API key", "API key (kept in the system keyring):", show="\u2022",
                                     parent=self.root)
        if key and key.strip():
            self.controller.store_key(key.strip())

    def quit(self) -> None:
        """Stop any job (its recording is completed), stop the sandbox, close the window."""
        if self.closing:
            return
        self.controller.quit()
        with contextlib.suppress(tk.TclError):
            self.root.destroy()

    @property
    def closing(self) -> bool:
        """True once the app is quitting."""
        return self.controller.closing

    def state(self) -> dict:
        """The UI state as one JSON-safe dict (for tests and scripting)."""
        return self.controller.as_dict() | {
            "view_frames": self.view_frames, "hidden": self._hidden, "host_bar": self._bar is not None,
            "target": self.target_var.get(), "model": self.model_var.get()}

    def widget_centers(self) -> dict[str, list[int]]:
        """Root-window coordinates of the centres of the main controls (and the dialog's buttons)."""
        widgets: dict[str, Any] = {"goal": self.goal_entry, **self.buttons, "steps": self.step_list, "view": self.view}
        if self._dialog is not None:
            widgets.update(self._dialog.buttons)
        if self._bar is not None:
            widgets.update(self._bar.buttons)
        centers = {name: center_of(widget) for name, widget in widgets.items()}
        return {name: center for name, center in centers.items() if center is not None}

    def _ask_folder(self, title: str) -> str:
        return filedialog.askdirectory(parent=self.root, title=title, mustexist=True,
                                       initialdir=str(self.controller.state.recording or self.options.out))


def _parser() -> argparse.ArgumentParser:
    from agent.models.base import DEFAULT_MODEL
    from agent.ui import options as opt

    display = opt.display_options(display_help="the target chosen at start: host, virtual (the sandbox), :N, or "
                                               "auto (host)", size_help="the sandbox's size WxH (default 1280x800)")
    model = opt.model_options(help=f"the model chosen at start (default {DEFAULT_MODEL})")
    parents = [model, opt.model_server_options(), display, opt.out_option("recordings"),
               opt.budget_options(tokens=False)]
    parser = argparse.ArgumentParser(prog="deskpilot app", description="The deskpilot desktop app.", parents=parents)
    parser.add_argument("goal", nargs="?", metavar="GOAL|TASK.yaml", help="fill the goal field (not started)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """`deskpilot app [GOAL] [--model M] [--display D] ...` (argv None: no arguments); 0 when closed, 2 for a
    usage error, 4 without a display for the window."""
    from agent.loop import LoopConfig
    from agent.ui.options import limits, model_config

    try:
        args = _parser().parse_args([] if argv is None else list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    options = RunOptions(model=model_config(args, args.model), loop=LoopConfig(limits=limits(args)),
                         display=args.display, size=args.size, out=Path(args.out))
    try:
        root = tk.Tk(className="deskpilot")
    except tk.TclError as exc:
        where = "$DISPLAY is not set" if not os.environ.get("DISPLAY") else f"cannot open {os.environ['DISPLAY']}"
        print(f"deskpilot app: no display for the window ({where}: {exc}). Run it on a desktop session, or use "
              "`deskpilot run GOAL --display virtual` without a window.", file=sys.stderr)
        return int(ExitCode.ENVIRONMENT)
    app = DeskpilotApp(root, options=options)
    if args.goal:
        app.goal_var.set(args.goal)
    try:
        root.mainloop()
    except KeyboardInterrupt:
        app.quit()
    return int(ExitCode.OK)


__all__ = ["HOST_TARGET", "SANDBOX_TARGET", "DeskpilotApp", "main", "model_choices"]
