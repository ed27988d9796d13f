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

The page has inline CSS and JS only: no network, no fonts, no scripts from elsewhere. Images are
referenced relatively (`frames/000003.png`) with `loading="lazy"`; `embed=True` inlines them as
data URIs instead, for a single portable file. The enlarged view (click, or Enter) is built only
when opened. Keys: j/k or arrows move between steps, Enter/Escape open/close the enlarged image.
A recording still "running", or with a truncated last line, renders what exists, marked
"incomplete". Secrets are never looked up: the recording already holds only placeholders.
"""

from __future__ import annotations

import base64
import json
import math
import os
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agent.recording.describe import POINTER_ACTIONS, describe, point_of
from agent.recording.writer import Recording

REPORT_FILE = "report.html"
_MAX_OUTPUT = 4000

_CSS = """
*{box-sizing:border-box}body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1f2328}
header,main{max-width:1200px;margin:0 auto;padding:16px}h1{font-size:20px;margin:0 0 8px;word-break:break-word}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;background:#e5e7eb;margin-right:6px;font-size:12px}
.st-succeeded{background:#16a34a;color:#fff}.st-failed,.st-error{background:#dc2626;color:#fff}
.st-stopped{background:#d97706;color:#fff}.st-running{background:#2563eb;color:#fff}
.incomplete{background:#fef3c7;border:1px solid #d97706;padding:8px 12px;border-radius:6px;margin:8px 0}
table.stats td{padding:2px 14px 2px 0}.ok{color:#16a34a}.bad{color:#dc2626}
.runerror{color:#b91c1c;font-weight:600;white-space:pre-wrap}
.attempts{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0}.attempt{background:#fff;border:2px solid #d1d5db;
border-radius:8px;padding:8px;width:260px}.attempt.chosen{border-color:#2563eb;box-shadow:0 0 0 2px #bfdbfe}
.attempt img{width:100%;height:auto;display:block}
ol.steps{list-style:none;padding:0;margin:0}.step{display:grid;grid-template-columns:480px 1fr;gap:14px;
background:#fff;border:1px solid #d1d5db;border-radius:8px;padding:10px;margin:0 0 12px;outline:none}
.step:focus{box-shadow:0 0 0 3px #2563eb}.step.failed{border:2px solid #dc2626;background:#fff5f5}
.shot{position:relative;width:480px;max-width:100%;line-height:0;background:#d1d5db;cursor:zoom-in;align-self:start}
.shot img{display:block;width:100%;height:auto}.shot svg{position:absolute;inset:0;width:100%;height:100%;
pointer-events:none}.noimg{line-height:1.4;color:#374151;padding:30px;text-align:center;cursor:default}
.marker{position:absolute;width:18px;height:18px;margin:-9px 0 0 -9px;border:3px solid #ef4444;border-radius:50%;
background:rgba(239,68,68,.25);box-shadow:0 0 0 2px #fff;pointer-events:none}.marker.end{border-color:#f59e0b}
.caption{position:absolute;left:0;right:0;bottom:0;background:rgba(0,0,0,.72);color:#fff;line-height:1.3;
padding:4px 8px;font:13px ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
.head{font-weight:600}.head .n{color:#6b7280;margin-right:6px}.act{font-family:ui-monospace,monospace}
.thought{font-style:italic;color:#374151;white-space:pre-wrap}.meta{color:#6b7280;font-size:12px}
.err{color:#b91c1c;font-weight:600;white-space:pre-wrap}pre{background:#f3f4f6;padding:6px;overflow:auto;
max-height:220px;white-space:pre-wrap;margin:4px 0}details{font-size:12px}
#overlay{position:fixed;inset:0;background:rgba(0,0,0,.85);display:flex;align-items:center;
justify-content:center;z-index:10}#overlay[hidden]{display:none}
#overlay .shot{width:min(96vw,calc(92vh * var(--ar)));max-width:none;cursor:zoom-out}
"""

_JS = """
const cards=[...document.querySelectorAll('.step')],ov=document.getElementById('overlay'),box=ov.firstElementChild;
let cur=-1;
function go(n){if(!cards.length)return;cur=Math.max(0,Math.min(cards.length-1,n));const c=cards[cur];
c.focus({preventScroll:true});c.scrollIntoView({block:'center'});}
function openShot(s){if(!s||!s.querySelector('img'))return;const big=s.cloneNode(true);
const img=big.querySelector('img');img.loading='eager';img.src=s.querySelector('img').getAttribute('src');
box.replaceChildren(big);ov.hidden=false;}
function closeShot(){ov.hidden=true;box.replaceChildren();}
cards.forEach((c,i)=>c.addEventListener('focus',()=>{cur=i;}));
document.addEventListener('click',e=>{if(!ov.hidden){closeShot();return;}
const s=e.target.closest('.shot');if(s){const c=s.closest('.step');if(c)cur=cards.indexOf(c);openShot(s);}});
document.addEventListener('keydown',e=>{if(e.ctrlKey||e.metaKey||e.altKey)return;const k=e.key;
const step=k==='j'||k==='ArrowDown'||k==='ArrowRight'?1:k==='k'||k==='ArrowUp'||k==='ArrowLeft'?-1:0;
if(step){e.preventDefault();const open=!ov.hidden;go(cur<0&&step>0?0:cur+step);
if(open)openShot(cards[cur].querySelector('.shot'));}
else if(k==='Escape'&&!ov.hidden){e.preventDefault();closeShot();}
else if(k==='Enter'){e.preventDefault();if(!ov.hidden)closeShot();
else if(cur>=0)openShot(cards[cur].querySelector('.shot'));}
});
"""


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "–"


def _pct(value: float, total: float) -> str:
    return f"{100.0 * value / total:.4f}%"


class _Page:
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
            return escape(quote(relative, safe="/"))
        mime = "image/jpeg" if relative.lower().endswith((".jpg", ".jpeg")) else "image/png"
        return f"data:{mime};base64,{base64.b64encode((self.rec.path / relative).read_bytes()).decode()}"

    def marker(self, p: tuple[float, float], cls: str = "") -> str:
        return (f'<span class="marker{cls}" data-x="{p[0]:g}" data-y="{p[1]:g}" '
                f'style="left:{_pct(p[0], self.w)};top:{_pct(p[1], self.h)}"></span>')

    def on_screen(self, p: tuple[float, float] | None) -> bool:
        return p is not None and 0 <= p[0] < self.w and 0 <= p[1] < self.h

    def drawing(self, action: dict) -> str:
        name, out = action.get("action"), []
        start, end = point_of(action.get("start_coordinate")), point_of(action.get("coordinate"))
        if name == "left_click_drag" and self.on_screen(start) and self.on_screen(end):
            (x1, y1), (x2, y2) = start, end
            length, head = math.hypot(x2 - x1, y2 - y1), 0.025 * max(self.w, self.h)
            poly = ""
            if length > 0:
                ux, uy = (x2 - x1) / length, (y2 - y1) / length
                bx, by = x2 - ux * head, y2 - uy * head
                pts = [(x2, y2), (bx - uy * head / 2, by + ux * head / 2), (bx + uy * head / 2, by - ux * head / 2)]
                poly = '<polygon fill="#f59e0b" points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>'
            out.append(f'<svg viewBox="0 0 {self.w} {self.h}" preserveAspectRatio="none"><line x1="{x1:g}" '
                       f'y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" stroke="#f59e0b" stroke-width="3" '
                       f'vector-effect="non-scaling-stroke"/>{poly}</svg>')
            out += [self.marker(start, " start"), self.marker(end, " end")]
        elif name in POINTER_ACTIONS and end is not None:
            out.append(self.marker(end) if self.on_screen(end) else "")
        caption = ""
        if name in ("type", "key", "hold_key", "scroll", "wait", "zoom") or name not in POINTER_ACTIONS:
            caption = describe(action)
        if name in POINTER_ACTIONS and end is not None and not self.on_screen(end):
            caption = f"{describe(action)}  ⚠ outside the {self.w}x{self.h} screen"
        if caption:
            short = caption if len(caption) <= 160 else caption[:157] + "…"
            out.append(f'<div class="caption">{escape(short)}</div>')
        return "".join(out)

    def step(self, s: dict) -> str:
        action = s["action"]
        failed = s.get("ok") is False or bool(s.get("error"))
        frame = s.get("frame")
        if frame:
            shot = (f'<div class="shot" title="click or Enter to enlarge"><img loading="lazy" decoding="async" '
                    f'src="{self.src(frame)}" width="{self.w}" height="{self.h}" '
                    f'alt="screen before step {s["i"]}">{self.drawing(action)}</div>')
        else:
            shot = '<div class="shot noimg">no screenshot</div>'
        body = [f'<div class="head"><span class="n">#{s["i"]}</span><span class="act">'
                f'{escape(describe(action))}</span></div>']
        t = s.get("t")
        bits = [f"+{t:.2f} s" if isinstance(t, (int, float)) else "", str(s.get("source") or "")]
        body.append(f'<div class="meta">{escape(" · ".join(b for b in bits if b))}</div>')
        if s.get("thought"):
            body.append(f'<p class="thought">{escape(str(s["thought"]))}</p>')
        if failed:
            body.append(f'<p class="err">✗ {escape(str(s.get("error") or "failed"))}</p>')
        target = s.get("target")
        if isinstance(target, dict):
            conf = target.get("confidence")
            conf_text = f", confidence {conf:.2f}" if isinstance(conf, (int, float)) else ""
            body.append(f'<p class="target">target found by <b>{escape(str(target.get("method")))}</b>'
                        f'{escape(conf_text)}</p>')
        timing = s.get("timing") or {}
        parts = [f"{k[:-3]} {v:g} ms" for k, v in timing.items() if isinstance(v, (int, float))]
        if parts:
            body.append(f'<div class="meta">timing: {escape(" · ".join(parts))}</div>')
        usage = s.get("usage")
        if isinstance(usage, dict):
            cost = usage.get("cost_usd")
            body.append(f'<div class="meta">tokens: in {_num(usage.get("input_tokens"))} · out '
                        f'{_num(usage.get("output_tokens"))} · cache read {_num(usage.get("cache_read_tokens"))} · '
                        f'cache write {_num(usage.get("cache_write_tokens"))}'
                        + (f" · ${cost:.4f}" if isinstance(cost, (int, float)) else "") + "</div>")
        output = s.get("output")
        if output not in (None, ""):
            text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
            text = text if len(text) <= _MAX_OUTPUT else text[:_MAX_OUTPUT] + "\n… (cut)"
            body.append(f'<pre class="output">{escape(text)}</pre>')
        raw = json.dumps(s, ensure_ascii=False, indent=1)
        body.append(f"<details><summary>step JSON</summary><pre>{escape(raw)}</pre></details>")
        cls = "step failed" if failed else "step"
        return f'<li class="{cls}" data-step="{s["i"]}" tabindex="0">{shot}<div>{"".join(body)}</div></li>'

    def attempts(self) -> str:
        attempts = self.rec.meta.get("attempts")
        if not isinstance(attempts, list) or not attempts:
            return ""
        chosen, cards = self.rec.meta.get("chosen"), []
        for n, a in enumerate(attempts):
            a = a if isinstance(a, dict) else {"path": str(a)}
            path, img = str(a.get("path") or ""), ""
            for base in (self.rec.path, self.rec.path.parent):
                final = base / path / "frames" / "final.png"
                if path and final.is_file():
                    rel = Path(os.path.relpath(final, self.rec.path)).as_posix()
                    img = f'<img loading="lazy" src="{escape(quote(rel, safe="/."))}" alt="final screen">'
                    break
            status, mark = str(a.get("status", "?")), n == chosen
            passed = a.get("passed")
            cost = a.get("cost_usd")
            cards.append(
                f'<div class="attempt{" chosen" if mark else ""}" data-attempt="{n}"><b>attempt {n + 1}</b>'
                f'{" ★ chosen" if mark else ""} <span class="badge st-{escape(status)}">{escape(status)}</span>'
                f'<div class="meta">{escape(path)}</div><div>passed: {escape(str(passed))} · steps '
                f'{escape(str(a.get("steps", "–")))}' + (f" · ${cost:.4f}" if isinstance(cost, (int, float)) else "")
                + f"</div>{img}</div>")
        return f'<h2>Attempts</h2><div class="attempts">{"".join(cards)}</div>'

    def header(self) -> str:
        rec, meta = self.rec, self.rec.meta
        summary = meta.get("summary") or {}
        title = meta.get("goal") or meta.get("task") or "(no goal)"
        status = str(meta.get("status"))
        out = [f"<h1>{escape(str(title))}</h1><div>"]
        for label in (meta.get("kind"), meta.get("model")):
            if label:
                out.append(f'<span class="badge">{escape(str(label))}</span>')
        out.append(f'<span class="badge status st-{escape(status)}">{escape(status)}</span></div>')
        if not rec.complete or rec.truncated:
            why = [w for w, on in (("the run is still running or crashed", not rec.complete),
                                   ("the last line was cut short", rec.truncated)) if on]
            out.append(f'<div class="incomplete"><b>incomplete</b>: {escape("; ".join(why))}; '
                       f"showing the {len(rec.steps)} steps recorded so far.</div>")
        duration = summary.get("duration_s")
        if not isinstance(duration, (int, float)):
            duration = rec.steps[-1].get("t") if rec.steps else None
        cost = summary.get("cost_usd")
        rows = [("duration", f"{duration:.1f} s" if isinstance(duration, (int, float)) else "–"),
                ("steps", f"{len(rec.steps)}"),
                ("tokens", f"in {_num(summary.get('input_tokens'))} · out {_num(summary.get('output_tokens'))} · "
                           f"cache read {_num(summary.get('cache_read_tokens'))} · "
                           f"cache write {_num(summary.get('cache_write_tokens'))}"),
                ("cost", f"${cost:.4f}" if isinstance(cost, (int, float)) else "–"),
                ("screen", f"{self.w}x{self.h}"), ("created", str(meta.get("created") or "–"))]
        out.append('<table class="stats">' + "".join(
            f"<tr><td>{k}</td><td>{escape(v)}</td></tr>" for k, v in rows) + "</table>")
        checks = meta.get("checks")
        if isinstance(checks, list) and checks:
            items = []
            for c in checks:
                c = c if isinstance(c, dict) else {"name": c}
                name = c.get("name") or c.get("kind") or c.get("check") or "check"
                ok = c.get("ok") is True
                detail = c.get("detail")
                items.append(f'<li class="{"ok" if ok else "bad"}">{"✓" if ok else "✗"} {escape(str(name))}'
                             + (f": {escape(str(detail))}" if detail not in (None, "") else "") + "</li>")
            out.append(f'<h2>Checks</h2><ul class="checks">{"".join(items)}</ul>')
        if meta.get("error"):
            out.append(f'<p class="runerror">error: {escape(str(meta["error"]))}</p>')
        if meta.get("result") not in (None, ""):
            out.append(f"<p><b>result:</b> {escape(str(meta['result']))}</p>")
        out.append(self.attempts())
        return "".join(out)

    def render(self) -> str:
        final = self.rec.meta.get("final_frame")
        end = (f'<h2>Final screen</h2><div class="shot"><img loading="lazy" src="{self.src(final)}" '
               f'width="{self.w}" height="{self.h}" alt="final screen"></div>') if final else ""
        title = escape(f"deskpilot report: {self.rec.path.name}")
        steps = "".join(self.step(s) for s in self.rec.steps)
        return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
                f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}'
                f":root{{--ar:{self.w / self.h:.6f}}}</style></head><body><header>{self.header()}</header>"
                f'<main><h2>Steps <span class="meta">(j/k or arrows to move, Enter to enlarge, Esc to close)</span>'
                f'</h2><ol class="steps">{steps}</ol>{end}</main><div id="overlay" hidden><div></div></div>'
                f"<script>{_JS}</script></body></html>\n")


def write_report(recording: Path | str, *, embed: bool = False) -> Path:
    """Write `report.html` into the recording folder and return its path.

    Raises `RecordingError` for a missing or invalid recording. With `embed=True`, images are
    inlined as data URIs so the one file can be moved or shared alone.
    """
    rec = Recording.load(recording)
    html = _Page(rec, embed).render()
    target = rec.path / REPORT_FILE
    tmp = target.with_name(f".{REPORT_FILE}.{os.getpid()}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, target)
    return target


__all__ = ["REPORT_FILE", "describe", "write_report"]
