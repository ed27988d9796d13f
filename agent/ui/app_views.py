"""The widgets of `deskpilot app`, each on its own (the window lays them out; no job logic here).

- `LiveView` shows the frames of `agent.ui.screen_feed.ScreenFeed` on a canvas, with the last
  action marked (a circle at the point).
- `StepList` is the Treeview of steps (#, action, thought, time, tokens).
- `ConfirmDialog` is the modal question for the policy's "ask" verdicts.
- `HostBar` is the small always-on-top bar shown while the agent drives the desktop the app is on.
"""

from __future__ import annotations

import contextlib
import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from agent.ui.step_rows import excerpt

MARK_RADIUS = 12
BAR_SIZE = (360, 36)  # the host bar, at the top-right corner
BAR_MARGIN = 4  # off the very corner, which is the kill switch's fail-safe
ERROR_COLOR = "#c62828"


class LiveView(ttk.Frame):
    """The target screen, scaled to fit, with the last action's point circled."""

    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master)
        self.canvas = tk.Canvas(self, background="#1e1e1e", highlightthickness=0, width=480, height=320)
        self.canvas.pack(fill="both", expand=True)
        self.box = (640, 400)
        self.point: list[float] | None = None
        self._photo: tk.PhotoImage | None = None
        self._image = self.canvas.create_image(0, 0, anchor="nw")
        self._text = self.canvas.create_text(320, 200, fill="#bbbbbb", text="", width=420, justify="center")
        self._geometry: tuple[float, int, int] | None = None  # scale, x offset, y offset
        self.canvas.bind("<Configure>", self._resized)

    def _resized(self, event: tk.Event) -> None:
        self.box = (event.width, event.height)
        self.canvas.coords(self._text, event.width / 2, event.height / 2)

    def show(self, png_base64: str, scale: float) -> None:
        """Show one frame from ScreenFeed.take()."""
        photo = tk.PhotoImage(data=png_base64, format="png")
        ox = max(0, (self.box[0] - photo.width()) // 2)
        oy = max(0, (self.box[1] - photo.height()) // 2)
        self.canvas.itemconfigure(self._image, image=photo)
        self.canvas.coords(self._image, ox, oy)
        self.canvas.itemconfigure(self._text, text="")
        self._photo, self._geometry = photo, (scale, ox, oy)
        self._draw_mark()

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
        x, y, r = ox + self.point[0] * scale, oy + self.point[1] * scale, MARK_RADIUS
        self.canvas.create_oval(x - r, y - r, x + r, y + r, outline="#ff3b30", width=3, tags="mark")
        self.canvas.create_oval(x - 2, y - 2, x + 2, y + 2, fill="#ff3b30", outline="", tags="mark")


class StepList(ttk.Frame):
    """The steps of the current run: #, action, thought excerpt, time, tokens; failed steps in red."""

    COLUMNS = (("#", 36, "e"), ("action", 200, "w"), ("thought", 170, "w"), ("time", 56, "e"), ("tokens", 64, "e"))

    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master)
        names = [c[0] for c in self.COLUMNS]
        self.tree = ttk.Treeview(self, columns=names, show="headings", selectmode="browse")
        for name, width, anchor in self.COLUMNS:
            self.tree.heading(name, text=name)
            self.tree.column(name, width=width, minwidth=min(width, 40), anchor=anchor,
                             stretch=name in ("action", "thought"))
        self.tree.tag_configure("error", foreground=ERROR_COLOR)
        scroll = ttk.Scrollbar(self, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=scroll.set)
        self.tree.pack(side="left", fill="both", expand=True)
        scroll.pack(side="right", fill="y")

    def add(self, row: dict) -> None:
        action = row["action"] if row["ok"] else f"{row['action']}  \u2716 {excerpt(row['error'], 80)}"
        values = (row["i"], action, row["thought"], f"{row['time']:.1f} s",
                  "" if row["tokens"] is None else f"{row['tokens']:,}")
        item = self.tree.insert("", "end", values=values, tags=() if row["ok"] else ("error",))
        self.tree.see(item)

    def clear(self) -> None:
        self.tree.delete(*self.tree.get_children())


class ConfirmDialog:
    """Modal: the action, the rule and its reason; Allow / Deny / Always allow for this run.

    `on_answer` gets "allow", "deny" or "always" exactly once; closing the window denies.
    """

    def __init__(self, root: tk.Tk, request: dict, on_answer: Callable[[str], None], *, over_root: bool) -> None:
        self.root, self.on_answer, self.answered = root, on_answer, False
        self.top = top = tk.Toplevel(root)
        top.withdraw()  # mapped once placed
        top.title("deskpilot: allow this action?")
        top.resizable(False, False)
        with contextlib.suppress(tk.TclError):
            top.attributes("-topmost", True)
        if over_root:
            top.transient(root)
        body = ttk.Frame(top, padding=16)
        body.pack(fill="both", expand=True)
        ttk.Label(body, text="The agent wants to do this:", font="TkHeadingFont").pack(anchor="w")
        ttk.Label(body, text=request["action"], font="TkFixedFont", wraplength=520,
                  justify="left").pack(anchor="w", pady=(4, 10))
        rule = f"Policy rule: {request['rule']}" if request.get("rule") else "The policy's default"
        ttk.Label(body, text=f"{rule}: {request['reason']}", wraplength=520, justify="left").pack(anchor="w")
        if request.get("matched"):
            ttk.Label(body, text=f"Matched: {excerpt(request['matched'], 200)}", wraplength=520,
                      justify="left").pack(anchor="w", pady=(2, 0))
        row = ttk.Frame(body)
        row.pack(fill="x", pady=(14, 0))
        self.buttons = {
            "allow": ttk.Button(row, text="Allow", command=lambda: self.answer("allow")),
            "deny": ttk.Button(row, text="Deny", command=lambda: self.answer("deny")),
            "always": ttk.Button(row, text="Always allow for this run", command=lambda: self.answer("always")),
        }
        for name in ("allow", "deny", "always"):
            self.buttons[name].pack(side="left", padx=(0, 8))
        if not request.get("rule"):  # "always" remembers a rule; there is none to remember
            self.buttons["always"].state(["disabled"])
        top.protocol("WM_DELETE_WINDOW", lambda: self.answer("deny"))
        top.bind("<Escape>", lambda _e: self.answer("deny"))
        self.buttons["deny"].focus_set()  # the safe default for Return/space
        top.update_idletasks()
        w, h = top.winfo_reqwidth(), top.winfo_reqheight()
        if over_root and root.winfo_viewable():
            x = root.winfo_rootx() + (root.winfo_width() - w) // 2
            y = root.winfo_rooty() + (root.winfo_height() - h) // 3
        else:
            x, y = (root.winfo_screenwidth() - w) // 2, (root.winfo_screenheight() - h) // 3
        top.geometry(f"+{max(0, x)}+{max(0, y)}")
        top.deiconify()
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
                 on_stop: Callable[[], None], can_pause: bool) -> None:
        self.on_pause, self.on_resume, self.paused = on_pause, on_resume, False
        self.top = top = tk.Toplevel(root)
        top.overrideredirect(True)
        with contextlib.suppress(tk.TclError):
            top.attributes("-topmost", True)
        w, h = BAR_SIZE
        top.geometry(f"{w}x{h}+{root.winfo_screenwidth() - w - BAR_MARGIN}+{BAR_MARGIN}")
        frame = tk.Frame(top, background="#263238", padx=4, pady=3)
        frame.pack(fill="both", expand=True)
        self.pause_button = ttk.Button(frame, text="Pause", width=7, command=self._toggle)
        self.pause_button.pack(side="left")
        if not can_pause:
            self.pause_button.state(["disabled"])
        stop = ttk.Button(frame, text="Stop", width=6, command=on_stop)
        stop.pack(side="left", padx=(4, 6))
        self.buttons = {"bar_pause": self.pause_button, "bar_stop": stop}
        self.label = tk.Label(frame, text="deskpilot is working\u2026", anchor="w", background="#263238",
                              foreground="#eceff1")
        self.label.pack(side="left", fill="x", expand=True)

    def _toggle(self) -> None:
        (self.on_resume if self.paused else self.on_pause)()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.pause_button.configure(text="Resume" if paused else "Pause")

    def set_action(self, text: str) -> None:
        self.label.configure(text=excerpt(text, 34))

    def destroy(self) -> None:
        with contextlib.suppress(tk.TclError):
            self.top.destroy()


