"""The policy file: its schema as pydantic models, read from YAML with line numbers.

A policy layer is a mapping with `version` (1), `default` (allow, ask or deny) and `rules`, or just
a list of rules; `default_policy.yaml` in this package documents the format. `read_layer(text,
source)` reads one YAML text (the shared `agent.yaml_lines` reader gives every key's line);
`parse_layer(data, source)` validates data parsed already (a task file's `policy:` key). Both
return a `Layer`: its default and its rules as written (`RuleEntry`: only the fields given, each
checked and compiled: tool aliases resolved, regexes with their shorthands compiled, key
combinations normalised).

A layer that does not validate raises `PolicyError` for the first problem, in the order a reader
would check: the YAML itself, unknown top-level keys, version, default, then each rule in turn
(unknown fields, then name, decision, reason, enabled and the matchers, then whether the
matchers can hold together), then names used twice. The error names the source, the line, the
rule (its name, or `#n` while it has none) and the field.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from actions.keys import KeyNameError, parse_combo
from actions.vocabulary import ACTION_NAMES
from agent.errors import BadInput
from agent.safety.rules import (
    BASH,
    COMPUTER,
    DECISIONS,
    EDITOR,
    EDITOR_COMMANDS,
    KEY_ACTIONS,
    MATCHER_FIELDS,
    TOOL_ALIASES,
    TOOLS,
    TYPING_ACTIONS,
    Combo,
    expand_regex,
    normalise_combo,
)
from agent.yaml_lines import YamlDocument, YamlError, YamlPath, YamlProblem, read_yaml

TOP_FIELDS = ("version", "default", "rules")
RULE_FIELDS = ("name", "decision", "reason", "enabled", *MATCHER_FIELDS)

Decision = Literal["allow", "ask", "deny"]


class PolicyError(BadInput, ValueError):
    """A policy that does not validate; the message names the file, the rule and the field."""

    def __init__(self, message: str, source: str = "", rule: str | None = None, field: str | None = None,
                 line: int | None = None) -> None:
        where = f"{source}:{line}" if source and line else source
        parts = [where] if where else []
        if rule is not None:
            parts.append(f"rule {rule!r}")
        if field is not None:
            parts.append(f"field {field!r}")
        super().__init__(": ".join([*parts, message]))
        self.source, self.rule, self.field, self.line = source, rule, field, line


def _problem(message: str, at: YamlPath = (), **names: str | None) -> PydanticCustomError:
    """A validation problem worded for policy files.

    `at` extends the error's location (the line and field it names); `field` or `rule` given
    here replace the ones the location implies. The message travels in the context as it is.
    """
    return PydanticCustomError("policy", "{problem}", {"problem": message, "at": at, **names})


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _suggest(value: object, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------------- field values


def _strings(value: Any, nested: bool = False) -> list[str]:
    """A string or a list of strings (nested lists flattened when `nested`, for YAML aliases)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        out: list[str] = []
        for entry in value:
            if isinstance(entry, str):
                out.append(entry)
            elif nested and isinstance(entry, list):
                out.extend(_strings(entry, nested))
            else:
                raise _problem(f"entries must be strings, not {_kind(entry)}")
        return out
    raise _problem(f"must be a string or a non-empty list of strings, not {_kind(value)}")


def _rule_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise _problem("every rule needs a `name`: a one-line string")
    return value.strip()


def _decision(value: Any) -> str:
    if value not in DECISIONS:
        raise _problem(f"must be one of {', '.join(DECISIONS)}, not {value!r}")
    return value


