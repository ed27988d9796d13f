"""Tokens and cost per step of a scripted 40-step session under three context policies.

Each step the model clicks and gets back a 1280x800 screenshot. Requests are built by
the Anthropic backend's own History (agent/models/anthropic_messages.py) with each policy and priced with the same
accounting as the test server (tests/fake_anthropic.py: prompt-cache reads and writes as the
API counts them) and deskpilot's price table:

- deskpilot: cache breakpoints on the system prompt and the 3 latest user turns; screenshots
  pruned in batches (keep 3, prune 8 at a time), so the cached prefix rarely changes;
- anthropic_demo: the reference of Anthropic's demo: the same caching, no pruning;
- last3_no_cache: only the last 3 screenshots kept, no caching.

A sweep over (keep, batch) shows why deskpilot's defaults were chosen.

`--observe screenshot+tree` adds to every observation the list of interactive elements
(`vision.locate.accessibility.observation`); its cost is measured on the same session with the
list galculator's window gives (33 elements: 27 keys, 5 menus and the display) and with a
denser form of 120 elements, each line priced like the rest of the request. The latest
observations keep their lists, dropped in batches (agent.loop's LIST_KEEP, LIST_BATCH); keeping every
list, or only the latest one, is measured for comparison. Prints one JSON object.
"""

from __future__ import annotations

import json

import numpy as np

from actions.result import ToolResult
from agent.loop import SYSTEM_PROMPT
from agent.models.anthropic import price_for, priced_usage
from agent.models.anthropic_messages import History
from agent.models.base import ContextConfig
from agent.types import AssistantTurn, Reply, ToolCall, ToolTurn, Usage, UserTurn
from tests.fake_anthropic import estimate_tokens
from vision.capture import Frame

STEPS = 40
MODEL = "claude-sonnet-4-6"
TOOLS = [{"type": "computer_20251124", "name": "computer", "display_width_px": 1280, "display_height_px": 800,
          "enable_zoom": True}, {"type": "bash_20250124", "name": "bash"},
         {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}]