class FileMenu:
    """The window's File menu (open a task file, replay, record, report, API key, quit) and its shortcuts.

    `commands` maps "open_task_file", "replay_recording", "toggle_recording", "open_report", "set_api_key"
    and "quit" to what they do.
    """

    def __init__(self, root: tk.Tk, commands: dict[str, Callable[[], None]]) -> None:
        menu = tk.Menu(root)
        self.menu = file = tk.Menu(menu, tearoff=False)
        file.add_command(label="Open task file\u2026", accelerator="Ctrl+O", command=commands["open_task_file"])
        file.add_command(label="Replay a recording\u2026", command=commands["replay_recording"])
        file.add_command(label="Record a demonstration", command=commands["toggle_recording"])
        file.add_command(label="Open a run's report\u2026", command=commands["open_report"])
        file.add_separator()
        file.add_command(label="Set API key\u2026", command=commands["set_api_key"])
        file.add_separator()
        file.add_command(label="Quit", accelerator="Ctrl+Q", command=commands["quit"])
        menu.add_cascade(label="File", menu=file)
        root.configure(menu=menu)
        root.bind_all("<Control-o>", lambda _e: commands["open_task_file"]())
        root.bind_all("<Control-q>", lambda _e: commands["quit"]())

    def refresh(self, running: bool, job: str | None) -> None:
        """No replay while a job runs; the record entry stops a recording."""
        self.menu.entryconfigure(1, state="disabled" if running else "normal")
        self.menu.entryconfigure(2, label="Stop recording" if job == "record" else "Record a demonstration",
                                 state="normal" if job in (None, "record") else "disabled")


def center_of(widget: tk.Misc) -> list[int] | None:
    """The screen coordinates of a shown widget's centre, or None when it is not shown."""
    try:
        if widget.winfo_viewable():
            return [widget.winfo_rootx() + widget.winfo_width() // 2, widget.winfo_rooty() + widget.winfo_height() // 2]
    except tk.TclError:
        pass
    return None
