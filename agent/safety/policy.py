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

`make_confirm` turns a policy into the loop's `confirm(call, action)` hook for the modes of
`--confirm ask|allow|deny`; a refusal raises `Denied`, which the loop turns into an
error result the model sees.

The policy is a safety net against mistakes and prompt injection, not a sandbox: a determined
program can always find a command the patterns do not know (python -c "shutil.rmtree(...)"), a
command typed in pieces, or a terminal inside another application. Run untrusted goals on a
virtual display in a container.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from actions.keys import KeyNameError, parse_combo
from actions.result import ToolError
from actions.vocabulary import ACTION_NAMES
from agent.errors import BadInput

if TYPE_CHECKING:
    from agent.types import ToolCall

DECISIONS = ("allow", "ask", "deny")
MODES = ("ask", "allow", "deny")
BASH, COMPUTER, EDITOR = "bash", "computer", "str_replace_based_edit_tool"
TOOLS = (COMPUTER, BASH, EDITOR)
TOOL_ALIASES = {"editor": EDITOR, "text_editor": EDITOR}
EDITOR_COMMANDS = ("view", "create", "str_replace", "insert", "undo_edit")
KEY_ACTIONS = frozenset({"key", "hold_key"})

TOP_FIELDS = ("version", "default", "rules")
MATCHER_FIELDS = ("tool", "action", "command", "text", "keys", "path_outside_workdir", "into_terminal")
RULE_FIELDS = ("name", "decision", "reason", "enabled", *MATCHER_FIELDS)

DEFAULT_POLICY = "default_policy.yaml"  # inside the `agent.safety` package
NO_RULE_REASON = "no policy rule matched"

# Window classes (WM_CLASS instance or class, compared case-insensitively; for reverse-DNS names
# such as org.wezfurlong.wezterm the last part counts too) of terminal emulators.
TERMINAL_CLASSES: tuple[str, ...] = (
    "xterm", "uxterm", "gnome-terminal", "gnome-terminal-server", "konsole", "xfce4-terminal", "terminal",
    "alacritty", "kitty", "terminator", "urxvt", "rxvt", "urxvt-unicode", "st", "st-256color", "tilix",
    "wezterm", "wezterm-gui", "foot", "footclient", "lxterminal", "mate-terminal", "qterminal",
    "terminology", "sakura", "guake", "tilda", "yakuake", "cool-retro-term", "eterm", "aterm", "kgx",
    "org.gnome.console", "ptyxis", "blackbox", "contour", "ghostty", "deepin-terminal", "termite",
    "roxterm", "hyper", "tabby", "warp", "zutty", "mlterm", "pantheon-terminal", "io.elementary.terminal",
)
_TERMINALS = frozenset(TERMINAL_CLASSES)

# Regex shorthands, expanded before compiling (documented in default_policy.yaml).
_WS = r"(?:[ \t]|\\\n)"
_SEP = _WS + "+"
_TOK = r"[^\s;&|()<>`]"
_ASSIGN = r"""[A-Za-z_][A-Za-z0-9_]*=(?:'[^']*'|"[^"]*"|[^\s;&|()<>`'"][^\s;&|()<>`]*)?"""
_WRAPPERS = (r"sudo|doas|pkexec|run0|runuser|env|nice|ionice|nohup|time|timeout|stdbuf|exec|eval|xargs|setsid"
             rf"|unbuffer|watch|flock|chrt|taskset|builtin|command(?!{_SEP}-[vV])")
_OPTION = (rf"(?:-[A-Za-z](?:{_SEP}[^\s;&|()<>`\d-]{_TOK}*)?"  # -u bob, -E
           rf"|-(?:{_TOK}{{2,}}|[^A-Za-z\s;&|()<>`])"  # --preserve-env, -0
           rf"|\d{_TOK}*|{_ASSIGN})")  # timeout 10s, env FOO=1
