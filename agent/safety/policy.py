"""The safety policy: decides allow / ask / deny for every tool call before it executes.

Rules live in YAML a person can read and change (see `agent/safety/default_policy.yaml`, which documents
the format). Three layers are merged, later ones taking precedence:

1. the defaults shipped with deskpilot (`agent/safety/default_policy.yaml`);
2. the user's file (`$XDG_CONFIG_HOME/deskpilot/policy.yaml`, by default
   `~/.config/deskpilot/policy.yaml`, or a path given to `Policy.load`);
3. per-task overrides (a dict such as a task file's `policy:` key, or a list of rules).

New rules of a later layer are tried before every rule of the earlier ones; a rule that reuses a
name edits that rule in place (fields it leaves out are inherited; `enabled: false` removes it).
The first matching rule decides; when none matches the policy's `default` (allow) applies.

What the policy may look at is fixed on purpose: the tool call (its tool name and input), the
parsed action, the rules, the run's working directory and the focused window's WM_CLASS as the X
server reports it (`focused_window`). It never sees screenshots, OCR text or what the model wrote,
so nothing shown on the screen (a web page saying "ignore your rules") can change a decision. The
window title is read only to show the user; terminal detection uses the WM_CLASS alone.

The concepts live apart: the policy file's schema and reading in `agent.safety.policy_file`
(`PolicyError` names the file, line, rule and field of a problem), rules and what they match in
`agent.safety.rules`, and in `agent.safety.confirm` the loop's `confirm(call, action)` hook that
`make_confirm` builds for `--confirm ask|allow|deny` (a refusal raises `Denied`, which the loop
turns into an error result the model sees). This module merges the layers and decides.

The policy is a safety net against mistakes and prompt injection, not a sandbox: a determined
program can always find a command the patterns do not know (python -c "shutil.rmtree(...)"), a
command typed in pieces, or a terminal inside another application. Run untrusted goals on a
virtual display in a container.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.safety.policy_file import Layer, PolicyError, parse_layer, read_layer
from agent.safety.rules import DECISIONS, MATCHER_FIELDS, CallFacts, PolicyContext, Rule, Verdict

if TYPE_CHECKING:
    from agent.types import ToolCall

DEFAULT_POLICY = "default_policy.yaml"  # inside the `agent.safety` package
NO_RULE_REASON = "no policy rule matched"
PROVIDER_CHECK_RULE = "provider_safety_check"  # the verdict's rule for a call with provider safety checks


def merge(layers: Iterable[Layer]) -> tuple[str, list[Rule]]:
    """Apply layers in order: new rules go first, same-named rules are edited in place.

    Returns the default decision and the rules in the order they are tried. Raises PolicyError
    for a new rule (no earlier layer has its name) that lacks `decision` or `reason`.
    """
    default = "allow"
    merged: list[dict[str, Any]] = []
    for layer in layers:
        if layer.default is not None:
            default = layer.default
        fresh: list[dict[str, Any]] = []
        for entry in layer.rules:
            raw = {**entry.given(), "source": layer.source}
            at = next((i for i, old in enumerate(merged) if old["name"] == entry.name), None)
            if entry.enabled is False:
                if at is not None:
                    del merged[at]
                continue
            if at is not None:
                old = merged[at]
                if any(k in raw for k in MATCHER_FIELDS):  # a new matcher replaces the old one whole
                    old = {k: v for k, v in old.items() if k not in MATCHER_FIELDS}
                merged[at] = {**old, **raw}
                continue
            for key in ("decision", "reason"):
                if key not in raw:
                    raise PolicyError(f"a new rule needs `{key}` (no earlier rule is called {entry.name!r})",
                                      layer.source, entry.name, key, entry.line)
            fresh.append(raw)
        merged = fresh + merged
    return default, [Rule(**{k: v for k, v in raw.items() if k != "enabled"}) for raw in merged]


# ---------------------------------------------------------------------------- the policy


def user_policy_path() -> Path:
    """Where the user's policy file is looked for: $XDG_CONFIG_HOME/deskpilot/policy.yaml."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "deskpilot" / "policy.yaml"


class Policy:
    """An ordered list of rules and a default decision; `decide` is pure and thread-safe."""

    def __init__(self, rules: Iterable[Rule], default: str = "allow", sources: Iterable[str] = ()) -> None:
        if default not in DECISIONS:
            raise PolicyError(f"must be one of {', '.join(DECISIONS)}, not {default!r}", field="default")
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.default = default
        self.sources: tuple[str, ...] = tuple(sources)

    @classmethod
    def load(cls, path: Path | None = None, overrides: dict | list | None = None, *,
             overrides_source: str = "task policy") -> Policy:
        """The defaults, then the user's file (`path`, or user_policy_path() if it exists), then `overrides`.

        Raises PolicyError (naming the file, rule and field) when any layer does not validate, or
        when an explicitly given `path` cannot be read.
        """
        from importlib.resources import files

        default_source = f"agent/safety/{DEFAULT_POLICY}"
        layers = [read_layer(files("agent.safety").joinpath(DEFAULT_POLICY).read_text("utf-8"), default_source)]
        user = Path(path).expanduser() if path is not None else user_policy_path()
        if path is not None or user.is_file():
            try:
                text = user.read_text(encoding="utf-8")
            except OSError as exc:
                raise PolicyError(f"cannot read the policy file: {exc.strerror or exc}", str(user)) from None
            layers.append(read_layer(text, str(user)))
        if overrides is not None:
            layers.append(parse_layer(overrides, overrides_source))
        default, rules = merge(layers)
        return cls(rules, default, [layer.source for layer in layers])

    def decide(self, call: ToolCall, action: Any, context: PolicyContext) -> Verdict:
        """The first matching rule's verdict for `call` (with its parsed `action`, or None), else the default.

        A call the model's provider wants a person to confirm (`call.checks`, e.g. OpenAI's pending
        safety checks) is asked about unless a rule denies it."""
        verdict = Verdict(self.default, None, NO_RULE_REASON)
        facts = CallFacts.of(call, action, context)
        for rule in self.rules:
            found = rule.match(facts)
            if found is not None:
                verdict = Verdict(rule.decision, rule.name, rule.reason, found or None)
                break
        checks = getattr(call, "checks", ())
        if checks and verdict.decision != "deny":
            return Verdict("ask", PROVIDER_CHECK_RULE, "the model's provider asks a person to confirm this action: "
                           + "; ".join(checks))
        return verdict

    def rule(self, name: str) -> Rule:
        """The rule called `name` (KeyError if none)."""
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)

    def __repr__(self) -> str:
        return f"Policy({len(self.rules)} rules, default={self.default!r}, sources={list(self.sources)!r})"


__all__ = ["DEFAULT_POLICY", "NO_RULE_REASON", "Policy", "PolicyContext", "PolicyError", "Verdict", "merge",
           "user_policy_path"]
