"""What the app shows of a recording's step lines: one plain, JSON-safe row per step (no Tk here)."""

from __future__ import annotations

from agent.recording.describe import describe, point_of

THOUGHT_CHARS = 90


def excerpt(text: str | None, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def step_row(line: dict) -> dict:
    """What the step list shows of one recording step line (JSON-safe; secrets are already masked)."""
    action = line.get("action") if isinstance(line.get("action"), dict) else {}
    try:
        what = line.get("describe") or describe(action)
    except Exception:  # an odd action still gets a row
        what = str(action)
    point = point_of(action.get("coordinate"))
    usage = line.get("usage") if isinstance(line.get("usage"), dict) else {}
    tokens = sum(int(usage.get(k) or 0) for k in
                 ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"))
    return {"i": line.get("i"), "source": line.get("source"), "action": excerpt(what, 200),
            "thought": excerpt(line.get("thought"), THOUGHT_CHARS), "time": round(float(line.get("t") or 0.0), 2),
            "tokens": tokens or None, "ok": bool(line.get("ok", True)), "error": line.get("error"),
            "point": list(point) if point else None}