_PATH = r"""(?:[^\s;&|()<>`'"{}!]*/)?"""  # /usr/bin/ before a command word
_PRE = r"""(?:^|(?<=[\s;&|(){}`!'"]))"""  # a word begins here
_START = (r"""(?:^|[;&|(){}`!\n'"]|(?<![\w-])(?:then|do|else|-exec|-execdir|-ok|-okdir)(?=[ \t])"""
          rf"|{_PRE}{_ASSIGN}(?=[ \t])"  # FOO=1 rm ...
          rf"|{_PRE}{_PATH}(?:{_WRAPPERS})(?:{_SEP}{_OPTION}){{0,16}}(?=[ \t]))")  # sudo -E rm ..., xargs -0 rm ...
_CMD = rf"{_START}{_WS}*{_PATH}\\?"
PLACEHOLDERS: dict[str, str] = {
    "{{cmd}}": _CMD,
    "{{args}}": rf"(?:{_SEP}{_TOK}+){{0,256}}?{_SEP}",
    "{{opts}}": rf"(?:{_SEP}-{_TOK}*(?:{_SEP}[^\s;&|()<>`-]{_TOK}*)?){{0,16}}?{_SEP}",
    "{{end}}": r"""(?=[\s;&|)'"`]|$)""",
}

_MODIFIER_NAMES = {
    "Control_L": "ctrl", "Control_R": "ctrl", "Alt_L": "alt", "Alt_R": "alt", "Shift_L": "shift",
    "Shift_R": "shift", "Super_L": "super", "Super_R": "super", "Meta_L": "super", "Meta_R": "super",
    "ISO_Level3_Shift": "altgr",
}
Combo = tuple[frozenset[str], str]  # (modifiers, key), normalised


class Denied(ToolError):
    """The policy refused an action; the model is told why."""


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


@dataclass(frozen=True)
class Verdict:
    """The policy's answer for one call: the decision, the rule that made it (None: the default), why."""

    decision: str  # "allow" | "ask" | "deny"
    rule: str | None
    reason: str
    matched: str | None = None  # what matched (command excerpt, key combination, path), for people


@dataclass(frozen=True)
class PolicyContext:
    """What a decision may know besides the call: the working directory and the focused window.

    `focused_window` is what `focused_window()` returns ("instance/Class: title"), or just a class
    such as "xterm"; None when unknown.
    """

    workdir: Path
    focused_window: str | None = None


@dataclass(frozen=True)
class Rule:
    """One compiled rule. A matcher field left as None does not restrict."""

    name: str
    decision: str
    reason: str
    tool: frozenset[str] | None = None
    action: frozenset[str] | None = None
    command: tuple[re.Pattern[str], ...] | None = None
    text: tuple[re.Pattern[str], ...] | None = None
    keys: frozenset[Combo] | None = None
    path_outside_workdir: bool | None = None
    into_terminal: bool | None = None
    source: str = ""

    def match(self, facts: _Facts) -> str | None:
        """What matched (possibly ""), or None when the rule does not apply to `facts`."""
        detail = ""
        if self.tool is not None and facts.tool not in self.tool:
            return None
        if self.action is not None and facts.action not in self.action:
            return None
        if self.command is not None:
            if facts.tool != BASH or facts.command is None:
                return None
            found = _search(self.command, facts.command)
            if found is None:
                return None
            detail = found
        if self.text is not None:
            if facts.tool != COMPUTER or facts.action != "type" or facts.text is None:
                return None
            found = _search(self.text, facts.text)
            if found is None:
                return None
            detail = found
        if self.keys is not None:
            hit = next((text for combo, text in facts.combos if combo in self.keys), None)
            if hit is None:
                return None
            detail = hit
        if self.path_outside_workdir is not None:
            if facts.tool != EDITOR or facts.path is None:
                return None
            resolved, outside = facts.path_check()
            if outside != self.path_outside_workdir:
                return None
            detail = str(resolved)
        if self.into_terminal is not None:
            if facts.tool != COMPUTER:
                return None
            terminal = is_terminal_window(facts.context.focused_window)
            if self.into_terminal and terminal is False:
                return None
            if not self.into_terminal and terminal is not False:
                return None
        return detail


