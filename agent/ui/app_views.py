"""The widgets of `deskpilot app` and the live view's capture thread.

- `ScreenFeed` grabs the target display a few times a second in a thread of its own, scales the
  frame to fit the view and PNG-encodes it; the Tk thread picks up the newest one. It makes no Tk
  call, so capture and encoding never stall the window.
- `LiveView` shows those frames on a canvas, with the last action marked (a circle at the point).
- `StepList` is the Treeview of steps (#, action, thought, time, tokens).
- `ConfirmDialog` is the modal question for the policy's "ask" verdicts.
- `HostBar` is the small always-on-top bar shown while the agent drives the desktop the app is on.
"""

from __future__ import annotations

import contextlib
import math
import threading
import tkinter as tk
from collections.abc import Callable
from tkinter import ttk
from typing import Any

MARK_RADIUS = 12
BAR_SIZE = (360, 36)  # the host bar, at the top-right corner
BAR_MARGIN = 4  # off the very corner, which is the kill switch's fail-safe
THOUGHT_CHARS = 90
ERROR_COLOR = "#c62828"


def excerpt(text: str | None, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def _point(value: Any) -> list[float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return [float(value[0]), float(value[1])]
    return None


def step_row(line: dict) -> dict:
    """What the step list shows of one recording step line (JSON-safe; secrets are already masked)."""
    from agent.recording.describe import describe

    action = line.get("action") if isinstance(line.get("action"), dict) else {}
    try:
        what = line.get("describe") or describe(action)
    except Exception:  # an odd action still gets a row
        what = str(action)
    usage = line.get("usage") if isinstance(line.get("usage"), dict) else {}
    tokens = sum(int(usage.get(k) or 0) for k in
                 ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"))
    return {"i": line.get("i"), "source": line.get("source"), "action": excerpt(what, 200),
            "thought": excerpt(line.get("thought"), THOUGHT_CHARS), "time": round(float(line.get("t") or 0.0), 2),
            "tokens": tokens or None, "ok": bool(line.get("ok", True)), "error": line.get("error"),
            "point": _point(action.get("coordinate"))}


class ScreenFeed:
    """The newest frame of one display, scaled to fit `box` and PNG-encoded (base64), `fps` times a second.

    `watch(display)` chooses the display (None: nothing); `release(display)` lets go of it and
    returns only once no capture of it is running (call it before stopping that X server);
    `take()` returns (png_base64, scale, (screen_w, screen_h), display) or None when nothing new.
    `box` (the view's size) and `active` (False while the window is hidden) are set by the Tk thread.
    """

    def __init__(self, fps: float = 4.0) -> None:
        self.interval = 1.0 / fps
        self.box: tuple[int, int] = (640, 400)
        self.active = True
        self.error: str | None = None
        self._lock = threading.Lock()
        self._display: str | None = None
        self._screen: Any = None
        self._latest: tuple | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="live-view")

    def start(self) -> ScreenFeed:
        self._thread.start()
        return self

    @property
    def display(self) -> str | None:
        return self._display

    def watch(self, display: str | None) -> None:
        with self._lock:
            if display != self._display:
                self._drop()
                self._display, self._latest, self.error = display, None, None

    def release(self, display: str) -> None:
        with self._lock:
            if self._display == display:
                self._drop()
                self._display, self._latest = None, None

    def take(self) -> tuple | None:
        with self._lock:
            latest, self._latest = self._latest, None
            return latest

    def close(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        with self._lock:
            self._drop()
            self._display = None

    def _drop(self) -> None:
        if self._screen is not None:
            with contextlib.suppress(Exception):
                self._screen.close()
            self._screen = None

    def _run(self) -> None:
        from vision.capture import Screen
        from vision.encode import encode, resize
        from vision.geometry import Size

        wait = self.interval
        while not self._stopping.wait(wait):
            wait = self.interval
            if not self.active:
                continue
            with self._lock:
                display = self._display
                if display is None:
                    continue
                try:
                    if self._screen is None:
                        self._screen = Screen(display)
                    frame = self._screen.grab()
                except Exception as exc:  # the display went away or cannot be read: try again later
                    self.error = f"cannot show {display}: {exc}"
                    self._drop()
                    wait = 1.0
                    continue
            try:
                h, w = frame.pixels.shape[:2]
                bw, bh = max(self.box[0], 16), max(self.box[1], 16)
                scale = min(bw / w, bh / h, 1.0)
                size = Size(max(1, int(w * scale)), max(1, int(h * scale)))
                data = encode(resize(frame.pixels, size), "png").base64()
            except Exception as exc:
                self.error = f"cannot show {display}: {exc}"
                continue
            with self._lock:
                if self._display == display:
                    self._latest, self.error = (data, scale, (w, h), display), None


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
