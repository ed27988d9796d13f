"""`report.html` of an evaluation run: a table per task and model, each attempt linked to its recording's report.

`write_suite_report(folder)` reads the run's suite.json and writes `<folder>/report.html`, and
(`attempts=True`) each attempt's own report (agent.ui.report.write_report) where it is missing, so
every link works. The page is the Jinja2 template `templates/suite.html.j2` with autoescape on
(task names, messages and checks are shown as text, never as HTML), inline CSS only, relative
links: the run folder can be moved or served as it is, and opens offline in any browser.

Each row: the task (and where it came from), the model, passed of attempts, the success rate with
its 95% Wilson interval drawn as a bar, the median steps, seconds and cost, the total cost, and one
link per attempt (`a.attempt`, its status as class and text, its message as the title).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agent.errors import BadInput

SUITE_FILE, REPORT_FILE, TEMPLATE = "suite.json", "report.html", "suite.html.j2"


@dataclass(frozen=True)
class AttemptLink:
    """One attempt in the table."""

    number: int
    status: str
    passed: bool
    href: str | None
    title: str


@dataclass(frozen=True)
class Row:
    """One task and model."""

    task: str
    path: str
    source: str
    model: str
    passed: int
    attempts: int
    rate: str
    interval: str
    low: float
    high: float
    steps: str
    seconds: str
    median_cost: str
    cost: str
    links: list[AttemptLink]


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _num(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _usd(value: Any) -> str:
    return "–" if value is None else f"${value:.4f}"


def _rows(summary: dict[str, Any]) -> list[Row]:
    rows = []
    for t in summary.get("tasks") or []:
        links = [AttemptLink(r["number"], r["status"], bool(r["passed"]),
                             quote(r["report"]) if r.get("report") else None,
                             f"attempt {r['number']}: {r['status']}{', passed' if r['passed'] else ''} "
                             f"({r['steps']} steps, {r['seconds']} s): {r['message']}")
                 for r in t.get("runs") or []]
        low, high = t.get("interval95") or (0.0, 0.0)
        rows.append(Row(t["name"], t.get("path") or "", t.get("source") or "", t.get("model") or "scripted",
                        t["passed"], t["attempts"], _pct(t.get("success_rate")),
                        f"{_pct(low)}–{_pct(high)}" if t.get("interval95") else "–", low, high,
                        _num(t.get("median_steps")), _num(t.get("median_seconds")), _usd(t.get("median_cost_usd")),
                        _usd(t.get("cost_usd")), links))
    return rows


def _stats(summary: dict[str, Any]) -> list[tuple[str, str]]:
    totals, engine = summary.get("totals") or {}, summary.get("engine") or {}
    where = engine.get("name", "?") + (f", {engine['workers']}" if engine.get("workers") else "")
    if engine.get("name") == "ray":
        where += f", {engine.get('address') or 'local Ray'}, {engine.get('num_cpus')} CPU per attempt"
    stats = [("engine", f"{where}, {engine.get('parallel')} at a time"),
             ("models", ", ".join(summary.get("models") or []) or "none (scripted tasks)"),
             ("attempts", f"{totals.get('passed')} of {totals.get('attempts')} passed, {totals.get('errors')} errors"),
             ("success rate", f"{_pct(totals.get('success_rate'))} (95% interval "
                              f"{'–'.join(_pct(v) for v in totals.get('interval95') or []) or '–'})"),
             ("cost", _usd(totals.get("cost_usd"))),
             ("wall time", f"{_num(totals.get('wall_s'))} s ({_num(totals.get('attempts_per_minute'))} attempts/min)"),
             ("created", str(summary.get("created")))]
    if summary.get("min_success") is not None:
        stats.append(("min success", f"{_pct(summary['min_success'])}: {'met' if summary.get('met') else 'NOT met'}"))
    return stats


@lru_cache(maxsize=1)
def _template() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("agent.ui", "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template(TEMPLATE)


def render_suite_report(summary: dict[str, Any], title: str) -> str:
    """The page of a suite.json's content."""
    by_model = [(m, s["passed"], s["attempts"], _pct(s.get("success_rate")), _usd(s.get("cost_usd")))
                for m, s in (summary.get("by_model") or {}).items()]
    return _template().render(title=title, status=summary.get("status", "?"), stats=_stats(summary),
                              rows=_rows(summary), by_model=by_model, interrupted=summary.get("interrupted"))


def read_summary(folder: Path | str) -> dict[str, Any]:
    """A run folder's suite.json; BadInput when there is none or it is not valid."""
    path = Path(folder) / SUITE_FILE
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{folder}: not an evaluation run (no {SUITE_FILE})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path}: cannot be read: {exc}") from None
    if not isinstance(summary, dict) or not str(summary.get("format", "")).startswith("deskpilot.suite/"):
        raise BadInput(f"{path}: not a deskpilot suite.json")
    return summary


def write_suite_report(folder: Path | str, *, attempts: bool = True) -> Path:
    """Write the run's report.html (and, with `attempts`, every attempt's missing report); its path."""
    from agent.recording.writer import RecordingError
    from agent.ui.report import write_report

    folder = Path(folder)
    summary = read_summary(folder)
    if attempts:
        for task in summary.get("tasks") or []:
            for run in task.get("runs") or []:
                if run.get("recording") and not (folder / run["recording"] / REPORT_FILE).is_file():
                    with contextlib.suppress(RecordingError, OSError):  # unreadable: its link fails, saying so
                        write_report(folder / run["recording"])
    html = render_suite_report(summary, folder.name)
    target = folder / REPORT_FILE
    tmp = target.with_name(f".{REPORT_FILE}.{os.getpid()}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, target)
    return target