@dataclass
class _Facts:
    """The parts of one call that rules look at."""

    tool: str
    action: str | None
    command: str | None
    text: str | None
    combos: list[tuple[Combo, str]]
    path: str | None
    context: PolicyContext
    _path_check: tuple[Path, bool] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, call: ToolCall, action: Any, context: PolicyContext) -> _Facts:
        data = call.input if isinstance(call.input, dict) else {}
        name, command, text, path = None, None, None, None
        combos: list[tuple[Combo, str]] = []
        if call.name == COMPUTER:
            name = getattr(action, "action", None) or _str(data.get("action"))
            text = getattr(action, "text", None) if action is not None else _str(data.get("text"))
            if name in KEY_ACTIONS and text:
                combos = _combos_of(text)
            if name != "type":
                text = None
        elif call.name == BASH:
            command = _str(data.get("command"))
        elif call.name == EDITOR:
            name, path = _str(data.get("command")), _str(data.get("path"))
        return cls(call.name, name, command, text, combos, path, context)

    def path_check(self) -> tuple[Path, bool]:
        """(the editor path resolved, whether it lies outside the working directory)."""
        if self._path_check is None:
            workdir = Path(os.path.realpath(self.context.workdir))
            target = Path(os.path.expanduser(self.path or ""))
            resolved = Path(os.path.realpath(workdir / target))  # `..` and symlinks resolved
            self._path_check = (resolved, not resolved.is_relative_to(workdir))
        return self._path_check


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _search(patterns: Iterable[re.Pattern[str]], text: str) -> str | None:
    for pattern in patterns:
        found = pattern.search(text)
        if found:
            return found.group(0).strip(" \t\n;&|()`'\"") or found.group(0)
    return None


def normalise_combo(names: list[str]) -> Combo:
    """Keysym names of one combination (from parse_combo) -> (modifier set, lower-cased key)."""
    *mods, key = names
    return frozenset(_MODIFIER_NAMES.get(m, m.lower()) for m in mods), key.lower()


def _combos_of(text: str) -> list[tuple[Combo, str]]:
    combos = []
    for part in text.split():
        try:
            combos.append((normalise_combo(parse_combo(part)), part))
        except KeyNameError:  # the loop rejects it before it could run
            continue
    return combos


def expand_regex(pattern: str) -> str:
    """A rule regex with the {{cmd}}, {{args}} and {{end}} shorthands expanded."""
    for name, value in PLACEHOLDERS.items():
        pattern = pattern.replace(name, value)
    return pattern


def is_terminal_window(focused: str | None) -> bool | None:
    """True if `focused` (as in PolicyContext.focused_window) is a terminal, None when unknown.

    Only the class part (before the first ": ") counts; a title never makes a window a terminal.
    """
    if not focused or not focused.strip():
        return None
    classes = focused.split(": ", 1)[0]
    for token in re.split(r"[/\s]+", classes.strip().lower()):
        if token and (token in _TERMINALS or token.rsplit(".", 1)[-1] in _TERMINALS):
            return True
    return False


# ---------------------------------------------------------------------------- parsing


@dataclass
class _Layer:
    source: str
    default: str | None
    rules: list[dict[str, Any]]


class _Lines:
    """Line numbers of a YAML text's rules and their fields, for error messages."""

    def __init__(self, text: str | None, source: str) -> None:
        self.rules: dict[int, int] = {}
        self.fields: dict[tuple[int, str], int] = {}
        self.top: dict[str, int] = {}
        if text is None:
            return
        import yaml

        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            return  # safe_load reports it
        if not isinstance(node, yaml.MappingNode):
            return
        self._duplicates(node, source, None)
        for key, value in node.value:
            self.top[key.value] = key.start_mark.line + 1
            if key.value == "rules" and isinstance(value, yaml.SequenceNode):
                for n, item in enumerate(value.value):
                    self.rules[n] = item.start_mark.line + 1
                    if isinstance(item, yaml.MappingNode):
                        self._duplicates(item, source, n)
                        for k, _ in item.value:
                            self.fields[(n, str(k.value))] = k.start_mark.line + 1

    @staticmethod
    def _duplicates(node: Any, source: str, index: int | None) -> None:
        seen: set[str] = set()
        for key, _ in node.value:
            if key.value in seen:
                rule = None if index is None else f"#{index + 1}"
                raise PolicyError("appears twice", source, rule, str(key.value), key.start_mark.line + 1)
            seen.add(key.value)


