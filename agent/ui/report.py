"""`deskpilot report`: one self-contained HTML page for a recording folder.

`write_report(recording)` reads the folder with `Recording.load` (so a missing or invalid
recording raises `RecordingError`, exit 2 in the CLI) and writes `<recording>/report.html`:

* a header with the goal or task, kind, model, status, checks, duration, steps, tokens and cost,
  the rollouts' attempts side by side (the chosen one marked) when meta lists `attempts`;
* one card per step (`data-step="i"`, class `failed` when the step failed): the screenshot taken
  before it, with the action drawn on it, the model's thought, timing, tokens and any error.
  Click points are `span.marker` elements (`data-x`/`data-y` = recorded screen pixels) placed
  at percentages of meta's screen size, so they stay right at any rendered size; drags add an
  SVG arrow; typed text and keys are captions. Replay steps show how the target was found.

This module turns the recording into plain values (`Page`, `StepCard`, ...); the markup is the
Jinja2 template `templates/report.html.j2` (with `report.css` and `report.js`), rendered with
autoescape on, so whatever a recording holds is shown as text, never as HTML.

The page has inline CSS and JS only: no network, no fonts, no scripts from elsewhere. Images are
referenced relatively (`frames/000003.png`) with `loading="lazy"`; `embed=True` inlines them as
data URIs instead, for a single portable file. The enlarged view (click, or Enter) is built only
when opened. Keys: j/k or arrows move between steps, Enter/Escape open/close the enlarged image.
A recording still "running", or with a truncated last line, renders what exists, marked
"incomplete". Secrets are never looked up: the recording already holds only placeholders.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agent.recording.describe import POINTER_ACTIONS, describe, point_of
from agent.recording.files import atomic_write
from agent.recording.format import is_inside
from agent.recording.reader import MAX_IMAGE_BYTES, contained
from agent.recording.writer import Recording, RecordingError

REPORT_FILE = "report.html"
TEMPLATE = "report.html.j2"
_MAX_OUTPUT = 4000
_MAX_CAPTION = 160
_CAPTIONED = ("type", "key", "hold_key", "scroll", "wait", "zoom")


@dataclass(frozen=True)
class Marker:
    """A point drawn on a screenshot: recorded pixels, and CSS percentages of the screen."""

    x: str
    y: str
    left: str
    top: str
    cls: str = ""


@dataclass(frozen=True)
class Arrow:
    """A drag's line (screen pixels) and its arrow head (SVG polygon points, "" for a zero-length drag)."""

    x1: str
    y1: str
    x2: str
    y2: str
    head: str


@dataclass(frozen=True)
class Drawing:
    """What is drawn over a step's screenshot."""

    arrow: Arrow | None = None
    markers: list[Marker] = field(default_factory=list)
    caption: str = ""


@dataclass(frozen=True)
class Target:
    """How a replay step found its target."""

    method: str
    confidence: str


@dataclass(frozen=True)
class StepCard:
    """One step of the report."""

    i: Any
    failed: bool
    frame: str | None
    drawing: Drawing
    action: str
    when: str
    thought: str
    error: str
    target: Target | None
    timing: str
    tokens: str
    output: str
    raw: str


@dataclass(frozen=True)
class AttemptCard:
    """One rollout attempt, beside the others."""

    n: int
    chosen: bool
    status: str
    path: str
    passed: str
    steps: str
    cost: str
    final: str


@dataclass(frozen=True)
class CheckLine:
    """One check of a task run."""

    ok: bool
    name: str
    detail: str


@dataclass(frozen=True)
class Page:
    """Everything the template shows."""

    title: str
    heading: str
    badges: list[str]
    status: str
    incomplete: list[str]
    stats: list[tuple[str, str]]
    checks: list[CheckLine]
    error: str
    result: str
    attempts: list[AttemptCard]
    steps: list[StepCard]
    final: str | None
    width: int
    height: int
    aspect: str


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "–"


def _pct(value: float, total: float) -> str:
    return f"{100.0 * value / total:.4f}%"


def _usd(value: Any, prefix: str = "") -> str:
    return f"{prefix}${value:.4f}" if isinstance(value, (int, float)) else ""


