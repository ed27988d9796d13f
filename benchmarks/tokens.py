"""Tokens and cost per step of a scripted 40-step session under three context policies.

Each step the model clicks and gets back a 1280x800 screenshot. Requests are built by
the Anthropic backend's own History (agent/models/anthropic_messages.py) with each policy and priced with the same
accounting as the test server (tests/fake_anthropic.py: prompt-cache reads and writes as the
API counts them) and deskpilot's price table:

- deskpilot: cache breakpoints on the system prompt and the 3 latest user turns; screenshots
  pruned in batches (keep 3, prune 8 at a time), so the cached prefix rarely changes;
- anthropic_demo: the reference of Anthropic's demo: the same caching, no pruning;
- last3_no_cache: only the last 3 screenshots kept, no caching.

A sweep over (keep, batch) shows why deskpilot's defaults were chosen. Prints one JSON object.
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


def session_cost(config: ContextConfig) -> dict:
    """Play the session under `config`; totals and per-step figures."""
    rng = np.random.default_rng(0)
    renderer = History(config)
    system = renderer.system(SYSTEM_PROMPT.format(width=1280, height=800, date="2026-11-27"))
    screen = Frame(rng.integers(0, 255, (800, 1280, 3), dtype=np.uint8))
    history: list = [UserTurn(("Fill in the form and submit it.", screen))]
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
        history.append(ToolTurn(((call, ToolResult(image=screen)),)))
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
    print(json.dumps({
        "benchmark": "tokens", "steps": STEPS, "model": MODEL, "screen": "1280x800",
        "deskpilot_policy": {"keep_images": default.keep_images, "prune_batch": default.prune_batch},
        **policies,
        "cost_ratio_vs_anthropic_demo": round(policies["anthropic_demo"]["cost_per_step_usd"] / ours, 2),
        "cost_ratio_vs_last3_no_cache": round(policies["last3_no_cache"]["cost_per_step_usd"] / ours, 2),
        "sweep_cost_per_step_usd": sweep,
    }))


if __name__ == "__main__":
    main()