def _read_yaml(text: str, source: str) -> tuple[Any, _Lines]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(f"invalid YAML: {problem}", source, line=mark.line + 1 if mark else None) from None
    return data, _Lines(text, source)


def _parse_layer(data: Any, source: str, lines: _Lines | None = None) -> _Layer:
    """Validate one layer (a file's content or task overrides) into raw rule dicts."""
    lines = lines or _Lines(None, source)
    if data is None:
        return _Layer(source, None, [])
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, Mapping):
        raise PolicyError(f"a policy must be a mapping with `rules:` (or a list of rules), not {_kind(data)}",
                          source)
    for key in data:
        if key not in TOP_FIELDS:
            raise PolicyError(f"unknown key {key!r}{_suggest(key, TOP_FIELDS)}; expected one of "
                              f"{', '.join(TOP_FIELDS)}", source, line=lines.top.get(str(key)))
    if data.get("version", 1) != 1:
        raise PolicyError(f"unsupported version {data['version']!r}; this deskpilot reads version 1", source,
                          field="version", line=lines.top.get("version"))
    default = data.get("default")
    if default is not None and default not in DECISIONS:
        raise PolicyError(f"must be one of {', '.join(DECISIONS)}, not {default!r}", source, field="default",
                          line=lines.top.get("default"))
    rules_data = data.get("rules") or []
    if not isinstance(rules_data, list):
        raise PolicyError(f"must be a list of rules, not {_kind(rules_data)}", source, field="rules",
                          line=lines.top.get("rules"))
    rules: list[dict[str, Any]] = []
    names: set[str] = set()
    for index, item in enumerate(rules_data):
        rule = _parse_rule(item, index, source, lines)
        if rule["name"] in names:
            raise PolicyError("a rule of this name appears earlier in the same policy", source, rule["name"],
                              "name", lines.fields.get((index, "name")))
        names.add(rule["name"])
        rules.append(rule)
    return _Layer(source, default, rules)


