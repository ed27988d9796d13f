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

A task file comes from anywhere, so its layer may only tighten (`Policy.load(..., task_may_loosen=
False)`, what runs use unless the person running passed `--confirm allow`): it may add `ask` and
`deny` rules, make a rule's decision stricter, change a reason or make the default stricter. It
may not remove a rule, weaken a decision, replace a rule's matcher, or add an `allow` rule: that
is refused (PolicyError, exit 2) naming the rule and field. Its new rules are kept apart and can
only make a verdict stricter: the stricter of the task's first match and the other rules' wins.

A call is judged as several units (`agent.safety.reading`): the call as written, every command a
bash call would run, every line typed into a window and the commands it runs; each unit gets the
first matching rule, and the strictest verdict of all units decides (among equals, the rule that
comes first). Findings of the shell analysis (`finding:` rules) come with the call itself.

What the policy may look at is fixed on purpose: the tool call (its tool name and input), the
parsed action, the rules, the run's working directory and the focused window's class and title as
the X server reports them (`focused_window`). It never sees screenshots, OCR text or what the model
wrote, so nothing shown on the screen (a web page saying "ignore your rules") can loosen a decision;
a title can only make a window count as a terminal, which makes the policy stricter.

The concepts live apart: the policy file's schema and reading in `agent.safety.policy_file`
(`PolicyError` names the file, line, rule and field of a problem), rules and what they match in
`agent.safety.rules`, and in `agent.safety.confirm` the loop's `confirm(call, action)` hook that
`make_confirm` builds for `--confirm ask|allow|deny` (a refusal raises `Denied`, which the loop
turns into an error result the model sees). This module merges the layers and decides.

The policy is a safety net against mistakes and prompt injection, not a sandbox: it cannot see
what a program it lets run does, nor code inside the files it runs (see the README's safety
section). Run untrusted goals on a virtual display in a container.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.safety.policy_file import Layer, PolicyError, RuleEntry, parse_layer, read_layer
from agent.safety.rules import BASH, DECISIONS, MATCHER_FIELDS, CallFacts, PolicyContext, Rule, Verdict

if TYPE_CHECKING:
    from agent.types import ToolCall

DEFAULT_POLICY = "default_policy.yaml"  # inside the `agent.safety` package
NO_RULE_REASON = "no policy rule matched"
SEVERITY = {"allow": 0, "ask": 1, "deny": 2}
LOOSEN_HINT = ("a task file may add rules or make them stricter, never loosen the built-in rules or yours; "
               "to run it as written, pass --confirm allow")
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


def tighten(rules: list[Rule], default: str, layer: Layer) -> tuple[list[Rule], str, list[Rule]]:
    """Apply a task layer that may only tighten: (rules edited, default, the layer's new rules kept apart).

    Raises PolicyError naming the rule and field of the first change that would loosen the policy.
    """
    rules = list(rules)
    if layer.default is not None:
        if SEVERITY[layer.default] < SEVERITY[default]:
            raise PolicyError(f"the default {layer.default!r} is weaker than {default!r}: {LOOSEN_HINT}",
                              layer.source, field="default")
        default = layer.default
    fresh: list[Rule] = []
    for entry in layer.rules:
        at = next((i for i, rule in enumerate(rules) if rule.name == entry.name), None)
        given = entry.given()
        if at is None:
            _new_rule_tightens(entry, layer)
            fresh.append(Rule(**{k: v for k, v in given.items() if k != "enabled"}, source=layer.source))
            continue
        old = rules[at]
        if entry.enabled is False:
            raise _loosens(entry, layer, "enabled", "it would switch the rule off")
        matcher = next((k for k in MATCHER_FIELDS if k in given), None)
        if matcher is not None:
            raise _loosens(entry, layer, matcher, "a new matcher could match less")
        if "decision" in given and SEVERITY[given["decision"]] < SEVERITY[old.decision]:
            raise _loosens(entry, layer, "decision", f"{given['decision']} is weaker than {old.decision}")
        rules[at] = replace(old, **{k: given[k] for k in ("decision", "reason") if k in given}, source=layer.source)
    return rules, default, fresh


def _new_rule_tightens(entry: RuleEntry, layer: Layer) -> None:
    for key in ("decision", "reason"):
        if getattr(entry, key) is None:
            raise PolicyError(f"a new rule needs `{key}` (no earlier rule is called {entry.name!r})",
                              layer.source, entry.name, key, entry.line)
    if entry.decision == "allow":
        raise _loosens(entry, layer, "decision", "a new allow rule would let calls through that other rules stop")


