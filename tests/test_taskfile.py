"""Task files: the DESIGN.md example loads, every kind parses, and every invalid file names file, line and field."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.tasks.fields import SecretText
from agent.tasks.items import (
    CHECK_KINDS,
    SETUP_KINDS,
    STEP_KINDS,
    ClickStep,
    Drag,
    FileCheck,
    OutputCheck,
    Scroll,
    TaskItem,
)
from agent.tasks.loader import TaskFileError, load_task, parse_task, task_json_schema
from agent.tasks.schema import Task
from agent.tasks.targets import ImageQuery, ImageTarget, PointTarget, TextQuery, TextTarget

TASKS = Path(__file__).parent / "tasks"
VALID, INVALID = TASKS / "valid", TASKS / "invalid"
OK_PNG = VALID / "images" / "ok.png"
ENV = {"FORM_PASSWORD": "hunter2-not-logged", "API_TOKEN": "tok", "DESKPILOT_TEST_SECRET": "x"}
INVALID_FILES = sorted(INVALID.glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (?P<line>\d+) (?P<field>\S+)(?: \| (?P<text>.+))?$")


def load(path: Path | str) -> Task:
    return load_task(path, environ=ENV)


# ----------------------------------------------------------------------------- valid files


def test_template_image_is_a_png() -> None:
    assert OK_PNG.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_design_example_loads() -> None:
    task = load(VALID / "full.yaml")
    assert task.name == "fill-form"
    assert task.goal == 'Type "Ada" in the Name field and press Submit.'
    assert task.path == (VALID / "full.yaml").resolve()
    assert task.folder == VALID.resolve()
    assert (task.display.width, task.display.height) == (1280, 800)
    assert str(task.display.size) == "1280x800"

    assert [s.kind for s in task.setup] == ["launch", "run", "wait_for"]
    assert [s.value for s in task.setup[:2]] == ["python3 apps/form.py", "rm -f /tmp/out.txt"]
    assert task.setup[2].value == TextQuery(text="Name:", timeout=10)
    assert [s.line for s in task.setup] == [5, 6, 7]

    steps = task.steps
    assert [s.kind for s in steps] == ["click", "type", "click", "click", "click", "key", "type", "scroll", "wait",
                                       "wait_for", "expect", "agent"]
    assert [s.line for s in steps] == list(range(9, 21))
    assert steps[0].value == TextTarget(text="Name:", offset=(0, 30))
    assert steps[1].value == "Ada"
    assert steps[2].value == TextTarget(text="Submit")  # the shorthand, expanded
    assert isinstance(steps[3].value, ImageTarget)
    assert steps[3].value.image == OK_PNG.resolve()  # relative to the task file, not the cwd
    assert steps[3].value.image.is_absolute()
    assert steps[4].value == PointTarget(x=640, y=400)
    assert steps[5].value == "ctrl+s"
    assert isinstance(steps[6].value, SecretText) and steps[6].value.secret == "FORM_PASSWORD"
    assert steps[7].value == Scroll(direction="down", amount=3)
    assert steps[8].value == 0.5
    assert steps[9].value == TextQuery(text="Saved", timeout=10)
    assert steps[10].value == TextQuery(text="Hello Ada")
    assert steps[11].value == "Close any dialog that is still open"

    assert [c.kind for c in task.checks] == ["screen", "file", "command"]
    assert [c.line for c in task.checks] == [22, 23, 24]
    assert task.checks[0].value == TextQuery(text="Hello Ada")
    assert task.checks[1].value == FileCheck(path=Path("/tmp/out.txt"), contains="Ada")
    assert task.checks[2].value == "grep -q Ada /tmp/out.txt"

    assert task.secret_names == ["FORM_PASSWORD"]
    limits = task.limits.apply()
    assert (limits.max_steps, limits.max_seconds, limits.max_cost_usd) == (30, 300.0, 2.0)
    assert limits.max_tokens is None


def test_defaults_of_targets_and_queries() -> None:
    target = load(VALID / "full.yaml").steps[2].value
    assert (target.index, target.exact, target.region, target.offset, target.timeout) == (None, False, None, (0, 0), 10)
    image = load(VALID / "full.yaml").steps[3].value
    assert (image.threshold, image.timeout, image.index) == (0.9, 10, None)


def test_every_kind_in_its_long_form() -> None:
    task = load(VALID / "every_kind.yaml")
    both = [*load(VALID / "full.yaml").steps, *task.steps]
    assert {s.kind for s in both} == set(STEP_KINDS)
    assert {s.kind for s in task.setup} == set(SETUP_KINDS)
    assert {c.kind for c in task.checks} == set(CHECK_KINDS)
    assert task.name == "every_kind"  # from the file name

    launch, run, wait_for = task.setup
    assert launch.value == ["python3", "apps/form.py", "--delay", "1"]  # numbers become arguments
    assert run.value == ["sh", "-c", "rm -f out.txt"]
    assert wait_for.value == TextQuery(text="Name")

    s = {i: step for i, step in enumerate(task.steps)}
    assert s[0].kind == "double_click"
    assert s[0].value == TextTarget(text="Name", index=1, exact=True, region=(0, 0, 100, 50), offset=(-5, 3), timeout=0)
    assert s[1].value == ImageTarget(image=OK_PNG.resolve(), index=-1, threshold=0.75, timeout=2.5)
    assert s[2].kind == "right_click" and s[2].value == PointTarget(x=0, y=0)
    assert s[3].kind == "move" and s[3].value == TextTarget(text="Menu")
    assert s[4].value == Drag(from_=PointTarget(x=10, y=20), to=TextTarget(text="Trash"))
    assert s[5].value.from_.image == OK_PNG.resolve()  # ./images/ok.png
    assert s[5].value.to == TextTarget(text="Bin", offset=(0, 10))
    assert s[5].line == 17
    assert s[6].value == Scroll(direction="left", amount=3, target=PointTarget(x=100, y=100))
    assert s[7].value == "ctrl+a Delete"
    assert s[8].value == "1234"
    assert s[9].value == 2.0
    assert s[10].value == ImageQuery(image=OK_PNG.resolve(), region=(0, 0, 640, 400), timeout=2)
    assert s[11].kind == "expect" and s[11].value == TextQuery(text="Done")
    assert s[12].value == "Close any dialog\nthat is still open\n"

    screen, text, file, absent, command, output, outcome, either = task.checks
    # the anchor's keys merged in; explicit keys win
    assert screen.value == ImageQuery(image=OK_PNG.resolve(), region=(0, 0, 640, 400), threshold=0.8, timeout=0)
    assert text.value == TextQuery(text="Done")
    assert file.value.path == VALID.resolve() / "out.txt"  # relative to the task file
    assert absent.value.exists is False and absent.value.path == Path("~/never-there.txt").expanduser()
    assert command.value == ["grep", "-q", "Ada", "out.txt"]
    assert output.value == OutputCheck(command="echo Hi", equals="hi\n", ignore_case=True)
    assert outcome.value == "impossible" and outcome.line == 36
    assert [c.kind for c in either.value] == ["file", "output"]
    assert either.value[1].value.file == VALID.resolve() / "out.txt"
    assert either.value[1].value.contains == ["Ada", "Lovelace"] and either.value[1].value.excludes == ["Bob"]

    assert task.secret_names == ["FORM_PASSWORD", "API_TOKEN"]
    limits = task.limits.apply()
    assert limits.max_steps == 5 and limits.max_tokens == 10000
    assert limits.max_cost_usd is None  # null: unlimited
    assert limits.max_seconds == 600.0  # absent: the default


def test_dispatch_shape() -> None:
    task = load(VALID / "every_kind.yaml")
    for item in [*task.setup, *task.steps, *task.checks]:
        assert isinstance(item, TaskItem)
        assert item.value == getattr(item, item.kind)
        assert isinstance(item.line, int) and item.line > 1
        assert item.describe().startswith(item.kind)
    for step in task.steps:
        assert type(step) is STEP_KINDS[step.kind]
    assert task.steps[4].describe() == "drag (10, 20) to 'Trash'"
    assert task.steps[12].describe() == "agent 'Close any dialog that is still open'"
    assert task.checks[3].describe().endswith("absent")


def test_secret_values_never_appear() -> None:
    task = load(VALID / "full.yaml")
    secret = ENV["FORM_PASSWORD"]
    assert task.steps[6].describe() == "type secret FORM_PASSWORD"
    assert secret not in repr(task) and secret not in task.model_dump_json()


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORM_PASSWORD", "x")
    assert load_task(VALID / "full.yaml").steps[6].value.secret == "FORM_PASSWORD"
    monkeypatch.delenv("FORM_PASSWORD")
    with pytest.raises(TaskFileError, match=r"full\.yaml:15: steps\[6\]\.type\.secret: .*FORM_PASSWORD is not set"):
        load_task(VALID / "full.yaml")


def test_goal_only_task() -> None:
    task = parse_task("goal: Open the settings\n")
    assert task.goal == "Open the settings" and task.steps == [] and task.path is None
    assert task.folder == Path.cwd()


def test_parse_task_resolves_against_the_given_path(tmp_path: Path) -> None:
    (tmp_path / "shots").mkdir()
    (tmp_path / "shots" / "b.png").write_bytes(OK_PNG.read_bytes())
    task = parse_task("steps:\n  - click: {image: shots/b.png}\n", tmp_path / "t.yaml", environ={})
    assert task.steps[0].value.image == (tmp_path / "shots" / "b.png").resolve()
    assert task.name == "t" and task.folder == tmp_path.resolve()


def test_models_work_from_python() -> None:
    step = ClickStep(click="Submit")
    assert step.kind == "click" and step.value == TextTarget(text="Submit") and step.line is None
    task = Task(goal="x", steps=[step, {"drag": {"from": "A", "to": {"x": 1, "y": 2}}}])
    assert task.steps[0] is step and task.steps[1].value.to == PointTarget(x=1, y=2)
    assert Drag(from_="A", to="B").from_ == TextTarget(text="A")


def test_import_does_no_work() -> None:
    code = "import sys, agent.tasks.loader; print('agent.loop' in sys.modules, 'Xlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent)
    assert out.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------- invalid files


def test_enough_invalid_files() -> None:
    assert len(INVALID_FILES) >= 30


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda p: p.stem)
def test_invalid_file_names_file_line_and_field(path: Path) -> None:
    header = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    expect = EXPECT.match(header)
    assert expect, f"{path.name} must start with '# expect: LINE FIELD [| TEXT]'"
    with pytest.raises(TaskFileError) as caught:
        load(path)
    error = caught.value
    assert isinstance(error, ValueError)
    message = str(error)
    assert f"{path}:{expect['line']}: {expect['field']}: " in message, message
    assert (error.line, error.field) == (int(expect["line"]), expect["field"]), message
    assert error.path == str(path)
    if expect["text"]:
        assert expect["text"] in message, message


def test_all_problems_are_reported_in_line_order(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("goal: x\nsteps:\n  - wait: -1\n  - click: {x: 1}\nlimits: {max_steps: 0}\nnaem: y\n")
    with pytest.raises(TaskFileError) as caught:
        load(path)
    assert [(p.line, p.field) for p in caught.value.problems] == [
        (3, "steps[0].wait"), (4, "steps[1].click.y"), (5, "limits.max_steps"), (6, "naem")]
    assert str(caught.value).count(str(path)) == 4


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match=r"nope\.yaml: file: no such file") as caught:
        load_task(tmp_path / "nope.yaml")
    assert caught.value.line is None and caught.value.field == "file"


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_bytes(b"")
    with pytest.raises(TaskFileError, match=r"empty\.yaml:1: task: the file is empty"):
        load_task(tmp_path / "empty.yaml")


def test_directory_is_not_a_task(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match="is a directory"):
        load_task(tmp_path)


def test_recursive_alias(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("goal: x\nsteps: &s\n  - *s\n")
    with pytest.raises(TaskFileError, match=r"r\.yaml:2: steps\[0\]: recursive alias"):
        load_task(tmp_path / "r.yaml")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "bom.yaml").write_bytes("\ufeffgoal: Grüße\n".encode())
    assert load_task(tmp_path / "bom.yaml").goal == "Grüße"


# ----------------------------------------------------------------------------- JSON schema


def _validate(value: Any, schema: dict, root: dict, where: str = "$") -> list[str]:
    """A small JSON-schema validator for the keywords pydantic emits; returns the errors."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    errors: list[str] = []
    kinds = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict,
             "array": list, "null": type(None)}
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(isinstance(value, kinds[k]) and not (k in ("integer", "number") and isinstance(value, bool))
                   for k in names):
            return [f"{where}: not {'/'.join(names)}"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            matches = sum(not _validate(value, s, root, where) for s in schema[key])
            if matches == 0 or (key == "oneOf" and matches > 1):
                errors.append(f"{where}: {matches} of {key} match")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: not in enum")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: not const")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for key, bad in (("minimum", value < schema.get("minimum", value)),
                         ("maximum", value > schema.get("maximum", value)),
                         ("exclusiveMinimum", "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]),
                         ("exclusiveMaximum", "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"])):
            if bad:
                errors.append(f"{where}: {key}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{where}: length")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: pattern")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        errors += [f"{where}: missing {k}" for k in schema.get("required", []) if k not in value]
        for key, item in value.items():
            if key in properties:
                errors += _validate(item, properties[key], root, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unknown {key}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{where}: item count")
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else schema.get("items")
            if isinstance(sub, dict):
                errors += _validate(item, sub, root, f"{where}[{i}]")
    return errors


def test_schema_structure() -> None:
    schema = task_json_schema()
    assert json.loads(json.dumps(schema)) == schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "deskpilot task file"
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"name", "goal", "display", "setup", "steps", "checks", "limits", "secrets",
                                         "policy"}
    step_refs = {s["$ref"].rsplit("/", 1)[-1] for s in schema["properties"]["steps"]["items"]["oneOf"]}
    assert step_refs == {cls.__name__ for cls in STEP_KINDS.values()}
    for cls in STEP_KINDS.values():  # each step: an object with exactly its one key
        definition = schema["$defs"][cls.__name__]
        assert definition["required"] == [cls.kind] and list(definition["properties"]) == [cls.kind]
        assert definition["additionalProperties"] is False
    assert set(schema["$defs"]["Drag"]["properties"]) == {"from", "to"}
    click = schema["$defs"]["ClickStep"]["properties"]["click"]["oneOf"]
    assert {"type": "string", "minLength": 1}.items() <= click[0].items()  # the shorthand


@pytest.mark.parametrize("name", ["full.yaml", "every_kind.yaml"])
def test_valid_files_validate_against_the_schema(name: str) -> None:
    schema = task_json_schema()
    data = yaml.safe_load((VALID / name).read_text(encoding="utf-8"))
    assert _validate(data, schema, schema) == []
    if (jsonschema := _optional("jsonschema")) is not None:
        jsonschema.validate(data, schema)


@pytest.mark.parametrize("data", [
    {"goal": "x", "naem": "y"},
    {"goal": "x", "steps": [{"click": "A", "type": "B"}]},
    {"goal": "x", "steps": [{"scroll": {"direction": "sideways"}}]},
    {"goal": "x", "steps": [{"click": {"text": "A", "image": "b.png"}}]},
    {"goal": "x", "steps": [{"wait": -1}]},
    {"goal": "x", "checks": [{"file": {"contains": "A"}}]},
], ids=["unknown-key", "two-actions", "direction", "text-and-image", "negative-wait", "file-without-path"])
def test_schema_rejects_invalid_shapes(data: dict) -> None:
    schema = task_json_schema()
    assert _validate(data, schema, schema) != []


def _optional(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        return None
