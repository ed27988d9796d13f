"""The app's look: the Sun Valley ttk theme (`sv-ttk`), light or dark, fonts and sizes scaled for the screen,
and the toolbar's icons, drawn here (no image files, no downloads).

- `ui_scale(root)`: how much larger than at 96 DPI everything is drawn: `DESKPILOT_UI_SCALE` when
  set, else the larger of the X resource `Xft.dpi` (what GNOME, KDE and Xfce set for HiDPI screens)
  and the screen's own pixels per inch as Tk reads them, over 96; rounded to quarters, 1 to 4.
  Tk's own scaling is set from it, so point-sized fonts grow with it.
- `system_theme(env)`: "dark" or "light" as the desktop says (GTK_THEME, then GNOME's
  color-scheme/gtk-theme through `gsettings`), None where it cannot be read.
- `Theme.apply(mode)`: the theme ("system", "light", "dark"), fonts (the first installed of a few
  sans-serif families, DejaVu Sans at least: scripts/setup installs it), row heights and colours.
- `draw_icon(name, size, color)`: PNG bytes of a small antialiased icon (play, pause, stop, record,
  live, folder, refresh, check), drawn with numpy at 4x and averaged down.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk
from typing import Any

FAMILIES = ("Noto Sans", "Cantarell", "Ubuntu", "Segoe UI", "Helvetica Neue", "DejaVu Sans")
BODY_PT, SMALL_PT, HEADING_PT, MONO_PT = 10, 9, 12, 10
COLORS = {
    "light": {"fg": "#1c1c1c", "muted": "#5f6368", "bg": "#fafafa", "view": "#eceff1", "error": "#c62828",
              "ok": "#2e7d32", "warn": "#b26a00", "disabled": "#a0a0a0",
              "accent": "#005fb8", "mark": "#ff3b30", "text_on_view": "#455a64"},
    "dark": {"fg": "#f2f2f2", "muted": "#a8adb3", "bg": "#1c1c1c", "view": "#111315", "error": "#ff6b6b",
             "ok": "#81c995", "warn": "#fdd663", "disabled": "#6b6b6b",
             "accent": "#57c8ff", "mark": "#ff453a", "text_on_view": "#9aa0a6"},
}


def scale_from(override: str | None, xft_dpi: float | None, tk_dpi: float | None) -> float:
    """The UI scale from an explicit override, the Xft.dpi resource and Tk's pixels per inch (see module doc)."""
    if override:
        with contextlib.suppress(ValueError):
            return min(4.0, max(0.5, round(float(override) * 4) / 4))
    dpi = max(d for d in (xft_dpi, tk_dpi, 96.0) if d)
    return min(4.0, max(1.0, round(dpi / 96.0 * 4) / 4))


def xft_dpi(display: str | None) -> float | None:
    """The `Xft.dpi` resource of an X display (the root window's RESOURCE_MANAGER), or None."""
    if not display:
        return None
    try:
        from Xlib import Xatom
        from Xlib import display as xdisplay

        conn = xdisplay.Display(display)
        try:
            prop = conn.screen().root.get_full_property(Xatom.RESOURCE_MANAGER, Xatom.STRING)
        finally:
            conn.close()
    except Exception:  # not X, or the display cannot be read: no resource
        return None
    text = prop.value.decode("latin-1") if prop is not None and isinstance(prop.value, bytes) else ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Xft.dpi":
            with contextlib.suppress(ValueError):
                return float(value.strip())
    return None


def ui_scale(root: tk.Misc) -> float:
    """The scale of this screen (see the module docstring)."""
    try:
        tk_dpi = float(root.winfo_fpixels("1i"))
    except tk.TclError:
        tk_dpi = None
    return scale_from(os.environ.get("DESKPILOT_UI_SCALE"), xft_dpi(os.environ.get("DISPLAY")), tk_dpi)


