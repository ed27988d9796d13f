"""OSWorld task JSON as deskpilot task files (`deskpilot import osworld`, and `deskpilot eval` on .json files).

What converts (what runs on a plain Linux desktop, with no VM controller, browser debugger or network):

| OSWorld | deskpilot |
| --- | --- |
| `id` | `name` (else the file's name) |
| `instruction` | `goal` |
| config `launch` {command, shell} | setup `launch` |
| config `execute` / `command` {command, shell, stdout, stderr} | setup `run` (a failing command fails the attempt) |
| config `open` {path} | setup `launch: xdg-open PATH` |
| config `sleep` {seconds} | setup `run: [sleep, N]` |
| config `download` {files: [{url, path}]}, url a local file or `file://` | setup `run`: copy it to `path` |
| evaluator `postconfig` (`execute`, `command`, `sleep`) | `command` checks placed first (they run before the others) |
| getter `vm_command_line` {command, shell} | `output: {command: ...}` (its standard output) |
| getter `vm_file` {path} | `output: {file: ...}` |
| getter `rule` {rules} | what the output is compared with |
| getter `cloud_file` {path}, a local file | `equals_file` of compare_text_file |
| metric `exact_match` (rules.expected) | `output: {..., equals: expected}` |
| metric `check_include_exclude` (rules.include, rules.exclude) | `output: {..., contains: [...], excludes: [...]}` |
| metric `is_in_list` (rules.expected) | `output: {..., contains: [expected]}` (OSWorld: `expected in result`) |
| metric `compare_text_file` (options ignore_blanks, ignore_case) | `output: {file: A, equals_file: B, ...}` |
| several metrics, `conj: and` (the default) / `or` | one check each / one `any:` check |
| `func: infeasible` | `outcome: impossible` |

Paths under `/home/user` become the running user's home (see `osworld_shell`). The display is
OSWorld's 1920x1080. `snapshot` may be absent, `init_state` or `os` (a plain desktop: every
attempt starts from a fresh one); other snapshots, `proxy: true`, `fixed_ip: true` and every other
config type or getter or metric (Google Drive, Chrome DevTools tabs, logins, window activation,
app-specific getters) are refused with `OSWorldError` (exit 2) naming the field and its value.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from agent.errors import BadInput
from agent.eval.osworld_shell import map_argv, map_path, map_shell_text, shell_word

METADATA = frozenset({"id", "snapshot", "instruction", "source", "config", "trajectory", "related_apps", "evaluator",
                      "proxy", "fixed_ip", "possibility_of_env_change"})
PLAIN_SNAPSHOTS = frozenset({"init_state", "os"})
SCREEN = {"width": 1920, "height": 1080}
STRING_METRICS = frozenset({"exact_match", "check_include_exclude", "is_in_list"})


class OSWorldError(BadInput):
    """An OSWorld task that cannot be converted; the message names the file, the field and its value."""


class _Converter:
    """One OSWorld task being converted; `fail` names the field."""

    def __init__(self, data: Any, source: Path) -> None:
        self.data, self.source = data, source

    def fail(self, field: str, value: Any, why: str) -> OSWorldError:
        shown = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        return OSWorldError(f"{self.source}: {field}: {shown} is not supported: {why}")

    def need(self, mapping: Any, key: str, field: str, kind: type | tuple[type, ...]) -> Any:
        if not isinstance(mapping, dict) or key not in mapping:
            raise OSWorldError(f"{self.source}: {field}: missing")
        value = mapping[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise OSWorldError(f"{self.source}: {field}: expected {getattr(kind, '__name__', kind)}, "
                               f"got {type(value).__name__}")
        return value

    # --- the task ------------------------------------------------------------------------------
    def task(self) -> dict[str, Any]:
        data = self.data
        if not isinstance(data, dict):
            raise OSWorldError(f"{self.source}: an OSWorld task is a JSON object, got {type(data).__name__}")
        for key in data:
            if key not in METADATA:
                raise self.fail(key, data[key], "not a key of OSWorld's task format that deskpilot knows")
        goal = self.need(data, "instruction", "instruction", str)
        if not goal.strip():
            raise OSWorldError(f"{self.source}: instruction: empty")
        snapshot = data.get("snapshot")
        if snapshot is not None and snapshot not in PLAIN_SNAPSHOTS:
            raise self.fail("snapshot", snapshot, "a VM snapshot with its own installed state; every attempt starts "
                                                  f"from a fresh plain desktop (use one of {sorted(PLAIN_SNAPSHOTS)} "
                                                  "or remove the key to accept that)")
        for flag in ("proxy", "fixed_ip"):
            if data.get(flag):
                raise self.fail(flag, data[flag], "needs the OSWorld VM's network set-up")
        name = data.get("id") if isinstance(data.get("id"), str) and data["id"].strip() else self.source.stem
        config = data.get("config") or []
        if not isinstance(config, list):
            raise OSWorldError(f"{self.source}: config: expected a list, got {type(config).__name__}")
        setup = [item for i, entry in enumerate(config) for item in self.config(entry, f"config[{i}]")]
        evaluator = self.need(data, "evaluator", "evaluator", dict)
        task: dict[str, Any] = {"name": name, "goal": goal, "display": dict(SCREEN)}
        if setup:
            task["setup"] = setup
        task["checks"] = self.checks(evaluator)
        return task

    # --- config: setup -------------------------------------------------------------------------
    def config(self, entry: Any, field: str, post: bool = False) -> list[dict[str, Any]]:
        kind = self.need(entry, "type", f"{field}.type", str)
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            raise OSWorldError(f"{self.source}: {field}.parameters: expected an object")
        allowed = ("execute", "command", "sleep") if post else ("execute", "command", "launch", "open", "sleep",
                                                                  "download")
        if kind not in allowed:
            where = "evaluator postconfig" if post else "config"
            raise self.fail(f"{field}.type", kind, f"a {where} entry deskpilot cannot run on a plain desktop "
                                                   f"(supported: {', '.join(allowed)})")
        if kind in ("execute", "command"):
            for key in ("until",):
                if key in params:
                    raise self.fail(f"{field}.parameters.{key}", params[key], "repeating a command until it "
                                                                            "succeeds is not supported")
            return [{"run": self.command(params, f"{field}.parameters")}]
        if kind == "launch":
            return [{"launch": self.command(params, f"{field}.parameters")}]
        if kind == "open":
            path = self.need(params, "path", f"{field}.parameters.path", str)
            return [{"launch": f"xdg-open {shell_word(path)}"}]
        if kind == "sleep":
            seconds = self.need(params, "seconds", f"{field}.parameters.seconds", (int, float))
            return [{"run": ["sleep", f"{seconds:g}"]}]
        files = self.need(params, "files", f"{field}.parameters.files", list)
        return [self.download(f, f"{field}.parameters.files[{i}]") for i, f in enumerate(files)]

    def command(self, params: dict, field: str) -> str | list[str]:
        command = params.get("command")
        shell = str(params.get("shell", False)).lower() in ("true", "1")
        if isinstance(command, str) and command.strip():
            if shell:
                return map_shell_text(command)
            try:
                return map_argv(shlex.split(command))
            except ValueError as exc:
                raise self.fail(f"{field}.command", command, f"cannot be split into arguments ({exc})") from None
        if isinstance(command, list) and command and all(isinstance(a, str | int | float) for a in command):
            argv = [str(a) for a in command]
            if shell:
                if len(argv) != 1:
                    raise self.fail(f"{field}.command", command, "a list with shell: true passes its extra items "
                                                                 "to the shell as $0, $1...; give one string")
                return map_shell_text(argv[0])
            return map_argv(argv)
        raise self.fail(f"{field}.command", command, "a command is a non-empty string or list of strings")

    def download(self, entry: Any, field: str) -> dict[str, Any]:
        url = self.need(entry, "url", f"{field}.url", str)
        dest = self.need(entry, "path", f"{field}.path", str)
        parsed = urlparse(url)
        if parsed.scheme == "file":
            local = Path(unquote(parsed.path))
        elif parsed.scheme in ("", None) or re.match(r"^[A-Za-z]:\\", url):
            local = Path(url).expanduser()
        else:
            raise self.fail(f"{field}.url", url, "only local files (a path or a file:// URL) are copied; "
                                                 "deskpilot downloads nothing")
        if not local.is_absolute():
            local = self.source.parent / local
        if not local.is_file():
            raise self.fail(f"{field}.url", url, f"the local file {local} does not exist")
        target = shell_word(dest)
        folder = shell_word(str(Path(dest).parent)) if Path(dest).parent != Path(dest) else "."
        return {"run": f"mkdir -p {folder} && cp {shlex.quote(str(local.resolve()))} {target}"}

    # --- evaluator: checks ---------------------------------------------------------------------
    def checks(self, evaluator: dict) -> list[dict[str, Any]]:
        for key in evaluator:
            if key not in ("func", "result", "expected", "options", "conj", "postconfig"):
                raise self.fail(f"evaluator.{key}", evaluator[key], "not a key of OSWorld's evaluator")
        post = evaluator.get("postconfig") or []
        if not isinstance(post, list):
            raise OSWorldError(f"{self.source}: evaluator.postconfig: expected a list")
        checks = [{"command": item["run"]} for i, entry in enumerate(post)
                  for item in self.config(entry, f"evaluator.postconfig[{i}]", post=True)]
        func = evaluator.get("func")
        if func == "infeasible":
            return [*checks, {"outcome": "impossible"}]
        funcs = func if isinstance(func, list) else [func]
        if not funcs or not all(isinstance(f, str) for f in funcs):
            raise self.fail("evaluator.func", func, "expected a metric name or a list of them")
        many = isinstance(func, list)
        parts = [self.metric(i if many else None, f, evaluator) for i, f in enumerate(funcs)]
        conj = evaluator.get("conj", "and")
        if conj not in ("and", "or"):
            raise self.fail("evaluator.conj", conj, "expected 'and' or 'or'")
        if conj == "or" and len(parts) > 1:
            return [*checks, {"any": parts}]
        return [*checks, *parts]

    def pick(self, evaluator: dict, key: str, i: int | None) -> tuple[Any, str]:
        value = evaluator.get(key)
        if i is None:
            return value, f"evaluator.{key}"
        if value is None:
            return None, f"evaluator.{key}"
        if not isinstance(value, list) or len(value) <= i:
            raise OSWorldError(f"{self.source}: evaluator.{key}: expected a list with one entry per metric "
                               f"(as evaluator.func), got {json.dumps(value)[:80]}")
        return value[i], f"evaluator.{key}[{i}]"

    def metric(self, i: int | None, func: str, evaluator: dict) -> dict[str, Any]:
        field = "evaluator.func" if i is None else f"evaluator.func[{i}]"
        result, result_field = self.pick(evaluator, "result", i)
        expected, expected_field = self.pick(evaluator, "expected", i)
        options, options_field = self.pick(evaluator, "options", i)
        options = options or {}
        if func in STRING_METRICS:
            if options:
                raise self.fail(options_field, options, f"{func} takes no options")
            source = self.source_of(result, result_field, allow=("vm_command_line",))
            rules = self.rules(expected, expected_field)
            if func == "check_include_exclude":
                return {"output": {**source, **self.include_exclude(rules, expected_field)}}
            want = rules.get("expected")
            if not isinstance(want, str):
                raise self.fail(f"{expected_field}.rules.expected", want, f"{func} compares text: expected a string")
            return {"output": {**source, "equals": want} if func == "exact_match" else {**source, "contains": [want]}}
        if func == "compare_text_file":
            unknown = sorted(set(options) - {"ignore_blanks", "ignore_case"})
            if unknown:
                raise self.fail(f"{options_field}.{unknown[0]}", options[unknown[0]], "compare_text_file takes "
                                                                                     "ignore_blanks, ignore_case")
            actual = self.source_of(result, result_field, allow=("vm_file",))
            gold = self.source_of(expected, expected_field, allow=("vm_file", "cloud_file"))
            return {"output": {**actual, "equals_file": gold["file"],
                               **{k: bool(options[k]) for k in ("ignore_blanks", "ignore_case") if k in options}}}
        raise self.fail(field, func, "a metric deskpilot does not convert (supported: exact_match, "
                                     "check_include_exclude, is_in_list, compare_text_file, infeasible)")

    def source_of(self, getter: Any, field: str, allow: Sequence[str]) -> dict[str, Any]:
        kind = self.need(getter, "type", f"{field}.type", str)
        if kind not in allow:
            raise self.fail(f"{field}.type", kind, f"a getter deskpilot does not convert here (supported: "
                                                   f"{', '.join(allow)})")
        if kind == "vm_command_line":
            return {"command": self.command(getter, field)}
        if getter.get("multi"):
            raise self.fail(f"{field}.multi", getter["multi"], "several files in one getter are not supported")
        path = self.need(getter, "path", f"{field}.path", str)
        if kind == "cloud_file":
            parsed = urlparse(path)
            if parsed.scheme not in ("", "file"):
                raise self.fail(f"{field}.path", path, "only a local file is read; deskpilot downloads nothing")
            local = Path(unquote(parsed.path)).expanduser()
            local = local if local.is_absolute() else self.source.parent / local
            return {"file": str(local.resolve())}
        return {"file": map_path(path)}

    def rules(self, expected: Any, field: str) -> dict[str, Any]:
        kind = self.need(expected, "type", f"{field}.type", str)
        if kind != "rule":
            raise self.fail(f"{field}.type", kind, "a getter deskpilot does not convert here (supported: rule)")
        return self.need(expected, "rules", f"{field}.rules", dict)

    def include_exclude(self, rules: dict, field: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, name in (("include", "contains"), ("exclude", "excludes")):
            values = rules.get(key, [])
            if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
                raise self.fail(f"{field}.rules.{key}", values, "expected a list of non-empty strings")
            if values:
                out[name] = values
        if not out:
            raise OSWorldError(f"{self.source}: {field}.rules: include and exclude are both empty")
        return out


def convert(data: Any, source: str | Path = "<json>") -> dict[str, Any]:
    """An OSWorld task (parsed JSON) as a deskpilot task file's data; OSWorldError naming what cannot be converted."""
    return _Converter(data, Path(source)).task()


