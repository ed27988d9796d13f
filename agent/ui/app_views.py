"""The widgets of `deskpilot app`'s main area, each on its own (the window lays them out; no job logic here).

- `LiveView` shows the frames of `agent.ui.screen_feed.ScreenFeed` on a canvas with the last action
  marked, or a finished run's final screen ("still"), with a caption and a Live button. A frame
  stays until another replaces it: a desktop that goes away leaves its last frame, not black.
- `StepList` is the Treeview of steps (#, action, thought, time, tokens).
- `AppMenus` is the menu bar (File, View) and its shortcuts.
- `center_of`, `combo_items`, `menu_items`: where widgets (and an open list's items) are on the screen.
"""

from __future__ import annotations

import contextlib
import tkinter as tk
from collections.abc import Callable
from tkinter import ttk
from typing import Any

from agent.ui.step_rows import excerpt

MARK_RADIUS = 12


class LiveView(ttk.Frame):
    """The target screen (or a finished run's final screen), scaled to fit, with the last action's point circled."""

    def __init__(self, master: tk.Misc, theme: Any, on_live: Callable[[], None]) -> None:
        super().__init__(master)
        self.theme = theme
        bar = ttk.Frame(self)
        bar.pack(fill="x", pady=(0, theme.px(6)))
        self.caption = ttk.Label(bar, text="Live view", style="Heading.TLabel")
        self.caption.pack(side="left")
        self.live_button = ttk.Button(bar, text="Live", image=theme.icons("live"), compound="left", command=on_live)
        self.live_button.pack(side="right")
        self.canvas = tk.Canvas(self, highlightthickness=0, width=theme.px(480), height=theme.px(300))
        self.canvas.pack(fill="both", expand=True)
        self.box = (theme.px(640), theme.px(400))
        self.point: list[float] | None = None
        self.label: str | None = None
        self.mode = "live"
        self._photo: tk.PhotoImage | None = None
        self._image = self.canvas.create_image(0, 0, anchor="nw")
        self._text = self.canvas.create_text(320, 200, text="", width=theme.px(420), justify="center",
                                             font="SunValleyBodyFont")
        self._geometry: tuple[float, int, int] | None = None  # scale, x offset, y offset
        self.canvas.bind("<Configure>", self._resized)
        self.recolor()

    def recolor(self) -> None:
        """Colours of the current theme."""
        colors = self.theme.colors
        self.canvas.configure(background=colors["view"])
        self.canvas.itemconfigure(self._text, fill=colors["text_on_view"])
        self._draw_mark()

    def _resized(self, event: tk.Event) -> None:
        self.box = (event.width, event.height)
        self.canvas.coords(self._text, event.width / 2, event.height / 2)
        if self._photo is not None:
            self._place(self._photo, self._geometry[0] if self._geometry else 1.0)

    def _place(self, photo: tk.PhotoImage, scale: float) -> None:
        ox = max(0, (self.box[0] - photo.width()) // 2)
        oy = max(0, (self.box[1] - photo.height()) // 2)
        self.canvas.coords(self._image, ox, oy)
        self._geometry = (scale, ox, oy)
        self._draw_mark()

    def show(self, png_base64: str, scale: float, caption: str | None = None) -> None:
        """Show one frame (from ScreenFeed.take(), or a still)."""
        photo = tk.PhotoImage(data=png_base64, format="png")
        self.canvas.itemconfigure(self._image, image=photo)
        self.canvas.itemconfigure(self._text, text="")
        self._photo = photo
        self._place(photo, scale)
        if caption is not None:
            self.caption.configure(text=caption)

    def show_still(self, view: dict) -> None:
        """A finished run's final screen (agent.ui.app_history.run_view) with its last action marked."""
        self.mode = "still"
        self.point, self.label = view.get("point"), view.get("action")
        if view.get("image"):
            self.show(view["image"], view["scale"], view["caption"])
        else:
            self.placeholder(view["caption"])
            self.caption.configure(text=view["caption"])
        self._draw_mark()

    def live(self, display: str | None) -> None:
        """Back to the live view of `display` (the current image stays until the next frame)."""
        self.mode, self.label = "live", None
        self.caption.configure(text=f"Live view of {display}" if display else "Live view")

    def placeholder(self, text: str) -> None:
        """No screen to show: a message instead."""
        self.canvas.itemconfigure(self._image, image="")
        self.canvas.itemconfigure(self._text, text=text)
        self._photo, self._geometry = None, None
        self._draw_mark()

    def mark(self, point: list[float] | None) -> None:
        """Circle `point` (screen pixels) on the view; None removes the mark."""
        self.point = point
        self._draw_mark()

    def _draw_mark(self) -> None:
        self.canvas.delete("mark")
        if self.point is None or self._geometry is None:
            return
        scale, ox, oy = self._geometry
        color = self.theme.colors["mark"]
        x, y, r = ox + self.point[0] * scale, oy + self.point[1] * scale, self.theme.px(MARK_RADIUS)
        self.canvas.create_oval(x - r, y - r, x + r, y + r, outline=color, width=self.theme.px(3), tags="mark")
        self.canvas.create_oval(x - 2, y - 2, x + 2, y + 2, fill=color, outline="", tags="mark")
        if self.mode == "still" and self.label:
            text = self.canvas.create_text(x + r + self.theme.px(6), y, text=excerpt(self.label, 48), anchor="w",
                                           fill="#ffffff", font="SunValleyCaptionFont", tags="mark")
            x0, y0, x1, y1 = self.canvas.bbox(text)
            pad = self.theme.px(4)
            back = self.canvas.create_rectangle(x0 - pad, y0 - pad // 2, x1 + pad, y1 + pad // 2, fill=color,
                                                outline="", tags="mark")
            self.canvas.tag_raise(text, back)

    def mark_box(self) -> list[int] | None:
        """The mark's centre in screen coordinates (for tests), or None."""
        if self.point is None or self._geometry is None:
            return None
        scale, ox, oy = self._geometry
        return [round(self.canvas.winfo_rootx() + ox + self.point[0] * scale),
                round(self.canvas.winfo_rooty() + oy + self.point[1] * scale)]

    def image_box(self) -> list[int] | None:
        """The shown image's box on the screen [x0, y0, x1, y1], or None."""
        if self._photo is None or self._geometry is None:
            return None
        _, ox, oy = self._geometry
        x0, y0 = self.canvas.winfo_rootx() + ox, self.canvas.winfo_rooty() + oy
        return [x0, y0, x0 + self._photo.width(), y0 + self._photo.height()]


class StepList(ttk.Frame):
    """The steps of the current (or chosen) run: #, action, thought excerpt, time, tokens; failed steps in red."""

    COLUMNS = (("#", 40, "e"), ("action", 220, "w"), ("thought", 180, "w"), ("time", 64, "e"), ("tokens", 72, "e"))

    def __init__(self, master: tk.Misc, theme: Any) -> None:
        super().__init__(master)
        self.theme = theme
        names = [c[0] for c in self.COLUMNS]
        self.tree = ttk.Treeview(self, columns=names, show="headings", selectmode="browse", height=5)
        for name, width, anchor in self.COLUMNS:
            self.tree.heading(name, text=name.capitalize(), anchor="center" if anchor == "e" else anchor)
            self.tree.column(name, width=theme.px(width), minwidth=theme.px(min(width, 40)), anchor=anchor,
                             stretch=name in ("action", "thought"))
        scroll = ttk.Scrollbar(self, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=scroll.set)
        self.tree.pack(side="left", fill="both", expand=True)
        scroll.pack(side="right", fill="y")
        self.recolor()

    def recolor(self) -> None:
        """Colours of the current theme."""
        self.tree.tag_configure("error", foreground=self.theme.colors["error"])

    def add(self, row: dict) -> None:
        """One step row (agent.ui.step_rows.step_row)."""
        action = row["action"] if row["ok"] else f"{row['action']}  \u2716 {excerpt(row['error'], 80)}"
        values = (row["i"], action, row["thought"], f"{row['time']:.1f} s",
                  "" if row["tokens"] is None else f"{row['tokens']:,}")
        item = self.tree.insert("", "end", values=values, tags=() if row["ok"] else ("error",))
        self.tree.see(item)

    def set_rows(self, rows: list[dict]) -> None:
        """Replace every row."""
        self.clear()
        for row in rows:
            self.add(row)

    def clear(self) -> None:
        """No rows."""
        self.tree.delete(*self.tree.get_children())


class AppMenus:
    """The menu bar: File (tasks, suites, replay, record, report, API key, quit) and View (theme, live, runs).

    `commands` maps "open_task_file", "open_suite", "replay_recording", "toggle_recording", "save_task",
    "open_report", "set_api_key", "quit", "go_live", "refresh_runs", "stop_sandbox" and "set_theme"
    (called with "system", "light" or "dark") to what they do.
    """

    def __init__(self, root: tk.Tk, commands: dict[str, Callable[..., None]], theme_setting: str) -> None:
        bar = tk.Menu(root)
        self.file = file = tk.Menu(bar, tearoff=False)
        file.add_command(label="Open task file\u2026", accelerator="Ctrl+O", command=commands["open_task_file"])
        file.add_command(label="Open suite folder\u2026", command=commands["open_suite"])
        file.add_command(label="Replay a recording\u2026", command=commands["replay_recording"])
        file.add_command(label="Record a demonstration", accelerator="Ctrl+R", command=commands["toggle_recording"])
        file.add_command(label="Save last recording as task file\u2026", command=commands["save_task"])
        file.add_command(label="Open a run's report\u2026", command=commands["open_report"])
        file.add_separator()
        file.add_command(label="Set API key\u2026", command=commands["set_api_key"])
        file.add_separator()
        file.add_command(label="Quit", accelerator="Ctrl+Q", command=commands["quit"])
        bar.add_cascade(label="File", menu=file)
        view = tk.Menu(bar, tearoff=False)
        self.theme_var = tk.StringVar(root, value=theme_setting)
        for label, value in (("Follow the system", "system"), ("Light", "light"), ("Dark", "dark")):
            view.add_radiobutton(label=label, value=value, variable=self.theme_var,
                                 command=lambda: commands["set_theme"](self.theme_var.get()))
        view.add_command(label="Toggle dark mode", accelerator="Ctrl+D", command=self._toggle(commands))
        view.add_separator()
        view.add_command(label="Live view", accelerator="Ctrl+L", command=commands["go_live"])
        view.add_command(label="Refresh runs", accelerator="F5", command=commands["refresh_runs"])
        view.add_command(label="Stop the sandbox", command=commands["stop_sandbox"])
        bar.add_cascade(label="View", menu=view)
        self.menus = (bar, file, view)
        root.configure(menu=bar)
        for key, name in (("<Control-o>", "open_task_file"), ("<Control-q>", "quit"), ("<Control-l>", "go_live"),
                          ("<F5>", "refresh_runs"), ("<Control-r>", "toggle_recording")):
            root.bind_all(key, lambda _e, name=name: commands[name]())
        root.bind_all("<Control-d>", lambda _e: self._toggle(commands)())

    def _toggle(self, commands: dict[str, Callable[..., None]]) -> Callable[[], None]:
        def toggle() -> None:
            commands["set_theme"]("toggle")
        return toggle

    def refresh(self, running: bool, job: str | None, has_recording: bool) -> None:
        """No replay nor suite while a job runs; the record entry stops a recording."""
        self.file.entryconfigure(1, state="disabled" if running else "normal")
        self.file.entryconfigure(2, state="disabled" if running else "normal")
        self.file.entryconfigure(3, label="Stop recording" if job == "record" else "Record a demonstration",
                                 state="normal" if job in (None, "record") else "disabled")
        self.file.entryconfigure(4, state="normal" if has_recording and not running else "disabled")


def center_of(widget: tk.Misc) -> list[int] | None:
    """The screen coordinates of a shown widget's centre, or None when it is not shown."""
    try:
        if widget.winfo_viewable():
            return [widget.winfo_rootx() + widget.winfo_width() // 2, widget.winfo_rooty() + widget.winfo_height() // 2]
    except tk.TclError:
        pass
    return None


def combo_items(combobox: ttk.Combobox, prefix: str) -> dict[str, list[int]]:
    """While a combobox's list is open: `prefix:value` -> the screen centre of each visible item."""
    found: dict[str, list[int]] = {}
    with contextlib.suppress(tk.TclError):
        popdown = combobox.tk.call("ttk::combobox::PopdownWindow", combobox)
        listbox = f"{popdown}.f.l"
        if not int(combobox.tk.call("winfo", "viewable", listbox)):
            return found
        x0, y0 = int(combobox.tk.call("winfo", "rootx", listbox)), int(combobox.tk.call("winfo", "rooty", listbox))
        for index, value in enumerate(combobox.cget("values")):
            box = combobox.tk.call(listbox, "bbox", index)
            if box:
                x, y, w, h = (int(v) for v in box)
                found[f"{prefix}:{value}"] = [x0 + x + w // 2, y0 + y + h // 2]
    return found


def menu_items(menu: tk.Menu, prefix: str, names: list[str]) -> dict[str, list[int]]:
    """While a menu is posted: `prefix:name` -> the screen centre of its entries (in order)."""
    found: dict[str, list[int]] = {}
    with contextlib.suppress(tk.TclError):
        if not menu.winfo_ismapped() or menu.winfo_rooty() + menu.winfo_height() > menu.winfo_screenheight():
            return found  # not posted, or not yet placed
        x, width = menu.winfo_rootx(), menu.winfo_width()
        for index, name in enumerate(names):
            top = menu.yposition(index)
            bottom = menu.yposition(index + 1) if index + 1 < len(names) else menu.winfo_height()
            found[f"{prefix}:{name}"] = [x + width // 2, menu.winfo_rooty() + (int(top) + int(bottom)) // 2]
    return found
