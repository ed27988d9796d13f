"""`deskpilot app`: a Tk window to run goals, task files and suites, watch the agent, steer it, and find,
reopen, replay or rerun earlier runs.

The window (themed ttk widgets, Sun Valley light or dark, sizes scaled for the screen's DPI: see
`agent.ui.app_theme`) holds the goal field (or a task file's path: a name ending in .yaml/.yml runs
the task) with Start, Pause/Resume, Stop and Record; the model picker (every model family, the base
URL of an OpenAI-compatible server, Check) and the target ("This desktop", "Sandbox (virtual
desktop)", a private Xvfb kept between jobs, or a display given with --display); on the left the run
history (the recordings folder, filtered by status and words; Open report, Replay here or in a
sandbox, Run again, Show folder) and the suite runner; on the right the live view with the last
action circled (a finished run's final screen stays there, whatever becomes of its desktop) and the
step list; the status line and the cost against the budget at the bottom. The File menu opens task
files and suites, replays recordings, records demonstrations (then offers to save them as task
files), opens reports and stores the API key; the View menu switches the theme (Ctrl+D).

Safety: the policy's "ask" verdicts open a modal dialog (Allow / Deny / Always allow this rule for the
rest of the run). While a job acts on the desktop the app itself is on, the main window is iconified
and a small always-on-top bar at the top-right corner offers Pause and Stop; the kill switch
(Ctrl+Alt+Shift+K, or the pointer pushed into a screen corner) works as in the CLI. Closing the
window stops the running job first: its recording is finished, keys and buttons are released.

This module is the window: layout and the `AppView` the controller (`agent.ui.app_controller`,
which runs the jobs and keeps the state) shows through. No Tk call is made off the Tk thread: the
window drains the controller's events every 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import filedialog, simpledialog
from typing import Any

from agent.errors import ExitCode
from agent.session import RunOptions
from agent.ui.app_controller import HOST_TARGET, SANDBOX_TARGET, AppController
from agent.ui.app_dialogs import ConfirmDialog, HostBar, SaveTaskDialog
from agent.ui.app_layout import last_demonstration, refresh_window, run_again, set_theme
from agent.ui.app_theme import Theme

POLL_MS = 50


def model_choices() -> list[str]:
    """DEFAULT_MODEL first, then every model the backends know."""
    from agent.models import registry
    from agent.models.base import DEFAULT_MODEL

    names = [DEFAULT_MODEL]
    names += [name for name in registry.known_models() if name not in names]
    return names


class DeskpilotApp:
    """The deskpilot window on `root`. `model` replaces the model the picker names (tests inject a scripted one);
    `settings_file` replaces $XDG_CONFIG_HOME/deskpilot/app.json."""

    def __init__(self, root: tk.Tk, *, options: RunOptions | None = None, model: Any = None,
                 settings_file: Path | None = None, theme_scale: float | None = None) -> None:
        self.root = root
        self.view_frames = 0
        self._dialog: ConfirmDialog | None = None
        self._task_dialog: SaveTaskDialog | None = None
        self._bar: HostBar | None = None
        self._hidden = False
        self._geometry = ""
        self.controller = c = AppController(self, options, model=model, settings_file=settings_file)
        self.options = c.options
        self.theme = Theme(root, theme_scale)
        self.theme.apply(c.settings.theme)
        self._build()
        c.show_target()
        self.refresh()
        c.history.refresh()
        root.after(POLL_MS, self._drain)

    # ------------------------------------------------------------------------------ the window
    def _build(self) -> None:
        from agent.ui.app_layout import build_window

        build_window(self)

    def _drain(self) -> None:
        """Every POLL_MS on the Tk thread: the controller's events, then the newest frame of the live view."""
        try:
            self.controller.drain()
            latest = self.controller.feed.take()
            live = self.controller.state.view_mode == "live"
            if latest is not None and not self.closing and live:
                self.view.show(latest[0], latest[1])
                self.view_frames += 1
            self.controller.feed.box = self.view.box
            self.controller.feed.active = not self._hidden and live
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
        """Buttons, menus, cost and status as the controller's state says."""
        refresh_window(self)

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
        if job == "suite":
            self.side.select(self.suite_panel)
            self.view.placeholder("A suite's attempts run on private desktops of their own: see them in the "
                                  "Suite panel as they end.")
        if step_aside:  # get out of the agent's way
            self._hidden = True
            self._bar = HostBar(self.root, on_pause=self.pause, on_resume=self.resume, on_stop=self.stop,
                                can_pause=self.controller.can_pause, theme=self.theme)
            self._geometry = self.root.geometry()  # some window managers bring an icon back elsewhere
            self.root.iconify()

    def job_ended(self) -> None:
        """Remove the bar and bring the window back."""
        if self._bar is not None:
            self._bar.destroy()
            self._bar = None
        if self._hidden:
            self._hidden = False
            self.root.deiconify()
            if self._geometry:
                self.root.geometry(self._geometry)
            self.root.lift()

    def ask(self, request: dict, answer: Callable[[str], None]) -> None:
        """The modal confirmation dialog (over the window, or centred on the screen while it is hidden)."""
        def answered(value: str) -> None:
            self._dialog = None
            answer(value)

        self._dialog = ConfirmDialog(self.root, request, answered, over_root=not self._hidden, theme=self.theme)

    def close_question(self) -> None:
        """Close the confirmation dialog, unanswered."""
        if self._dialog is not None:
            self._dialog.close()
        self._dialog = None

    def placeholder(self, text: str) -> None:
        """A message in the live view instead of a screen."""
        self.view.placeholder(text)

    def show_still(self, view: dict, rows: list[dict] | None) -> None:
        """A finished run's final screen with its last action marked (and its steps, when given)."""
        self.view.show_still(view)
        if rows is not None:
            self.step_list.set_rows(rows)

    def history_changed(self) -> None:
        """The run list again."""
        c = self.controller
        self.history_panel.render(c.state.runs, c.state.selected_run, len(c.history.entries), str(c.options.out))
        self.refresh()

    def suite_changed(self) -> None:
        """The suite's progress again."""
        self.refresh()

    def offer_task(self, recording: Path, suggested: Path) -> None:
        """Offer to save a demonstration as a task file."""
        if self._task_dialog is not None:
            self._task_dialog.close()
        self._task_dialog = SaveTaskDialog(self.root, recording, suggested, theme=self.theme,
                                           on_save=lambda path, edit: self.controller.save_task(recording, path, edit))

    # ------------------------------------------------------------------------------ public actions
    def start(self, goal_or_task: str | None = None) -> bool:
        """Run the goal (or the task file, by its .yaml/.yml name) in the field, or `goal_or_task`."""
        if goal_or_task is not None and not self.controller.state.running:
            self.goal_var.set(goal_or_task)
        text = goal_or_task if goal_or_task is not None else self.goal_var.get()
        return self.controller.start(text, self.header.model, self.header.base_url)

    def pause(self) -> None:
        """Hold the run before its next step."""
        self.controller.pause()

    def resume(self) -> None:
        """Let a paused run go on."""
        self.controller.resume()

    def stop(self) -> None:
        """Stop the running job: before its next step, cancelling the running action."""
        self.controller.stop()

    def check_model(self) -> None:
        """Does the model's server answer and serve the model?"""
        self.controller.check_model(self.header.model, self.header.base_url)

    def run_suite(self, folder: str, attempts: int, engine: str) -> None:
        """Run the suite in `folder` with the picker's model."""
        if attempts < 1:
            self.controller.set_status("suite: attempts must be a whole number from 1", error=True)
            return
        self.controller.run_suite(folder, attempts, engine, self.header.model, self.header.base_url)

    def _run_selected(self, path: str | None) -> None:
        self.controller.history.select(path)

    def run_again(self) -> None:
        """Put the chosen run's goal (or task, or replayed recording) and model back, and start it."""
        run_again(self)

    def set_theme(self, setting: str) -> None:
        """"system", "light", "dark", or "toggle" (between light and dark)."""
        set_theme(self, setting)

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
        self.controller.replay(path, self.header.model)

    def toggle_recording(self) -> None:
        """Record a person's demonstration on the target; again (or Stop) to end it."""
        self.controller.toggle_recording(self.header.model)

    def save_last_recording(self) -> None:
        """Offer the last recording as a task file again."""
        recording = last_demonstration(self)
        if recording is not None:
            self.offer_task(recording, self.controller.suggest_task_path(recording))

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
        self.status_label.configure(text="closing: stopping the running job\u2026")
        with contextlib.suppress(tk.TclError):
            self.root.update_idletasks()
        self.controller.quit()
        with contextlib.suppress(tk.TclError):
            self.root.destroy()

    @property
    def closing(self) -> bool:
        """True once the app is quitting."""
        return self.controller.closing

    def state(self) -> dict:
        """The UI state as one JSON-safe dict (for tests and scripting)."""
        from agent.ui.app_inspect import app_state

        return app_state(self)

    def widget_centers(self) -> dict[str, list[int]]:
        """Screen coordinates of the centres of the controls (and of open lists, menus and dialogs)."""
        from agent.ui.app_inspect import widget_centers

        return widget_centers(self)

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
