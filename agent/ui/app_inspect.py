"""What `deskpilot app` looks like from outside, as plain values: its state and where its controls are on the
screen (tests drive the window through these with real clicks; scripts may read them too).
"""

from __future__ import annotations

import contextlib
import tkinter as tk
from typing import Any

from agent.ui.app_views import center_of, combo_items, menu_items


def app_state(app: Any) -> dict:
    """The UI state as one JSON-safe dict (for tests and scripting)."""
    root = app.root
    return app.controller.as_dict() | {
        "view_frames": app.view_frames, "hidden": app._hidden, "host_bar": app._bar is not None,
        "target": app.header.target_var.get(), "model": app.header.model, "base_url": app.header.base_url,
        "theme": app.theme.mode, "scale": app.theme.scale, "task_dialog": bool(app._task_dialog and
                                                                                app._task_dialog.open),
        "window_box": [root.winfo_rootx(), root.winfo_rooty(), root.winfo_rootx() + root.winfo_width(),
                       root.winfo_rooty() + root.winfo_height()],
        "view_image_box": app.view.image_box(), "mark_center": app.view.mark_box(),
        "view_caption": app.view.caption.cget("text"), "history_loads": app.controller.history.loads,
        "fields": fields(app)}


def fields(app: Any) -> dict[str, str]:
    """What the text fields hold, by the names `widget_centers` gives them."""
    header, hp, sp = app.header, app.history_panel, app.suite_panel
    values = {"goal": header.goal_var, "model_name": header.name_var, "base_url": header.url_var,
              "history_filter": hp.text_var, "suite_folder": sp.folder_var, "suite_attempts": sp.attempts_var}
    found = {name: var.get() for name, var in values.items()}
    if app._task_dialog is not None and app._task_dialog.open:
        found["task_path"] = app._task_dialog.path_var.get()
    return found

def widget_centers(app: Any) -> dict[str, list[int]]:
    """Screen coordinates of the centres of the controls (and of open lists, menus and dialogs)."""
    hp, sp = app.history_panel, app.suite_panel
    widgets: dict[str, Any] = {**app.header.widgets(), "steps": app.step_list, "view": app.view,
                               "live": app.view.live_button, "history_filter": hp.filter_entry,
                               "history_status": hp.status_box, "history_refresh": hp.refresh_button,
                               "history_report": hp.report_button, "history_replay": hp.replay_button,
                               "history_again": hp.again_button, "history_folder": hp.folder_button,
                               "suite_folder": sp.folder_entry, "suite_attempts": sp.attempts_box,
                               "suite_engine": sp.engine_box, "suite_run": sp.run_button,
                               "suite_stop": sp.stop_button, "suite_report": sp.report_button}
    if app._dialog is not None:
        widgets.update(app._dialog.buttons)
    if app._task_dialog is not None and app._task_dialog.open:
        widgets.update(app._task_dialog.buttons)
    if app._bar is not None:
        widgets.update(app._bar.buttons)
    centers = {name: center_of(widget) for name, widget in widgets.items()}
    centers = {name: center for name, center in centers.items() if center is not None}
    centers.update(tab_centers(app.side, ["tab_runs", "tab_suite"]))
    for box, prefix in ((app.header.family_box, "family"), (app.header.name_box, "model_name"),
                        (app.header.target_box, "target"), (hp.status_box, "history_status"),
                        (sp.engine_box, "suite_engine")):
        centers.update(combo_items(box, prefix))
    centers.update(menu_items(hp.replay_menu, "replay", ["host", "virtual"]))
    return centers | (hp.row_centers() if hp.winfo_viewable() else {})


def tab_centers(notebook: Any, names: list[str]) -> dict[str, list[int]]:
    """The screen centres of a notebook's tabs, found by asking which tab is under points of its tab row."""
    spans: dict[int, list[int]] = {}
    with contextlib.suppress(tk.TclError):
        if not notebook.winfo_viewable():
            return {}
        y = None
        for probe in range(2, 80, 3):  # the tab row's height differs with the scale
            if notebook.identify(8, probe) or notebook.identify(notebook.winfo_width() // 8, probe):
                y = probe + 6
                break
        if y is None:
            return {}
        for x in range(0, notebook.winfo_width(), 3):
            with contextlib.suppress(tk.TclError):
                index = int(notebook.index(f"@{x},{y}"))
                spans.setdefault(index, []).append(x)
    return {names[i]: [notebook.winfo_rootx() + (xs[0] + xs[-1]) // 2, notebook.winfo_rooty() + y]
            for i, xs in spans.items() if i < len(names)}