def _parse_rule(item: Any, index: int, source: str, lines: _Lines) -> dict[str, Any]:
    label = f"#{index + 1}"
    if not isinstance(item, Mapping):
        raise PolicyError(f"a rule must be a mapping, not {_kind(item)}", source, label,
                          line=lines.rules.get(index))
    name = item.get("name")
    if isinstance(name, str) and name.strip():
        label = name
    for key in item:
        if key not in RULE_FIELDS:
            raise PolicyError(f"unknown field {key!r}{_suggest(key, RULE_FIELDS)}; a rule has {', '.join(RULE_FIELDS)}",
                              source, label, str(key), lines.fields.get((index, str(key))))

    def fail(key: str, message: str) -> PolicyError:
        return PolicyError(message, source, label, key, lines.fields.get((index, key), lines.rules.get(index)))

    if not isinstance(name, str) or not name.strip() or "\n" in name:
        raise fail("name", "every rule needs a `name`: a one-line string")
    rule: dict[str, Any] = {"name": name.strip(), "source": source, "_line": lines.rules.get(index)}
    if "decision" in item:
        if item["decision"] not in DECISIONS:
            raise fail("decision", f"must be one of {', '.join(DECISIONS)}, not {item['decision']!r}")
        rule["decision"] = item["decision"]
    if "reason" in item:
        if not isinstance(item["reason"], str) or not item["reason"].strip():
            raise fail("reason", "must be a non-empty string (it is shown to the model and the user)")
        rule["reason"] = " ".join(item["reason"].split())
    if "enabled" in item:
        if not isinstance(item["enabled"], bool):
            raise fail("enabled", f"must be true or false, not {item['enabled']!r}")
        rule["enabled"] = item["enabled"]
    if "tool" in item:
        tools = []
        for value in _strings(item["tool"], fail, "tool"):
            value = TOOL_ALIASES.get(value, value)
            if value not in TOOLS:
                raise fail("tool", f"unknown tool {value!r}{_suggest(value, TOOLS)}; tools are {', '.join(TOOLS)}")
            tools.append(value)
        rule["tool"] = frozenset(tools)
    if "action" in item:
        known = (*ACTION_NAMES, *EDITOR_COMMANDS)
        actions = _strings(item["action"], fail, "action")
        for value in actions:
            if value not in known:
                raise fail("action", f"unknown action {value!r}{_suggest(value, known)}; computer actions are "
                                     f"{', '.join(ACTION_NAMES)}; editor commands are {', '.join(EDITOR_COMMANDS)}")
        rule["action"] = frozenset(actions)
    for key in ("command", "text"):
        if key in item:
            rule[key] = tuple(_compile(p, fail, key) for p in _strings(item[key], fail, key, nested=True))
    if "keys" in item:
        combos = []
        for value in _strings(item["keys"], fail, "keys"):
            if len(value.split()) != 1:
                raise fail("keys", f"{value!r}: list one key combination per entry")
            try:
                combos.append(normalise_combo(parse_combo(value)))
            except KeyNameError as exc:
                raise fail("keys", str(exc)) from None
        rule["keys"] = frozenset(combos)
    for key in ("path_outside_workdir", "into_terminal"):
        if key in item:
            if not isinstance(item[key], bool):
                raise fail(key, f"must be true or false, not {item[key]!r}")
            rule[key] = item[key]
    _check_consistent(rule, fail)
    return rule