def element_list(count: int) -> str:
    """An observation's element list of `count` elements: galculator's keys and menus, then form fields."""
    from vision.locate.accessibility import Element, observation

    names = ["File", "Edit", "View", "Calculator", "Help", "<-", "C", "AC", "(", ")", "MS", "MR", "M+", "7", "8",
             "9", "/", "sqrt", "4", "5", "6", "*", "%", "1", "2", "3", "-", "=", "0", ".", "+/-", "+"]
    elements = [Element("menu" if i < 5 else "button", name, (60 * (i % 6), 40 * (i // 6) + 30,
                                                              60 * (i % 6) + 59, 40 * (i // 6) + 64),
                        ("enabled", "focusable", "sensitive")) for i, name in enumerate(names)]
    elements.append(Element("textbox", "", (7, 32, 324, 84), ("enabled", "focused", "sensitive")))
    for n in range(len(elements), count):
        elements.append(Element(("textbox", "checkbox", "button")[n % 3], f"Field number {n}",
                                (400, 20 * n % 760, 600, 20 * n % 760 + 18), ("enabled", "sensitive")))
    return observation(elements[:count], lambda x, y: (x, y))


def session_cost(config: ContextConfig, listing: str | None = None, lists: tuple[int, int] | None = None) -> dict:
    """Play the session under `config` (with `listing` beside every screenshot; `lists` = (keep, batch): once
    keep + batch turns hold a list, all but the latest `keep` lose it, as agent.loop does; None keeps them all);
    totals and per-step figures."""
    rng = np.random.default_rng(0)
    renderer = History(config)
    system = renderer.system(SYSTEM_PROMPT.format(width=1280, height=800, date="2026-11-27"))
    screen = Frame(rng.integers(0, 255, (800, 1280, 3), dtype=np.uint8))
    goal = "Fill in the form and submit it."
    history: list = [UserTurn((goal, screen, listing) if listing else (goal, screen))]
    cache: set = set()
    price, total = price_for(MODEL), Usage()
    for step in range(STEPS):
        body = {"model": MODEL, "max_tokens": 4096, "system": system, "tools": TOOLS,
                "messages": renderer.messages(history)}
        counts = estimate_tokens(body, cache)
        call = ToolCall(f"toolu_{step}", "computer", {"action": "left_click", "coordinate": [100 + step, 200]})
        usage = type("U", (), {**counts, "output_tokens": 60})
        total += priced_usage(usage, price)
        reply = Reply(f"Step {step}: I will click the next field.", [call], Usage(), 0.0, MODEL)
        history.append(AssistantTurn(reply))
        screen = Frame(rng.integers(0, 255, (800, 1280, 3), dtype=np.uint8))
        history.append(ToolTurn(((call, ToolResult(image=screen, system=listing)),)))
        if listing and lists:
            keep, batch = lists
            listed = [i for i, t in enumerate(history) if (isinstance(t, UserTurn) and len(t.parts) == 3)
                      or (isinstance(t, ToolTurn) and t.results[0][1].system)]
            if len(listed) > keep + batch:
                for i in listed[:-keep]:
                    turn = history[i]
                    history[i] = UserTurn(turn.parts[:2]) if isinstance(turn, UserTurn) else ToolTurn(
                        ((turn.results[0][0], ToolResult(image=turn.results[0][1].image)),))
    return {"input_tokens_per_step": round(total.input_tokens / STEPS),
            "cache_read_tokens_per_step": round(total.cache_read_tokens / STEPS),
            "cache_write_tokens_per_step": round(total.cache_write_tokens / STEPS),
            "cost_per_step_usd": round(total.cost_usd / STEPS, 5), "cost_total_usd": round(total.cost_usd, 4)}


def main() -> None:
    """Compare the policies and sweep deskpilot's parameters."""
    default = ContextConfig()
    policies = {
        "deskpilot": session_cost(default),
        "anthropic_demo": session_cost(ContextConfig(keep_images=10**6, prune_batch=1, cache=True)),
        "last3_no_cache": session_cost(ContextConfig(keep_images=3, prune_batch=1, cache=False)),
    }
    sweep = {f"keep{keep}_batch{batch}": session_cost(ContextConfig(keep, batch))["cost_per_step_usd"]
             for keep in (2, 3, 5) for batch in (1, 4, 8, 12, 16, 24)}
    ours = policies["deskpilot"]["cost_per_step_usd"]
    from agent.loop import LIST_BATCH, LIST_KEEP

    observe: dict = {"lists_kept": LIST_KEEP, "lists_dropped_at_a_time": LIST_BATCH}
    for label, count in (("galculator_33_elements", 33), ("form_120_elements", 120)):
        listing = element_list(count)
        with_tree = session_cost(default, listing, (LIST_KEEP, LIST_BATCH))
        plain_step = policies["deskpilot"]["input_tokens_per_step"] + policies["deskpilot"][
            "cache_read_tokens_per_step"] + policies["deskpilot"]["cache_write_tokens_per_step"]
        tree_step = with_tree["input_tokens_per_step"] + with_tree["cache_read_tokens_per_step"] + with_tree[
            "cache_write_tokens_per_step"]
        observe[label] = {"list_chars": len(listing), "list_tokens": estimate_tokens(
            {"messages": [{"role": "user", "content": [{"type": "text", "text": listing}]}]}, set())["input_tokens"],
            "prompt_tokens_per_step": tree_step, "extra_prompt_tokens_per_step": tree_step - plain_step,
            "cost_per_step_usd": with_tree["cost_per_step_usd"],
            "cost_ratio_vs_screenshot_only": round(with_tree["cost_per_step_usd"] / ours, 3),
            "cost_ratio_if_every_list_were_kept": round(session_cost(default, listing)["cost_per_step_usd"] / ours, 3),
            "cost_ratio_if_only_the_latest_list_were_kept": round(
                session_cost(default, listing, (1, 0))["cost_per_step_usd"] / ours, 3),
            "sweep_cost_ratio": {f"keep{k}_batch{b}": round(
                session_cost(default, listing, (k, b))["cost_per_step_usd"] / ours, 3)
                for k in (1, 2) for b in (4, 8, 16)}}
    print(json.dumps({
        "benchmark": "tokens", "steps": STEPS, "model": MODEL, "screen": "1280x800",
        "deskpilot_policy": {"keep_images": default.keep_images, "prune_batch": default.prune_batch},
        **policies,
        "cost_ratio_vs_anthropic_demo": round(policies["anthropic_demo"]["cost_per_step_usd"] / ours, 2),
        "cost_ratio_vs_last3_no_cache": round(policies["last3_no_cache"]["cost_per_step_usd"] / ours, 2),
        "sweep_cost_per_step_usd": sweep,
        "observe_screenshot_plus_tree": observe,
    }))


if __name__ == "__main__":
    main()