def _reason(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _problem("must be a non-empty string (it is shown to the model and the user)")
    return " ".join(value.split())


def _true_or_false(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _problem(f"must be true or false, not {value!r}")
    return value


def _tools(value: Any) -> frozenset[str]:
    tools = []
    for name in _strings(value):
        name = TOOL_ALIASES.get(name, name)
        if name not in TOOLS:
            raise _problem(f"unknown tool {name!r}{_suggest(name, TOOLS)}; tools are {', '.join(TOOLS)}")
        tools.append(name)
    return frozenset(tools)


def _actions(value: Any) -> frozenset[str]:
    known = (*ACTION_NAMES, *EDITOR_COMMANDS)
    actions = _strings(value)
    for name in actions:
        if name not in known:
            raise _problem(f"unknown action {name!r}{_suggest(name, known)}; computer actions are "
                           f"{', '.join(ACTION_NAMES)}; editor commands are {', '.join(EDITOR_COMMANDS)}")
    return frozenset(actions)


def _regexes(value: Any) -> tuple[re.Pattern[str], ...]:
    patterns = []
    for pattern in _strings(value, nested=True):
        try:
            patterns.append(re.compile(expand_regex(pattern)))
        except re.error as exc:
            raise _problem(f"bad regex {pattern!r}: {exc}") from None
    return tuple(patterns)


def _key_combos(value: Any) -> frozenset[Combo]:
    combos = []
    for text in _strings(value):
        if len(text.split()) != 1:
            raise _problem(f"{text!r}: list one key combination per entry")
        try:
            combos.append(normalise_combo(parse_combo(text)))
        except KeyNameError as exc:
            raise _problem(str(exc)) from None
    return frozenset(combos)


def _findings(value: Any) -> frozenset[str]:
    from agent.safety.shell import FINDINGS

    names = _strings(value)
    for name in names:
        if name not in FINDINGS:
            raise _problem(f"unknown finding {name!r}{_suggest(name, FINDINGS)}; findings are {', '.join(FINDINGS)}")
    return frozenset(names)


def _version_one(value: Any) -> int:
    if value != 1:
        raise _problem(f"unsupported version {value!r}; this deskpilot reads version 1")
    return 1


def _default_decision(value: Any) -> str | None:
    return None if value is None else _decision(value)


# ---------------------------------------------------------------------------- the models


class RuleEntry(BaseModel):
    """One rule as a layer writes it: a name and the fields given (see `given()`), checked and compiled."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    name: Annotated[str, PlainValidator(_rule_name)]
    decision: Annotated[Decision | None, PlainValidator(_decision)] = None
    reason: Annotated[str | None, PlainValidator(_reason)] = None
    enabled: Annotated[bool | None, PlainValidator(_true_or_false)] = None
    tool: Annotated[frozenset[str] | None, PlainValidator(_tools)] = None
    action: Annotated[frozenset[str] | None, PlainValidator(_actions)] = None
    command: Annotated[tuple[re.Pattern[str], ...] | None, PlainValidator(_regexes)] = None
    text: Annotated[tuple[re.Pattern[str], ...] | None, PlainValidator(_regexes)] = None
    keys: Annotated[frozenset[Combo] | None, PlainValidator(_key_combos)] = None
    path_outside_workdir: Annotated[bool | None, PlainValidator(_true_or_false)] = None
    into_terminal: Annotated[bool | None, PlainValidator(_true_or_false)] = None
    finding: Annotated[frozenset[str] | None, PlainValidator(_findings)] = None

    _line: int | None = PrivateAttr(default=None)

    @property
    def line(self) -> int | None:
        """The rule's line in its YAML file; None when it did not come from one."""
        return self._line

    def given(self) -> dict[str, Any]:
        """The fields this rule gives (a later layer's rule edits only these), by name."""
        return {name: getattr(self, name) for name in RULE_FIELDS if name in self.model_fields_set}

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise _problem(f"a rule must be a mapping, not {_kind(data)}")
        for key in data:
            if key not in RULE_FIELDS:
                raise _problem(f"unknown field {key!r}{_suggest(key, RULE_FIELDS)}; a rule has "
                               f"{', '.join(RULE_FIELDS)}", (str(key),))
        if "name" not in data:
            raise _problem("every rule needs a `name`: a one-line string", ("name",))
        return dict(data)

    @model_validator(mode="after")
    def _could_match(self) -> RuleEntry:
        """Reject matchers that could never hold together (e.g. `command` with `keys`)."""
        given = self.model_fields_set
        implied: dict[str, set[str]] = {}
        if "command" in given:
            implied["command"] = {BASH}
        for key in ("text", "keys", "into_terminal"):
            if key in given:
                implied[key] = {COMPUTER}
        if "path_outside_workdir" in given:
            implied["path_outside_workdir"] = {EDITOR}
        if "finding" in given:
            implied["finding"] = {BASH, COMPUTER}
        actions = self.action or frozenset()
        if "action" in given:
            implied["action"] = ({COMPUTER} if actions & set(ACTION_NAMES) else set()) | (
                {EDITOR} if actions & set(EDITOR_COMMANDS) else set())
        if "tool" in given:
            implied["tool"] = set(self.tool or ())
        possible = set(TOOLS)
        for n, (key, tools) in enumerate(implied.items()):
            if not possible & tools:
                earlier = ", ".join(f"`{k}`" for k in list(implied)[:n])
                raise _problem(f"applies to {' / '.join(sorted(tools))} calls, which {earlier} rule(s) out: "
                               "the rule could never match", (key,))
            possible &= tools
        if "action" in given:
            if "text" in given and not actions & TYPING_ACTIONS:
                raise _problem("`text` matches what `type`, `key` and `hold_key` actions type, but `action` includes "
                               "none of them: the rule could never match", ("text",))
            if "keys" in given and not actions & KEY_ACTIONS:
                raise _problem("`keys` matches `key` and `hold_key` actions, but `action` includes neither: "
                               "the rule could never match", ("keys",))
        return self


class PolicyLayer(BaseModel):
    """A policy file's content (or a task's `policy:`): version, default decision (None: keep) and rules."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    version: Annotated[int, PlainValidator(_version_one)] = 1
    default: Annotated[Decision | None, PlainValidator(_default_decision)] = None
    rules: list[RuleEntry] = []

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, list):
            return {"rules": data}
        if not isinstance(data, Mapping):
            raise _problem(f"a policy must be a mapping with `rules:` (or a list of rules), not {_kind(data)}")
        for key in data:
            if key not in TOP_FIELDS:
                raise _problem(f"unknown key {key!r}{_suggest(key, TOP_FIELDS)}; expected one of "
                               f"{', '.join(TOP_FIELDS)}", (str(key),), field=None)
        return dict(data)

    @field_validator("rules", mode="wrap")
    @classmethod
    def _rules_in_order(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> list[RuleEntry]:
        """A list of rules, read in order: a name used twice is found unless an earlier rule is invalid."""
        value = value or []
        if not isinstance(value, list):
            raise _problem(f"must be a list of rules, not {_kind(value)}")
        try:
            rules: list[RuleEntry] = handler(value)
        except ValidationError as exc:
            first = min(int(error["loc"][0]) for error in exc.errors())
            _names_once([_rule_name(item["name"]) for item in value[:first]])
            raise
        _names_once([rule.name for rule in rules])
        return rules


def _names_once(names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise _problem("a rule of this name appears earlier in the same policy", (i, "name"), rule=name)
        seen.add(name)


@dataclass(frozen=True)
class Layer:
    """One validated layer of the policy and where it came from."""

    source: str
    default: str | None
    rules: tuple[RuleEntry, ...]


# ---------------------------------------------------------------------------- reading


def read_layer(text: str, source: str) -> Layer:
    """Read and validate one YAML policy text; PolicyError names `source`, the line, rule and field."""
    try:
        document = read_yaml(text)
    except YamlError as exc:
        raise _yaml_error(exc.problems[0], source) from None
    return parse_layer(document.data, source, document)


def parse_layer(data: Any, source: str, document: YamlDocument | None = None) -> Layer:
    """Validate one layer's data (a mapping or a list of rules); `document` gives the lines of a YAML one."""
    try:
        layer = PolicyLayer.model_validate(data)
    except ValidationError as exc:
        raise _policy_error(exc.errors()[0], source, data, document) from None
    for i, rule in enumerate(layer.rules):
        rule._line = document.line_of(_yaml_path(data, ("rules", i))) if document else None
    return Layer(source, layer.default, tuple(layer.rules))


def _yaml_path(data: Any, path: YamlPath) -> YamlPath:
    """The YAML path of a model location: a top-level list of rules is `rules` itself."""
    return path[1:] if isinstance(data, list) and path[:1] == ("rules",) else path


def _policy_error(error: Any, source: str, data: Any, document: YamlDocument | None) -> PolicyError:
    """The first pydantic error -> PolicyError with the source, line, rule and field."""
    ctx = error.get("ctx") or {}
    path: YamlPath = (*error["loc"], *ctx.get("at", ()))
    index, field = _where(path)
    rule = None
    if index is not None:
        rules = data if isinstance(data, list) else data.get("rules") if isinstance(data, Mapping) else None
        rule = ctx.get("rule") or _label(rules[index] if isinstance(rules, list) else None, index)
    line = document.nearest_line(_yaml_path(data, path)) if document is not None and path else None
    return PolicyError(ctx.get("problem", error["msg"]), source, rule, ctx.get("field", field), line)


def _where(path: YamlPath) -> tuple[int | None, str | None]:
    """(the index of the rule, the field) a model or YAML path points into."""
    if path[:1] == ("rules",) and len(path) > 1 and isinstance(path[1], int):
        path = path[1:]
    elif not (path and isinstance(path[0], int)):  # a top-level key, or the whole layer
        return None, str(path[0]) if path else None
    return int(path[0]), str(path[1]) if len(path) > 1 else None


def _label(raw: Any, index: int) -> str:
    """A rule as messages name it: its name while that is a non-blank string, else `#n`."""
    name = raw.get("name") if isinstance(raw, Mapping) else None
    return name if isinstance(name, str) and name.strip() else f"#{index + 1}"


def _yaml_error(problem: YamlProblem, source: str) -> PolicyError:
    """A YAML problem -> PolicyError; a repeated key "appears twice" where it stands (rules by `#n`)."""
    if problem.kind in ("syntax", "too_large"):
        return PolicyError(problem.message, source, line=problem.line)
    index, field = _where(problem.path)
    message = "appears twice" if problem.kind == "duplicate" else problem.message
    return PolicyError(message, source, None if index is None else f"#{index + 1}", field, problem.line)


__all__ = ["RULE_FIELDS", "TOP_FIELDS", "Layer", "PolicyError", "PolicyLayer", "RuleEntry", "parse_layer",
           "read_layer"]