def read_json(path: str | Path) -> Any:
    """An OSWorld task file's JSON; OSWorldError when it cannot be read or parsed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OSWorldError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OSWorldError(f"{path}: cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise OSWorldError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None


def to_yaml(task: dict[str, Any], source: str | Path) -> str:
    """The task file's text, with a header saying where it came from: block style, commands' arguments and
    the display on one line, text with a line break double-quoted (so a trailing newline shows as `\\n`)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> Any:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if "\n" in value else None)

    def flow(dumper: yaml.SafeDumper, value: Any) -> Any:
        scalars = all(isinstance(v, str | int | float) for v in (value.values() if isinstance(value, dict) else value))
        represent = dumper.represent_list if isinstance(value, list) else dumper.represent_dict
        node = represent(value)
        node.flow_style = scalars and isinstance(value, list) or value is task.get("display")
        return node

    Dumper.add_representer(str, text)
    Dumper.add_representer(list, flow)
    Dumper.add_representer(dict, flow)
    body = yaml.dump(task, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=10_000)
    return f"# Imported from the OSWorld task {source} by `deskpilot import osworld`.\n{body}"


def load_osworld(path: str | Path) -> Any:
    """An OSWorld task file as a loaded deskpilot Task (its folder: the JSON's folder)."""
    from agent.tasks.loader import TaskFileError, parse_task

    path = Path(path)
    text = to_yaml(convert(read_json(path), path), path)
    try:
        return parse_task(text, path.with_suffix(".yaml"))
    except TaskFileError as exc:  # a value the task format refuses (an empty command, ...)
        raise OSWorldError(f"{path}: converted, but the task is not valid:\n{exc}") from None


def import_files(paths: Sequence[str | Path], out: str | Path) -> list[Path]:
    """Convert every OSWorld task file into `out`/<name>.yaml; all are checked before any is written, and an
    existing file is never replaced."""
    from agent.tasks.loader import TaskFileError, parse_task

    out = Path(out)
    texts: dict[Path, str] = {}
    for path in map(Path, paths):
        task = convert(read_json(path), path)
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(task["name"])).strip("-.") or path.stem
        target = out / f"{name}.yaml"
        if target in texts:
            raise OSWorldError(f"{path}: its name {task['name']!r} is the name of another task given; "
                               "tasks are written as NAME.yaml")
        if target.exists():
            raise OSWorldError(f"{path}: {target} exists already; remove it or choose another --out "
                               "(nothing was written)")
        text = to_yaml(task, path)
        try:
            parse_task(text, target)
        except TaskFileError as exc:
            raise OSWorldError(f"{path}: converted, but the task is not valid:\n{exc}") from None
        texts[target] = text
    out.mkdir(parents=True, exist_ok=True)
    for target, text in texts.items():
        target.write_text(text, encoding="utf-8")
    return list(texts)