def _loosens(entry: RuleEntry, layer: Layer, field: str, why: str) -> PolicyError:
    return PolicyError(f"{why}: {LOOSEN_HINT}", layer.source, entry.name, field, entry.line)


# ---------------------------------------------------------------------------- the policy


def user_policy_path() -> Path:
    """Where the user's policy file is looked for: $XDG_CONFIG_HOME/deskpilot/policy.yaml."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "deskpilot" / "policy.yaml"


class Policy:
    """An ordered list of rules and a default decision; `decide` is pure and thread-safe."""

    def __init__(self, rules: Iterable[Rule], default: str = "allow", sources: Iterable[str] = (),
                 tightening: Iterable[Rule] = ()) -> None:
        if default not in DECISIONS:
            raise PolicyError(f"must be one of {', '.join(DECISIONS)}, not {default!r}", field="default")
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.tightening: tuple[Rule, ...] = tuple(tightening)  # a task's own rules: they only make verdicts stricter
        self.default = default
        self.sources: tuple[str, ...] = tuple(sources)

    @classmethod
    def load(cls, path: Path | None = None, overrides: dict | list | None = None, *,
             overrides_source: str = "task policy", task_may_loosen: bool = True) -> Policy:
        """The defaults, then the user's file (`path`, or user_policy_path() if it exists), then `overrides`.

        With `task_may_loosen=False` the overrides may only tighten (see the module's docstring).
        Raises PolicyError (naming the file, rule and field) when any layer does not validate, when
        an explicitly given `path` cannot be read, or when the overrides would loosen and may not.
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
        task = parse_layer(overrides, overrides_source) if overrides is not None else None
        if task is not None and task_may_loosen:
            layers.append(task)
        default, rules = merge(layers)
        sources = [layer.source for layer in layers]
        if task is not None and not task_may_loosen:
            rules, default, fresh = tighten(rules, default, task)
            return cls(rules, default, [*sources, task.source], fresh)
        return cls(rules, default, sources)

    def decide(self, call: ToolCall, action: Any, context: PolicyContext, reading: Any = None) -> Verdict:
        """The verdict for `call` (with its parsed `action`, or None): the strictest over its units.

        Each unit gets its first matching rule; the default applies only when no unit matched any.

        `reading` (an `agent.safety.reading.Reading`) is what a guard read with its shell and window
        state; without one the call is read on its own.
        """
        from agent.safety.reading import ReadState, read_call

        facts = CallFacts.of(call, action, context)
        if reading is None:
            reading, _ = read_call(facts, call.input if isinstance(call.input, dict) else {}, ReadState())
        units = [replace(facts, findings=dict(reading.findings))]
        if facts.tool == BASH:
            units += [replace(facts, command=line) for line in reading.commands]
        else:
            units += [replace(facts, text=text) for text in reading.texts]
        best: tuple[int, int, Verdict] | None = None
        for unit in units:
            for rules, offset in ((self.rules, 0), (self.tightening, len(self.rules))):
                for index, rule in enumerate(rules):
                    found = rule.match(unit)
                    if found is not None:
                        verdict = Verdict(rule.decision, rule.name, rule.reason, _shown(found) or None)
                        key = (SEVERITY[rule.decision], -(offset + index))
                        if best is None or key > best[:2]:
                            best = (*key, verdict)
                        break
        verdict = best[2] if best is not None else Verdict(self.default, None, NO_RULE_REASON)
        checks = getattr(call, "checks", ())  # a call the model's provider wants a person to confirm
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


def _shown(text: str) -> str:
    """A matched excerpt of a rendered command, as a person would write it."""
    from agent.safety.shell import shown

    table = str.maketrans({"\u00a0": " ", "\uff1b": ";", "\uff06": "&", "\uff5c": "|", "\uff08": "(",
                           "\uff09": ")", "\uff1c": "<", "\uff1e": ">", "\uff40": "`", "\uff07": "'",
                           "\uff02": '"'})
    return shown(text.translate(table), 200) if text else text


__all__ = ["DEFAULT_POLICY", "LOOSEN_HINT", "NO_RULE_REASON", "SEVERITY", "Policy", "PolicyContext", "PolicyError",
           "Verdict", "merge", "tighten", "user_policy_path"]
