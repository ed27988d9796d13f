"""Canonical actions in words, for reports, the app's step list and the rollouts' narratives."""

from __future__ import annotations

import json
import math
from typing import Any

POINTER_ACTIONS = {"left_click", "right_click", "middle_click", "double_click", "triple_click", "mouse_move",
                   "left_mouse_down", "left_mouse_up", "scroll", "left_click_drag"}


def point_of(value: Any) -> tuple[float, float] | None:
    """A recorded [x, y] as floats, or None when it is not a finite pair."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        return float(value[0]), float(value[1])
    return None


def _fmt_xy(p: tuple[float, float]) -> str:
    return f"({p[0]:g}, {p[1]:g})"


def describe(action: dict) -> str:
    """A one-line, human-readable form of a canonical action (not yet escaped)."""
    tool, name = action.get("tool"), action.get("action")
    if tool == "bash" and name is None:
        return "$ " + str(action.get("command", "(restart)" if action.get("restart") else ""))
    if tool not in (None, "computer") and name is None:
        rest = {k: v for k, v in action.items() if k != "tool"}
        return f"{tool} {json.dumps(rest, ensure_ascii=False)}"
    if name == "type":
        names = action.get("secrets") or ([action["secret"]] if action.get("secret") else [])
        hidden = f"  [secret {', '.join(map(str, names))}]" if names else ""
        return f"type {json.dumps(action.get('text', ''), ensure_ascii=False)}{hidden}"
    if name in ("key", "hold_key"):
        extra = f" for {action['duration']} s" if action.get("duration") is not None else ""
        return f"{name} {action.get('text', '')}{extra}"
    start, end = point_of(action.get("start_coordinate")), point_of(action.get("coordinate"))
    if name == "left_click_drag" and start and end:
        return f"drag {_fmt_xy(start)} → {_fmt_xy(end)}"
    if name == "scroll":
        where = f" at {_fmt_xy(end)}" if end else ""
        return f"scroll {action.get('scroll_direction', action.get('direction', '?'))} " \
               f"×{action.get('scroll_amount', action.get('amount', '?'))}{where}"
    if name == "wait":
        return f"wait {action.get('duration', '?')} s"
    text = str(name or "?") + (f" {_fmt_xy(end)}" if end else "")
    if action.get("text") and name in POINTER_ACTIONS:
        text += f" with {action['text']}"
    rest = {k: v for k, v in action.items() if k not in ("action", "tool", "coordinate", "text")}
    return text + (f" {json.dumps(rest, ensure_ascii=False)}" if rest else "")