def _strings(value: Any, fail: Callable[[str, str], PolicyError], key: str, nested: bool = False) -> list[str]:
    """A string or a list of strings (nested lists flattened when `nested`, for YAML aliases)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        out: list[str] = []
        for entry in value:
            if isinstance(entry, str):
                out.append(entry)
            elif nested and isinstance(entry, list):
                out.extend(_strings(entry, fail, key, nested))
            else:
                raise fail(key, f"entries must be strings, not {_kind(entry)}")
        return out
    raise fail(key, f"must be a string or a non-empty list of strings, not {_kind(value)}")


def _compile(pattern: str, fail: Callable[[str, str], PolicyError], key: str) -> re.Pattern[str]:
    try:
        return re.compile(expand_regex(pattern))
    except re.error as exc:
        raise fail(key, f"bad regex {pattern!r}: {exc}") from None


def _check_consistent(rule: dict[str, Any], fail: Callable[[str, str], PolicyError]) -> None:
    """Reject matchers that could never hold together (e.g. `command` with `keys`)."""
    implied: dict[str, set[str]] = {}
    if "command" in rule:
        implied["command"] = {BASH}
    for key in ("text", "keys", "into_terminal"):
        if key in rule:
            implied[key] = {COMPUTER}
    if "path_outside_workdir" in rule:
        implied["path_outside_workdir"] = {EDITOR}
    if "action" in rule:
        tools = set()
        if rule["action"] & set(ACTION_NAMES):
            tools.add(COMPUTER)
        if rule["action"] & set(EDITOR_COMMANDS):
            tools.add(EDITOR)
        implied["action"] = tools
    if "tool" in rule:
        implied["tool"] = set(rule["tool"])
    possible = set(TOOLS)
    for n, (key, tools) in enumerate(implied.items()):
        if not possible & tools:
            earlier = ", ".join(f"`{k}`" for k in list(implied)[:n])
            raise fail(key, f"applies to {' / '.join(sorted(tools))} calls, which {earlier} rule(s) out: "
                            "the rule could never match")
        possible &= tools
    if "action" in rule:
        if "text" in rule and "type" not in rule["action"]:
            raise fail("text", "`text` matches `type` actions, but `action` does not include type: "
                               "the rule could never match")
        if "keys" in rule and not rule["action"] & KEY_ACTIONS:
            raise fail("keys", "`keys` matches `key` and `hold_key` actions, but `action` includes neither: "
                               "the rule could never match")


def _suggest(value: object, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _merge(layers: list[_Layer]) -> tuple[str, list[Rule]]:
    """Apply layers in order: new rules go first, same-named rules are edited in place."""
    default = "allow"
    merged: list[dict[str, Any]] = []
    for layer in layers:
        if layer.default is not None:
            default = layer.default
        fresh: list[dict[str, Any]] = []
        for raw in layer.rules:
            at = next((i for i, old in enumerate(merged) if old["name"] == raw["name"]), None)
            if raw.get("enabled") is False:
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
                    raise PolicyError(f"a new rule needs `{key}` (no earlier rule is called {raw['name']!r})",
                                      layer.source, raw["name"], key, raw.get("_line"))
            fresh.append(raw)
        merged = fresh + merged
    rules = [Rule(**{k: v for k, v in raw.items() if k not in ("enabled", "_line")}) for raw in merged]
    return default, rules


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
        data, lines = _read_yaml(files("agent.safety").joinpath(DEFAULT_POLICY).read_text("utf-8"), default_source)
        layers = [_parse_layer(data, default_source, lines)]
        user = Path(path).expanduser() if path is not None else user_policy_path()
        if path is not None or user.is_file():
            try:
                text = user.read_text(encoding="utf-8")
            except OSError as exc:
                raise PolicyError(f"cannot read the policy file: {exc.strerror or exc}", str(user)) from None
            data, lines = _read_yaml(text, str(user))
            layers.append(_parse_layer(data, str(user), lines))
        if overrides is not None:
            layers.append(_parse_layer(overrides, overrides_source))
        default, rules = _merge(layers)
        return cls(rules, default, [layer.source for layer in layers])

    def decide(self, call: ToolCall, action: Any, context: PolicyContext) -> Verdict:
        """The first matching rule's verdict for `call` (with its parsed `action`, or None), else the default."""
        facts = _Facts.of(call, action, context)
        for rule in self.rules:
            found = rule.match(facts)
            if found is not None:
                return Verdict(rule.decision, rule.name, rule.reason, found or None)
        return Verdict(self.default, None, NO_RULE_REASON)

    def rule(self, name: str) -> Rule:
        """The rule called `name` (KeyError if none)."""
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)

    def __repr__(self) -> str:
        return f"Policy({len(self.rules)} rules, default={self.default!r}, sources={list(self.sources)!r})"


# ---------------------------------------------------------------------------- the focused window


def focused_window(display: str) -> str | None:
    """The X keyboard focus's window as "instance/Class: title" (title only if it has one); None if unknown.

    The platform backend finds it (`actions.platform.focused_window`); never raises.
    """
    from actions.platform import focused_window as platform_focused_window

    window = platform_focused_window(display)
    if window is None:
        return None
    name = f"{window.instance}/{window.klass}"
    return f"{name}: {window.title}" if window.title else name


def context_provider(workdir: Path, display: str | None) -> Callable[[], PolicyContext]:
    """A provider for make_confirm: the working directory and, per call, the focused window of `display`."""
    return lambda: PolicyContext(Path(workdir), focused_window(display) if display else None)


# ---------------------------------------------------------------------------- confirmation

Asker = Callable[[Verdict, "ToolCall", Any], str]


