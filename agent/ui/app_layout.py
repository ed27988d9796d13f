"""The layout of `deskpilot app`'s window: menus, the header, the side panels (runs, suite), the live view
and the step list, the status line. `build_window(app)` makes them and hangs them on the app.
"""

from __future__ import annotations

from pathlib import Path
from tkinter import ttk
from typing import Any

from agent.ui.app_header import Header
from agent.ui.app_panels import HistoryPanel, SuitePanel
from agent.ui.app_state import HOST_TARGET, SANDBOX_TARGET, target_choices, target_spec
from agent.ui.app_views import AppMenus, LiveView, StepList

WINDOW = (1280, 800)  # the window's size at 96 DPI, at most the screen's
MENU_BAR, TITLE_BAR = 32, 28  # Tk on X draws the menu bar above the window's geometry, a window manager its title


def engines() -> list[str]:
    """The suite engines this machine has: local, and ray when it is installed."""
    import importlib.util

    return ["local"] + (["ray"] if importlib.util.find_spec("ray") is not None else [])


def build_window(app: Any) -> None:
    """Make the window's widgets on `app.root` (a DeskpilotApp) and keep them on `app`."""
    root, c, theme, px = app.root, app.controller, app.theme, app.theme.px
    root.title("deskpilot")
    w = min(px(WINDOW[0]), root.winfo_screenwidth())
    h = min(px(WINDOW[1]), root.winfo_screenheight() - px(MENU_BAR + TITLE_BAR))
    root.geometry(f"{w}x{h}+{max(0, (root.winfo_screenwidth() - w) // 2)}+0")
    root.minsize(px(760), px(480))
    root.protocol("WM_DELETE_WINDOW", app.quit)
    root.report_callback_exception = app._tk_error
    app.menus = AppMenus(root, {
        "open_task_file": app.open_task_file, "open_suite": lambda: app.suite_panel.browse(),
        "replay_recording": app.replay_recording, "toggle_recording": app.toggle_recording,
        "save_task": app.save_last_recording, "open_report": app.open_report, "set_api_key": app.set_api_key,
        "quit": app.quit, "go_live": c.go_live, "refresh_runs": c.history.refresh,
        "stop_sandbox": c.stop_sandbox, "set_theme": app.set_theme}, c.settings.theme)
    targets, initial = target_choices(app.options.display)
    if app.options.display == "auto":
        initial = {"host": HOST_TARGET, "virtual": SANDBOX_TARGET}.get(c.target, initial)
    app.header = Header(root, theme, {
        "start": app.start, "pause": app.pause, "resume": app.resume, "stop": app.stop,
        "record": app.toggle_recording, "open_task": app.open_task_file, "check": app.check_model,
        "target": lambda label: c.choose_target(target_spec(label)), "stop_sandbox": c.stop_sandbox,
        "model_changed": lambda: None}, model=c.settings.model or app.options.model.model,
        base_url=c.settings.base_url or (app.options.model.base_url or ""), targets=targets, target=initial)
    app.header.pack(fill="x")
    app.goal_var = app.header.goal_var
    app.goal_entry = app.header.goal_entry

    status = ttk.Frame(root, padding=(px(12), px(4), px(12), px(8)))
    status.pack(side="bottom", fill="x")
    app.cost_label = ttk.Label(status, text="", style="Caption.TLabel")
    app.cost_label.pack(side="right", padx=(px(12), 0))
    app.status_label = ttk.Label(status, anchor="w", justify="left")
    app.status_label.pack(side="left", fill="x", expand=True)
    app.status_label.bind("<Configure>", lambda e: app.status_label.configure(wraplength=max(200, e.width)))

    panes = ttk.PanedWindow(root, orient="horizontal")
    panes.pack(fill="both", expand=True, padx=px(12), pady=(px(4), 0))
    app.side = ttk.Notebook(panes)
    h = c.history
    app.history_panel = HistoryPanel(app.side, theme, {
        "filter": h.set_filter, "select": app._run_selected, "refresh": h.refresh, "report": h.open_report,
        "replay": lambda where: h.replay(where, app.header.model), "again": app.run_again,
        "folder": h.show_folder})
    s = c.settings
    suite_commands = {"run": app.run_suite, "stop": c.stop,
                      "report": lambda: c.open_report(c.state.suite.run_folder or "")}
    app.suite_panel = SuitePanel(app.side, theme, suite_commands, folder=s.suite_folder, attempts=s.attempts,
                                 engine=s.engine, engines=engines())
    app.side.add(app.history_panel, text="Runs")
    app.side.add(app.suite_panel, text="Suite")
    right = ttk.PanedWindow(panes, orient="vertical")
    app.view = LiveView(right, theme, c.go_live)
    app.step_list = StepList(right, theme)
    right.add(app.view, weight=3)
    right.add(app.step_list, weight=1)
    panes.add(app.side, weight=2)
    panes.add(right, weight=3)


def refresh_window(app: Any) -> None:
    """Buttons, menus, cost and status as the controller's state says."""
    c = app.controller
    state = c.state
    app.header.refresh(running=state.running, pausable=c.can_pause, paused=state.paused,
                       recording=state.job == "record", sandbox=c.sandbox.display is not None)
    app.menus.refresh(state.running, state.job, last_demonstration(app) is not None)
    app.history_panel.set_enabled(c.history.entry(state.selected_run), state.running)
    app.suite_panel.render(state.suite, state.running and state.job == "suite")
    app.cost_label.configure(text=f"Cost {state.cost_text}")
    app.status_label.configure(text=state.status, style="Error.TLabel" if state.status_is_error else "TLabel")
    if state.view_mode == "live":
        app.view.live(c.feed.display)
    if app._bar is not None:
        app._bar.set_paused(state.paused)


def run_again(app: Any) -> None:
    """Put the chosen run's goal (or task, or replayed recording) and model back, and start it."""
    c = app.controller
    entry = c.history.entry(c.state.selected_run)
    if entry is None or not entry.can_run_again:
        c.set_status("Run again: choose a run with a goal, a task file or a replay first", error=True)
        return
    if entry.replay_of:
        c.replay(entry.replay_of, app.header.model)
        return
    if entry.model and entry.model != "None":
        app.header.set_model(entry.model)
    app.start(entry.goal or entry.task)


def set_theme(app: Any, setting: str) -> None:
    """"system", "light", "dark", or "toggle" (between light and dark)."""
    if setting == "toggle":
        setting = "light" if app.theme.mode == "dark" else "dark"
    app.menus.theme_var.set(setting)
    app.theme.apply(setting)
    for widget in (app.view, app.step_list):
        widget.recolor()
    app.controller.remember(theme=setting)
    app.refresh()


def last_demonstration(app: Any) -> Path | None:
    """The last job's recording, while it is there (File > Save last recording as task file)."""
    recording = app.controller.state.recording
    return recording if recording is not None and (recording / "meta.json").is_file() else None