def system_theme(env: dict[str, str] | None = None, timeout_s: float = 1.0) -> str | None:
    """"dark" or "light" as the desktop prefers, or None when it cannot be told."""
    env = os.environ if env is None else env
    gtk = env.get("GTK_THEME", "")
    if gtk:
        return "dark" if gtk.lower().endswith((":dark", "-dark")) else "light"
    if shutil.which("gsettings") is None:
        return None
    for key in ("color-scheme", "gtk-theme"):
        try:
            out = subprocess.run(["gsettings", "get", "org.gnome.desktop.interface", key], capture_output=True,
                                 text=True, timeout=timeout_s, env=dict(env)).stdout.strip().strip("'").lower()
        except (OSError, subprocess.SubprocessError):
            return None
        if key == "color-scheme" and out in ("prefer-dark", "prefer-light"):
            return out.split("-")[1]
        if key == "gtk-theme" and out:
            return "dark" if "dark" in out else "light"
    return None


class Theme:
    """The window's theme and sizes: `scale`, `mode` ("light" | "dark"), `colors`, `px(n)` and icons."""

    def __init__(self, root: tk.Tk, scale: float | None = None) -> None:
        self.root = root
        self.scale = scale if scale is not None else ui_scale(root)
        root.tk.call("tk", "scaling", self.scale * 96.0 / 72.0)
        self.mode = "light"
        self.setting = "system"
        self.family = next((f for f in FAMILIES if f in set(tkfont.families(root))), "TkDefaultFont")
        self._icons: dict[tuple[str, int, str], tk.PhotoImage] = {}
        self._roles: dict[str, tuple[str, int, str]] = {}  # image name -> (icon, size, role)

    @property
    def colors(self) -> dict[str, str]:
        """The colours of the current mode."""
        return COLORS[self.mode]

    def px(self, n: float) -> int:
        """`n` pixels at 96 DPI, in this screen's pixels."""
        return max(1, round(n * self.scale))

    def apply(self, setting: str = "system") -> str:
        """Use the theme `setting` (system | light | dark); returns the mode in use."""
        import sv_ttk

        self.setting = setting if setting in ("system", "light", "dark") else "system"
        mode = self.setting if self.setting != "system" else (system_theme() or "light")
        sv_ttk.set_theme(mode, self.root)
        self.mode = mode
        self._fonts()
        style = ttk.Style(self.root)
        body = tkfont.nametofont("SunValleyBodyFont", self.root)
        style.configure("Treeview", rowheight=body.metrics("linespace") + self.px(8))
        style.configure("Status.TLabel", foreground=self.colors["muted"])
        style.configure("Error.TLabel", foreground=self.colors["error"])
        style.configure("Caption.TLabel", font="SunValleyCaptionFont", foreground=self.colors["muted"])
        style.configure("Heading.TLabel", font="SunValleyBodyStrongFont")
        self._retint(self.root)
        return mode

    def _retint(self, widget: tk.Misc) -> None:
        """Icons drawn in the text colour (or greyed out) are drawn again in the new mode's colours."""
        for child in widget.winfo_children():
            self._retint(child)
            try:
                spec = child.cget("image")
            except tk.TclError:
                continue
            parts = list(spec) if isinstance(spec, (tuple, list)) else str(spec).split()
            swapped = [self._swap(str(part)) for part in parts]
            if parts and swapped != [str(p) for p in parts]:
                child.configure(image=tuple(swapped) if len(swapped) > 1 else swapped[0])

    def _swap(self, image: str) -> Any:
        meta = self._roles.get(image)
        if meta is None:
            return image
        name, size, role = meta
        return self._photo(name, size, role)

    def _fonts(self) -> None:
        sizes = {"SunValleyCaptionFont": (SMALL_PT, "normal"), "SunValleyBodyFont": (BODY_PT, "normal"),
                 "SunValleyBodyStrongFont": (BODY_PT, "bold"), "SunValleyBodyLargeFont": (HEADING_PT, "normal"),
                 "SunValleySubtitleFont": (HEADING_PT, "bold"), "SunValleyTitleFont": (16, "bold"),
                 "TkDefaultFont": (BODY_PT, "normal"), "TkTextFont": (BODY_PT, "normal"),
                 "TkMenuFont": (BODY_PT, "normal"), "TkHeadingFont": (BODY_PT, "bold"),
                 "TkCaptionFont": (HEADING_PT, "bold"), "TkSmallCaptionFont": (SMALL_PT, "normal"),
                 "TkTooltipFont": (SMALL_PT, "normal")}
        for name, (size, weight) in sizes.items():
            with contextlib.suppress(tk.TclError):
                tkfont.nametofont(name, self.root).configure(family=self.family, size=size, weight=weight)
        with contextlib.suppress(tk.TclError):
            tkfont.nametofont("TkFixedFont", self.root).configure(size=MONO_PT)

    def icons(self, name: str, size: int = 16, color: str | None = None) -> tuple:
        """A ttk image spec: the icon in `color`, greyed out while its widget is disabled."""
        return (self.icon(name, size, color), "disabled", self._photo(name, size, "disabled"))

    def icon(self, name: str, size: int = 16, color: str | None = None) -> tk.PhotoImage:
        """The icon `name` at `size` (96-DPI pixels, scaled) in `color` (default: the text colour, which
        follows the theme)."""
        return self._photo(name, size, color or "fg")

    def _photo(self, name: str, size: int, role: str) -> tk.PhotoImage:
        """`role`: "fg" or "disabled" (the theme's colours, redrawn when it changes) or a colour."""
        color = self.colors[role] if role in ("fg", "disabled") else role
        key = (name, self.px(size), color)
        if key not in self._icons:  # images are kept: a widget may still show one of another mode
            data = base64.b64encode(draw_icon(name, key[1], color)).decode("ascii")
            self._icons[key] = image = tk.PhotoImage(master=self.root, data=data, format="png")
            self._roles[str(image)] = (name, size, role)
        return self._icons[key]


