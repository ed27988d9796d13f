"""The judge: one model call that compares the attempts the rules could not tell apart.

It gets a short factual narrative of each candidate (agent.rollouts.narrative: per step, the action
and what changed on screen after it) plus each attempt's first and last screenshots, and is told
that an honest IMPOSSIBLE report beats a wrong completion. It answers with the `choose_attempt`
tool or a JSON object {"reasoning": ..., "choice": i}. Its reasoning, choice and raw reply are kept
in the parent's meta `judge`. A reply that cannot be parsed, names an attempt that is not a
candidate, or a judge call that fails, falls back to the fallback rule ("fallback"); a stopped run
never asks the judge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.models.base import ModelConfig
from agent.rollouts.attempts import Attempt, temperature_supported
from agent.rollouts.narrative import load_pixels, narrate, short
from agent.rollouts.select import Selection, fallback
from agent.types import ToolSpec, Usage, UserTurn
from vision.capture import Frame

JUDGE_HEADER = "x-deskpilot-judge"
JUDGE_IMAGE_EDGE = 800  # screenshots for the judge are shrunk to this long edge
JUDGE_MAX_TOKENS = 2048

JUDGE_SYSTEM = (
    "You review attempts by a computer-use agent at one task on a Linux desktop and choose the best one. "
    "Judge by what the screens and the step narratives show, not by what the agent claims. The best attempt "
    "achieved the goal correctly and completely, without unwanted side effects; among equally good ones, the "
    "shorter one. An attempt that honestly reported the task impossible (its final message starts with "
    "IMPOSSIBLE) is better than one that claims success but did not achieve the goal or did something else. "
    'Answer by calling the choose_attempt tool once, or with one JSON object {"reasoning": "...", "choice": N}.'
)
CHOOSE_TOOL = ToolSpec("choose_attempt", "Name the best attempt and say why.", {
    "type": "object",
    "properties": {
        "reasoning": {"type": "string", "description": "A few sentences: what each attempt achieved."},
        "choice": {"type": "integer", "description": "The number of the best attempt."},
    },
    "required": ["reasoning", "choice"],
})


def _judge_image(path: Path | None) -> Frame | None:
    """A screenshot for the judge, shrunk to JUDGE_IMAGE_EDGE on its long edge."""
    pixels = load_pixels(path)
    if pixels is None:
        return None
    from vision.encode import resize
    from vision.geometry import Size

    h, w = pixels.shape[:2]
    scale = min(1.0, JUDGE_IMAGE_EDGE / max(w, h))
    return Frame(resize(pixels, Size(max(1, round(w * scale)), max(1, round(h * scale)))))


def judge_request(goal: str, candidates: Sequence[Attempt], narratives: dict[int, list[str]]) -> list[UserTurn]:
    """The judge's one user turn: the goal, then per candidate its outcome, narrative and screenshots."""
    parts: list[str | Frame] = [(
        f"Goal: {goal}\n\nThe attempts below ran independently from the same starting state. For each you get "
        "its outcome, a factual narrative of its steps (after each action: what changed on the screen, as "
        "regions [x0, y0, x1, y1] in screen pixels, and the text OCR read appearing or disappearing there) "
        "and its first and last screenshots.")]
    for a in candidates:
        narrative = "\n".join(narratives.get(a.index) or ["(no steps)"])
        parts.append(f"\n## Attempt {a.index}\noutcome: {a.status}; {a.steps} steps; final message: "
                     f"{short(a.message, 400)!r}\nsteps:\n{narrative}")
        for label, path in (("first", a.first_frame), ("last", a.final_frame)):
            image = _judge_image(path)
            if image is not None:
                parts += [f"{label} screen of attempt {a.index}:", image]
    names = ", ".join(str(a.index) for a in candidates)
    parts.append(f"\nWhich attempt is best? Choose one of: {names}.")
    return [UserTurn(tuple(parts))]