def _tokens(usage: dict) -> str:
    return (f"in {_num(usage.get('input_tokens'))} · out {_num(usage.get('output_tokens'))} · "
            f"cache read {_num(usage.get('cache_read_tokens'))} · cache write {_num(usage.get('cache_write_tokens'))}")


class _PageBuilder:
    """Turns one recording into a Page; images referenced relatively, or inlined with `embed`."""

    def __init__(self, rec: Recording, embed: bool) -> None:
        self.rec, self.embed = rec, embed
        screen = rec.meta.get("screen") or {}
        width, height = screen.get("width"), screen.get("height")
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            first = next((s["frame"] for s in rec.steps if s.get("frame")), None)
            height, width = rec.load_image(first).shape[:2] if first else (800, 1280)
        self.w, self.h = width, height

    def src(self, relative: str) -> str:
        if not self.embed:
            return quote(relative, safe="/")
        mime = "image/jpeg" if relative.lower().endswith((".jpg", ".jpeg")) else "image/png"
        path = contained(self.rec.path, relative, str(self.rec.path), MAX_IMAGE_BYTES)  # checked again, as read
        return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"

    def marker(self, p: tuple[float, float], cls: str = "") -> Marker:
        return Marker(f"{p[0]:g}", f"{p[1]:g}", _pct(p[0], self.w), _pct(p[1], self.h), cls)

    def on_screen(self, p: tuple[float, float] | None) -> bool:
        return p is not None and 0 <= p[0] < self.w and 0 <= p[1] < self.h

    def arrow(self, start: tuple[float, float], end: tuple[float, float]) -> Arrow:
        (x1, y1), (x2, y2) = start, end
        length, size = math.hypot(x2 - x1, y2 - y1), 0.025 * max(self.w, self.h)
        head = ""
        if length > 0:
            ux, uy = (x2 - x1) / length, (y2 - y1) / length
            bx, by = x2 - ux * size, y2 - uy * size
            points = [(x2, y2), (bx - uy * size / 2, by + ux * size / 2), (bx + uy * size / 2, by - ux * size / 2)]
            head = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        return Arrow(f"{x1:g}", f"{y1:g}", f"{x2:g}", f"{y2:g}", head)

    def drawing(self, action: dict) -> Drawing:
        name, arrow, markers = action.get("action"), None, []
        start, end = point_of(action.get("start_coordinate")), point_of(action.get("coordinate"))
        if name == "left_click_drag" and self.on_screen(start) and self.on_screen(end):
            arrow = self.arrow(start, end)
            markers = [self.marker(start, " start"), self.marker(end, " end")]
        elif name in POINTER_ACTIONS and self.on_screen(end):
            markers = [self.marker(end)]
        caption = ""
        if name in _CAPTIONED or name not in POINTER_ACTIONS:
            caption = describe(action)
        if name in POINTER_ACTIONS and end is not None and not self.on_screen(end):
            caption = f"{describe(action)}  ⚠ outside the {self.w}x{self.h} screen"
        if len(caption) > _MAX_CAPTION:
            caption = caption[: _MAX_CAPTION - 3] + "…"
        return Drawing(arrow, markers, caption)

    def step(self, s: dict) -> StepCard:
        action = s["action"]
        t = s.get("t")
        when = [f"+{t:.2f} s" if isinstance(t, (int, float)) else "", str(s.get("source") or "")]
        target = s.get("target")
        if isinstance(target, dict):
            conf = target.get("confidence")
            target = Target(str(target.get("method")),
                            f", confidence {conf:.2f}" if isinstance(conf, (int, float)) else "")
        timing = s.get("timing") or {}
        usage = s.get("usage")
        output = s.get("output")
        if output in (None, ""):
            output = ""
        elif not isinstance(output, str):
            output = json.dumps(output, ensure_ascii=False)
        if len(output) > _MAX_OUTPUT:
            output = output[:_MAX_OUTPUT] + "\n… (cut)"
        return StepCard(
            i=s["i"], failed=s.get("ok") is False or bool(s.get("error")),
            frame=self.src(s["frame"]) if s.get("frame") else None, drawing=self.drawing(action),
            action=describe(action), when=" · ".join(b for b in when if b), thought=str(s.get("thought") or ""),
            error=str(s.get("error") or "failed"), target=target if isinstance(target, Target) else None,
            timing=" · ".join(f"{k[:-3]} {v:g} ms" for k, v in timing.items() if isinstance(v, (int, float))),
            tokens=_tokens(usage) + _usd(usage.get("cost_usd"), " · ") if isinstance(usage, dict) else "",
            output=output, raw=json.dumps(s, ensure_ascii=False, indent=1))

    def attempts(self) -> list[AttemptCard]:
        attempts = self.rec.meta.get("attempts")
        if not isinstance(attempts, list):
            return []
        chosen, cards = self.rec.meta.get("chosen"), []
        for n, a in enumerate(attempts):
            a = a if isinstance(a, dict) else {"path": str(a)}
            path, final = str(a.get("path") or ""), ""
            image = f"{path.rstrip('/')}/frames/final.png"
            if path and is_inside(image):  # only an attempt inside this recording is linked
                with contextlib.suppress(RecordingError):
                    contained(self.rec.path, image, "attempt", MAX_IMAGE_BYTES)
                    final = quote(image, safe="/.")
            cards.append(AttemptCard(n, n == chosen, str(a.get("status", "?")), path, str(a.get("passed")),
                                     str(a.get("steps", "–")), _usd(a.get("cost_usd"), " · "), final))
        return cards

    def checks(self) -> list[CheckLine]:
        checks = self.rec.meta.get("checks")
        lines = []
        for c in checks if isinstance(checks, list) else []:
            c = c if isinstance(c, dict) else {"name": c}
            name, detail = c.get("name") or c.get("kind") or c.get("check") or "check", c.get("detail")
            lines.append(CheckLine(c.get("ok") is True, str(name), "" if detail in (None, "") else str(detail)))
        return lines

    def page(self) -> Page:
        rec, meta = self.rec, self.rec.meta
        summary = meta.get("summary") or {}
        duration = summary.get("duration_s")
        if not isinstance(duration, (int, float)):
            duration = rec.steps[-1].get("t") if rec.steps else None
        stats = [("duration", f"{duration:.1f} s" if isinstance(duration, (int, float)) else "–"),
                 ("steps", f"{len(rec.steps)}"), ("tokens", _tokens(summary)),
                 ("cost", _usd(summary.get("cost_usd")) or "–"),
                 ("screen", f"{self.w}x{self.h}"), ("created", str(meta.get("created") or "–"))]
        incomplete = [why for why, on in (("the run is still running or crashed", not rec.complete),
                                          ("the last line was cut short", rec.truncated)) if on]
        final = meta.get("final_frame")
        return Page(
            title=f"deskpilot report: {rec.path.name}",
            heading=str(meta.get("goal") or meta.get("task") or "(no goal)"),
            badges=[str(label) for label in (meta.get("kind"), meta.get("model")) if label],
            status=str(meta.get("status")), incomplete=incomplete, stats=stats, checks=self.checks(),
            error=str(meta.get("error") or ""), result="" if meta.get("result") in (None, "") else str(meta["result"]),
            attempts=self.attempts(), steps=[self.step(s) for s in rec.steps],
            final=self.src(final) if final else None, width=self.w, height=self.h, aspect=f"{self.w / self.h:.6f}")


@lru_cache(maxsize=1)
def _template() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("agent.ui", "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template(TEMPLATE)


def render_report(rec: Recording, *, embed: bool = False) -> str:
    """The report page of a loaded recording, as HTML text."""
    return _template().render(page=_PageBuilder(rec, embed).page())


def write_report(recording: Path | str, *, embed: bool = False) -> Path:
    """Write `report.html` into the recording folder and return its path.

    Raises `RecordingError` for a missing or invalid recording. With `embed=True`, images are
    inlined as data URIs so the one file can be moved or shared alone.
    """
    rec = Recording.load(recording)
    html = render_report(rec, embed=embed)
    target = rec.path / REPORT_FILE
    atomic_write(target, html.encode("utf-8"))  # a new file renamed over the name: a link there is replaced
    return target


__all__ = ["REPORT_FILE", "describe", "render_report", "write_report"]