def draw_icon(name: str, size: int, color: str) -> bytes:
    """PNG bytes of icon `name` (start, pause, stop, record, live, folder, refresh, check, report) in `color`."""
    import cv2
    import numpy as np

    ss = 4
    n = size * ss
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n  # pixel centres in 0..1
    shapes = {
        "start": (x >= 0.25) & (x <= 0.85) & (np.abs(y - 0.5) <= (0.85 - x) * 0.58),
        "pause": ((np.abs(x - 0.34) <= 0.1) | (np.abs(x - 0.66) <= 0.1)) & (np.abs(y - 0.5) <= 0.32),
        "stop": (np.abs(x - 0.5) <= 0.3) & (np.abs(y - 0.5) <= 0.3),
        "record": (x - 0.5) ** 2 + (y - 0.5) ** 2 <= 0.33 ** 2,
        "live": ((x - 0.5) ** 2 + (y - 0.5) ** 2 <= 0.17 ** 2)
        | (np.abs(np.hypot(x - 0.5, y - 0.5) - 0.36) <= 0.06),
        "folder": ((x >= 0.1) & (x <= 0.9) & (y >= 0.3) & (y <= 0.82))
        | ((x >= 0.1) & (x <= 0.45) & (y >= 0.2) & (y <= 0.32)),
        "refresh": (np.abs(np.hypot(x - 0.5, y - 0.5) - 0.3) <= 0.07) & ~((x > 0.5) & (y < 0.5) & (x - 0.5 > 0.5 - y))
        | ((x >= 0.62) & (x <= 0.9) & (y >= 0.1) & (y <= 0.38) & (x - 0.62 >= y - 0.1)),
        "check": (_segment(x, y, (0.18, 0.52), (0.4, 0.74)) <= 0.08)
        | (_segment(x, y, (0.4, 0.74), (0.84, 0.28)) <= 0.08),
        "report": ((x >= 0.2) & (x <= 0.8) & (y >= 0.1) & (y <= 0.9))
        & ~((x >= 0.3) & (x <= 0.7) & (np.abs((y - 0.3) % 0.18) < 0.1) & (y >= 0.25) & (y <= 0.8)),
    }
    if name not in shapes:
        raise ValueError(f"no icon {name!r}")
    mask = shapes[name].astype(np.float32)
    alpha = mask.reshape(size, ss, size, ss).mean(axis=(1, 3))
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    image = np.zeros((size, size, 4), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = b, g, r
    image[..., 3] = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"cannot encode icon {name!r}")
    return png.tobytes()


def _segment(x, y, p: tuple[float, float], q: tuple[float, float]):  # noqa: ANN001, ANN202 (numpy arrays)
    """The distance of every point (x, y) to the segment p-q."""
    import numpy as np

    dx, dy = q[0] - p[0], q[1] - p[1]
    t = np.clip(((x - p[0]) * dx + (y - p[1]) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(x - (p[0] + t * dx), y - (p[1] + t * dy))