def make_confirm(policy: Policy, mode: str, context_provider: Callable[[], PolicyContext],
                 asker: Asker | None = None) -> Callable[[ToolCall, Any], None]:
    """The loop's confirm hook for `--confirm MODE`; it raises Denied to refuse a call.

    - "allow": everything runs except what a rule denies;
    - "deny": every "ask" is refused (nobody can answer);
    - "ask": `asker(verdict, call, action)` answers "allow", "deny" or "always" (allow this rule for
      the rest of the run); with no asker every "ask" is refused. An asker that fails (EOF, a closed
      stream) or answers anything else refuses.
    """
    if mode not in MODES:
        raise ValueError(f"confirm mode must be one of {', '.join(MODES)}, not {mode!r}")

    always: set[str] = set()
    lock = threading.Lock()

    def confirm(call: ToolCall, action: Any) -> None:
        verdict = policy.decide(call, action, context_provider())
        if verdict.decision == "allow":
            return
        rule = f"policy rule {verdict.rule!r}" if verdict.rule else "the policy's default"
        if verdict.decision == "deny":
            raise Denied(f"refused by {rule}: {verdict.reason}. {_DONT_WORK_AROUND}")
        if mode == "allow" or verdict.rule in always:
            return
        if mode == "deny" or asker is None:
            raise Denied(f"refused by {rule}: {verdict.reason} (it needs a person's confirmation and none is "
                         f"available). {_DONT_WORK_AROUND}")
        with lock:  # one question at a time
            if verdict.rule in always:
                return
            try:
                answer = asker(verdict, call, action)
            except (EOFError, OSError):
                answer = "deny"
            if answer == "always":
                if verdict.rule:
                    always.add(verdict.rule)
                return
        if answer == "allow":
            return
        raise Denied(f"refused by the user ({rule}: {verdict.reason}). {_DONT_WORK_AROUND}")

    return confirm


_DONT_WORK_AROUND = "Do not try to get the same effect another way; if the task needs it, say so."


def describe_call(call: ToolCall, action: Any = None, limit: int = 500) -> str:
    """A one-line, control-character-free description of a call for a prompt or dialog."""
    data = call.input if isinstance(call.input, dict) else {}
    if call.name == BASH:
        text = f"bash: {data.get('command', '') if not data.get('restart') else '(restart)'}"
    elif call.name == EDITOR:
        text = f"editor: {data.get('command')} {data.get('path')}"
    else:
        name = getattr(action, "action", None) or data.get("action")
        value = getattr(action, "text", None) if action is not None else data.get("text")
        text = f"computer: {name}" + (f" {value!r}" if value else "")
    text = _CONTROL.sub(lambda m: repr(m.group(0))[1:-1] if m.group(0) != "\n" else "\u23ce", str(text))
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ANSWERS = {"y": "allow", "yes": "allow", "n": "deny", "no": "deny", "": "deny", "a": "always", "always": "always"}
_prompt_lock = threading.Lock()


def terminal_asker(stream_in: TextIO | None = None, stream_out: TextIO | None = None) -> Asker:
    """An asker that prompts "Allow? [y]es/[n]o/[a]lways" (default no); streams default to stdin/stderr.

    The call is shown with control characters escaped, so a command cannot redraw the prompt.
    End of input counts as "no".
    """

    def ask(verdict: Verdict, call: ToolCall, action: Any) -> str:
        src, out = stream_in or sys.stdin, stream_out or sys.stderr
        with _prompt_lock:
            out.write(f"\ndeskpilot: policy rule {verdict.rule!r} asks for confirmation: {verdict.reason}\n"
                      f"  {describe_call(call, action)}\n")
            for _ in range(3):
                out.write("Allow? [y]es/[n]o/[a]lways (for this run): ")
                out.flush()
                line = src.readline()
                if not line:
                    out.write("\n")
                    return "deny"
                answer = _ANSWERS.get(line.strip().lower())
                if answer is not None:
                    return answer
                out.write("please answer y, n or a\n")
            return "deny"

    return ask


def default_confirm_mode() -> str:
    """`--confirm`'s default: "ask" when stdin is a terminal, else "deny"."""
    try:
        return "ask" if sys.stdin is not None and sys.stdin.isatty() else "deny"
    except (ValueError, OSError):  # a closed or detached stdin
        return "deny"


__all__ = [
    "DECISIONS", "MODES", "PLACEHOLDERS", "TERMINAL_CLASSES", "Policy", "PolicyContext", "PolicyError", "Rule",
    "Verdict", "context_provider", "default_confirm_mode", "describe_call", "expand_regex", "focused_window",
    "is_terminal_window", "make_confirm", "terminal_asker", "user_policy_path",
]
