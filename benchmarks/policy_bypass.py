"""How well the default policy catches dangerous commands in obfuscated spellings, and lets everyday ones run.

Two corpora (benchmarks/policy_corpus/*.jsonl, one {"name", "command"} per line): dangerous commands
in many spellings (quotes, escapes, variables, substitutions, decoded data piped into shells,
interpreters, wrappers, fork bombs, ...) and everyday harmless developer commands. Each command is
judged with the default policy (no user file) twice: as a bash tool call, and as text typed into a
terminal (a `type` action of the command and a newline, the focused window an xterm). Printed: the
refused-or-asked rate over the dangerous corpus (target 100%) and the allowed rate over the harmless
one (target >= 95%), per way of judging, the misses by name, and the time per decision.

    python -m benchmarks.policy_bypass
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).parent / "policy_corpus"
TERMINAL = "xterm/XTerm: user@host: ~"


def load(name: str) -> list[dict[str, str]]:
    """One corpus: [{"name", "command"}, ...]."""
    with open(CORPUS / f"{name}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def judge(policy: object, command: str, way: str) -> tuple[str, str | None, float]:
    """(decision, rule, seconds) for `command` judged as a bash call or as typed into a terminal."""
    from actions.vocabulary import parse_action
    from agent.safety.rules import PolicyContext
    from agent.types import ToolCall

    context = PolicyContext(Path("/home/user/project"), TERMINAL if way == "typed" else None)
    if way == "bash":
        call, action = ToolCall("b", "bash", {"command": command}), None
    else:
        data = {"action": "type", "text": command + "\n"}
        call, action = ToolCall("t", "computer", data), parse_action(data)
    started = time.perf_counter()
    verdict = policy.decide(call, action, context)  # type: ignore[attr-defined]
    return verdict.decision, verdict.rule, time.perf_counter() - started


def main() -> None:
    """Judge both corpora both ways; print one JSON object."""
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="deskpilot-bench-")  # the defaults alone
    from agent.safety.policy import Policy

    policy = Policy.load()
    dangerous, harmless = load("dangerous"), load("harmless")
    result: dict[str, object] = {"benchmark": "policy_bypass", "dangerous": len(dangerous),
                                 "harmless": len(harmless)}
    times: list[float] = []
    for way in ("bash", "typed"):
        missed, rules = [], {}
        for item in dangerous:
            decision, rule, seconds = judge(policy, item["command"], way)
            times.append(seconds)
            if decision == "allow":
                missed.append(item["name"])
            rules[rule] = rules.get(rule, 0) + 1
        blocked = [item["name"] for item in harmless if judge(policy, item["command"], way)[0] != "allow"]
        result[way] = {
            "dangerous_refused_or_asked_pct": round(100 * (len(dangerous) - len(missed)) / len(dangerous), 2),
            "harmless_allowed_pct": round(100 * (len(harmless) - len(blocked)) / len(harmless), 2),
            "dangerous_missed": missed, "harmless_not_allowed": blocked,
            "rules": {str(k): v for k, v in sorted(rules.items(), key=lambda kv: -kv[1])},
        }
    result["decision_ms"] = {"median": round(statistics.median(times) * 1000, 3),
                             "max": round(max(times) * 1000, 3)}
    result["load"] = os.getloadavg()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