def parse_judge_reply(reply: Any, allowed: Sequence[int]) -> tuple[int | None, str | None]:
    """(choice, reasoning) from a judge reply: a choose_attempt tool call, a JSON object with "choice",
    or `choice: N` in the text; (None, reasoning-or-None) when no allowed attempt is named."""
    found: list[dict] = []
    for call in getattr(reply, "tool_calls", None) or []:
        if isinstance(call.input, dict) and "choice" in call.input:
            found.append(call.input)
    text = getattr(reply, "text", "") or ""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict) and "choice" in value:
            found.append(value)
    if not found:
        plain = re.search(r"\bchoice\W{0,4}(\d+)", text, re.IGNORECASE)
        if plain:
            found.append({"choice": plain.group(1), "reasoning": text.strip()})
    for data in found:
        raw = data.get("choice")
        try:
            choice = int(raw) if not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            choice = None
        reasoning = data.get("reasoning")
        reasoning = str(reasoning) if reasoning is not None else None
        if choice is not None and choice in allowed:
            return choice, reasoning
    return None, (str(found[0].get("reasoning")) if found and found[0].get("reasoning") is not None else None)


class Judge:
    """The judge of one rollouts run: one call to a model that compares candidate attempts.

    `judge`: a model object, a model name, or None for `default_model`, made from `config` at
    temperature 0 where the API takes one. `on_usage` is told what each call cost; `interrupted`
    says when Ctrl-C interrupted the call.
    """

    def __init__(self, judge: Any, config: ModelConfig, default_model: str, goal: str,
                 on_usage: Callable[[Usage], None]) -> None:
        self.judge, self.config, self.default_model = judge, config, default_model
        self.goal, self.on_usage = goal, on_usage
        self.interrupted: str | None = None

    def choose(self, candidates: list[Attempt], why: str, stopped: bool = False) -> Selection:
        """The judge's choice among `candidates` (the rules could not decide, `why`); the fallback rule's
        when the run was `stopped` (nobody is asked), the call fails, or the reply names no candidate."""
        allowed = [a.index for a in candidates]
        record: dict[str, Any] = {"reasoning": None, "choice": None, "raw": None, "candidates": allowed, "why": why}
        if stopped:  # a stopped run asks nobody, and pays for nothing more
            record["error"] = "not asked: the rollouts were stopped"
            return fallback(candidates, f"{why}; stopped, so no judge was asked", record)
        try:
            narratives = {a.index: narrate(a.recording) if a.recording else [] for a in candidates}
            messages = judge_request(self.goal, candidates, narratives)
            model = self.model()
            record["model"] = getattr(getattr(model, "config", None), "model", None) or getattr(model, "name", None)
            reply = model.query(JUDGE_SYSTEM, messages, [CHOOSE_TOOL])
            raw = reply.text or ""
            for call in reply.tool_calls or []:
                raw += ("\n" if raw else "") + json.dumps({"tool": call.name, "input": call.input}, ensure_ascii=False)
            record["raw"] = raw
            usage = getattr(reply, "usage", None)
            if isinstance(usage, Usage):
                record["usage"] = usage.as_dict()
                self.on_usage(usage)
            choice, reasoning = parse_judge_reply(reply, allowed)
            record["reasoning"], record["choice"] = reasoning, choice
        except KeyboardInterrupt:
            self.interrupted = "interrupted by the user (Ctrl-C) while the judge decided"
            record["error"] = "interrupted"
            return fallback(candidates, f"{why}; the judge was interrupted", record)
        except Exception as exc:  # the judge never ends the run
            record["error"] = f"{type(exc).__name__}: {exc}"
            return fallback(candidates, f"{why}; the judge failed ({record['error']})", record)
        if record["choice"] is None:
            record["error"] = "the reply names no candidate attempt"
            return fallback(candidates, f"{why}; the judge's reply could not be parsed", record)
        return Selection(record["choice"], "judge", f"{why}; the judge chose attempt {record['choice']}"
                         + (f": {short(record['reasoning'], 300)}" if record["reasoning"] else ""), record)

    def model(self) -> Any:
        """The judge model: the object given, else one made by name (the given one, else the first attempt's)."""
        if self.judge is not None and not isinstance(self.judge, str):
            return self.judge
        from agent.models import registry

        name = self.judge if isinstance(self.judge, str) else self.default_model
        config = replace(self.config, model=name, temperature=0.0 if temperature_supported() else None,
                         thinking_budget=None,
                         max_tokens=JUDGE_MAX_TOKENS,
                         extra_headers={**self.config.extra_headers, JUDGE_HEADER: "1"})
        return registry.create(config)
