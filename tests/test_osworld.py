"""`deskpilot import osworld`: OSWorld task JSON (written here in OSWorld's format) as deskpilot task files;
what cannot run on a plain desktop is refused naming the field and its value, and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.tasks.loader import load_task
from tests.eval_helpers import run

ROOT = Path(__file__).resolve().parent.parent


def osworld(id: str, instruction: str, config: list, evaluator: dict, **extra: object) -> dict:
    return {"id": id, "snapshot": "os", "instruction": instruction, "source": "https://example.org/howto",
            "config": config, "trajectory": "trajectories/", "related_apps": ["os"], "evaluator": evaluator,
            "proxy": False, "fixed_ip": False, "possibility_of_env_change": "low", **extra}


def rule(**rules: object) -> dict:
    return {"type": "rule", "rules": rules}


def command(cmd: object, shell: bool | None = None) -> dict:
    return {"type": "vm_command_line", "command": cmd, **({} if shell is None else {"shell": shell})}


def supported(data_file: Path) -> dict[str, dict]:
    return {
        "spotify": osworld("spotify", "Install Spotify.", [
            {"type": "execute", "parameters": {"command": ["python", "-c", "print('ready')"]}}],
            {"func": "check_include_exclude", "result": command("which spotify"),
             "expected": rule(include=["spotify"], exclude=["not found"])}),
        "dark": osworld("dark", "Use the dark theme.", [],
                        {"func": "exact_match", "result": command("cat /home/user/.theme", shell=True),
                         "expected": rule(expected="dark\n")}),
        "listed": osworld("listed", "Make a notes folder on the Desktop.", [],
                          {"func": "is_in_list", "result": command(["ls", "/home/user/Desktop"]),
                           "expected": rule(expected="notes")}),
        "text-file": osworld("text-file", "Write the poem into poem.txt.", [
            {"type": "download", "parameters": {"files": [{"url": f"file://{data_file}",
                                                           "path": "/home/user/Desktop/draft.txt"}]}}],
            {"func": "compare_text_file", "result": {"type": "vm_file", "path": "/home/user/Desktop/poem.txt",
                                                     "dest": "poem.txt"},
             "expected": {"type": "cloud_file", "path": str(data_file), "dest": "gold.txt"},
             "options": {"ignore_blanks": True}}),
        "either": osworld("either", "Show the date or the time.", [],
                          {"func": ["check_include_exclude", "exact_match"], "conj": "or",
                           "result": [command("cat ~/shown.txt", shell=True), command("cat ~/shown.txt", shell=True)],
                           "expected": [rule(include=["2026"]), rule(expected="noon\n")]}),
        "both": osworld("both", "Save both files.", [
            {"type": "launch", "parameters": {"command": "sleep 60 /home/user/x", "shell": True}},
            {"type": "open", "parameters": {"path": "/home/user/Desktop/a b.txt"}},
            {"type": "sleep", "parameters": {"seconds": 1.5}},
            {"type": "command", "parameters": {"command": "touch '/home/user/q s.txt'", "shell": True}}],
            {"postconfig": [{"type": "execute", "parameters": {"command": ["sync"]}},
                            {"type": "sleep", "parameters": {"seconds": 0.5}}],
             "func": ["exact_match", "exact_match"],
             "result": [command("cat ~/a", shell=True), command("cat ~/b", shell=True)],
             "expected": [rule(expected="a\n"), rule(expected="b\n")]}),
        "infeasible": osworld("infeasible", "Install Photoshop on this Ubuntu desktop.", [],
                              {"func": "infeasible"}),
    }


def refused(data_file: Path) -> list[tuple[dict, str]]:
    ok = {"func": "exact_match", "result": command("true"), "expected": rule(expected="")}
    return [
        (osworld("gdrive", "x", [{"type": "googledrive", "parameters": {"settings_file": "s.yml",
                                                                      "operation": ["delete"]}}], ok),
         "config[0].type: 'googledrive' is not supported"),
        (osworld("tabs", "x", [{"type": "chrome_open_tabs", "parameters": {"urls_to_open": ["https://a.b"]}}], ok),
         "config[0].type: 'chrome_open_tabs'"),
        (osworld("proxy", "x", [], ok, proxy=True), "proxy: true is not supported"),
        (osworld("login", "x", [{"type": "sleep", "parameters": {"seconds": 1}},
                                {"type": "login", "parameters": {"settings_file": "s.json",
                                                                 "platform": "googledrive"}}],
                 ok), "config[1].type: 'login'"),
        (osworld("snap", "x", [], ok, snapshot="chrome"), "snapshot: 'chrome' is not supported: a VM snapshot"),
        (osworld("tree", "x", [], {"func": "check_accessibility_tree", "result": {"type": "accessibility_tree"},
                                   "expected": rule(xpath="//x")}), "evaluator.func: 'check_accessibility_tree'"),
        (osworld("getter", "x", [], {"func": "exact_match", "result": {"type": "vlc_playing_info", "dest": "a.xml"},
                                     "expected": rule(expected="x")}), "evaluator.result.type: 'vlc_playing_info'"),
        (osworld("http", "x", [{"type": "download", "parameters": {"files": [
            {"url": "https://drive.google.com/uc?id=1", "path": "/home/user/a.docx"}]}}], ok),
         "config[0].parameters.files[0].url: 'https://drive.google.com/uc?id=1'"),
        (osworld("until", "x", [{"type": "execute", "parameters": {"command": ["true"], "until": {"returncode": 0}}}],
                 ok), "config[0].parameters.until"),
        (osworld("cloud", "x", [], {"func": "compare_text_file", "result": {"type": "vm_file", "path": "/tmp/a"},
                                    "expected": {"type": "cloud_file", "path": "https://x.org/gold.txt"}}),
         "evaluator.expected.path: 'https://x.org/gold.txt'"),
        (osworld("window", "x", [{"type": "activate_window", "parameters": {"window_name": "Calc"}}], ok),
         "config[0].type: 'activate_window'"),
        (osworld("list-or", "x", [], {"func": ["exact_match", "fuzzy_match"], "conj": "or",
                                      "result": [command("a"), command("b")],
                                      "expected": [rule(expected="a"), rule(expected="b")]}),
         "evaluator.func[1]: 'fuzzy_match'"),
    ]


def write_json(folder: Path, name: str, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "gold poem.txt"
    path.parent.mkdir()
    path.write_text("Roses are red\nviolets are blue\n")
    return path


def test_supported_tasks_become_task_files(tmp_path: Path, data_file: Path) -> None:
    files = [write_json(tmp_path / "osworld", name, data) for name, data in supported(data_file).items()]
    out = tmp_path / "tasks"
    code, stdout, stderr, _ = run(["import", "osworld", *map(str, files), "--out", str(out)], ROOT)
    assert code == 0, stderr
    assert "7 tasks imported" in stdout
    tasks = {p.stem: load_task(p) for p in sorted(out.glob("*.yaml"))}
    assert set(tasks) == {"spotify", "dark", "listed", "text-file", "either", "both", "infeasible"}
    assert all((t.display.width, t.display.height) == (1920, 1080) for t in tasks.values())
    assert tasks["spotify"].goal == "Install Spotify."
    assert [s.value for s in tasks["spotify"].setup] == [["python", "-c", "print('ready')"]]
    (check,) = tasks["spotify"].checks
    assert check.kind == "output" and check.value.command == ["which", "spotify"]
    assert (check.value.contains, check.value.excludes) == (["spotify"], ["not found"])
    dark = tasks["dark"].checks[0].value
    assert dark.command == 'cat "$HOME"/.theme' and dark.equals == "dark\n"
    assert tasks["listed"].checks[0].value.command == 'ls "$HOME"/Desktop'  # a list with a home path: a shell line
    assert tasks["listed"].checks[0].value.contains == ["notes"]
    text = tasks["text-file"]
    (download,) = text.setup
    assert download.kind == "run" and download.value == (
        f"mkdir -p \"$HOME\"/Desktop && cp '{data_file}' \"$HOME\"/Desktop/draft.txt")
    compare = text.checks[0].value
    assert str(compare.file) == "$HOME/Desktop/poem.txt" and compare.equals_file == data_file
    assert compare.ignore_blanks and not compare.ignore_case
    (either,) = tasks["either"].checks
    assert either.kind == "any" and [c.value.contains or c.value.equals for c in either.value] == [["2026"], "noon\n"]
    both = tasks["both"]
    assert [s.kind for s in both.setup] == ["launch", "launch", "run", "run"]
    assert both.setup[0].value == 'sleep 60 "$HOME"/x'
    assert both.setup[1].value == "xdg-open \"$HOME\"'/Desktop/a b.txt'"
    assert both.setup[2].value == ["sleep", "1.5"]
    assert both.setup[3].value == "touch ''\"$HOME\"'/q s.txt'"
    assert [c.kind for c in both.checks] == ["command", "command", "output", "output"]  # postconfig runs first
    assert [c.value for c in both.checks[:2]] == [["sync"], ["sleep", "0.5"]]
    assert [c.kind for c in tasks["infeasible"].checks] == ["outcome"]
    assert tasks["infeasible"].checks[0].value == "impossible"
    header = (out / "dark.yaml").read_text().splitlines()[0]
    assert header.startswith("# Imported from the OSWorld task") and "dark.json" in header


def test_the_converted_commands_run_with_home_as_the_users_home(desktop, tmp_path: Path, data_file: Path) -> None:
    home = tmp_path / "home"
    (home / "Desktop").mkdir(parents=True)
    files = [write_json(tmp_path / "osworld", name, supported(data_file)[name]) for name in ("either", "text-file")]
    out = tmp_path / "tasks"
    assert run(["import", "osworld", *map(str, files), "--out", str(out)], ROOT)[0] == 0
    env = {"HOME": str(home)}
    code, stdout, _, _ = run(["check", str(out / "either.yaml"), "--display", desktop.display], tmp_path, env=env)
    assert code == 1 and "any of" in stdout
    (home / "shown.txt").write_text("Tue 1 Dec 2026\n")
    code, stdout, _, _ = run(["check", str(out / "either.yaml"), "--display", desktop.display], tmp_path, env=env)
    assert code == 0, stdout
    (home / "Desktop" / "poem.txt").write_text("Roses   are red violets\nare blue")
    code, stdout, _, _ = run(["check", str(out / "text-file.yaml"), "--display", desktop.display], tmp_path, env=env)
    assert code == 0, stdout  # ignore_blanks: OSWorld's compare_text_file would agree


def test_unsupported_tasks_are_refused_naming_the_field(tmp_path: Path, data_file: Path) -> None:
    cases = refused(data_file)
    assert len(cases) + len(supported(data_file)) >= 12
    out = tmp_path / "tasks"
    for data, words in cases:
        path = write_json(tmp_path / "bad", data["id"], data)
        code, stdout, stderr, _ = run(["import", "osworld", str(path), "--out", str(out)], ROOT)
        assert code == 2, (data["id"], stdout, stderr)
        assert f"{path}: {words}" in stderr, stderr
    assert not out.exists()
    # one bad file among good ones: nothing is written
    good = write_json(tmp_path / "good", "dark", supported(data_file)["dark"])
    bad = write_json(tmp_path / "bad", "proxy", cases[2][0])
    code, _, stderr, _ = run(["import", "osworld", str(good), str(bad), "--out", str(out)], ROOT)
    assert code == 2 and "proxy: true" in stderr and not out.exists()
    # nothing already written is lost
    assert run(["import", "osworld", str(good), "--out", str(out)], ROOT)[0] == 0
    (out / "dark.yaml").write_text("# my edits\n" + (out / "dark.yaml").read_text())
    code, _, stderr, _ = run(["import", "osworld", str(good), "--out", str(out)], ROOT)
    assert code == 2 and "exists already" in stderr and (out / "dark.yaml").read_text().startswith("# my edits")
    # not JSON, not a task
    (tmp_path / "junk.json").write_text("{nope")
    code, _, stderr, _ = run(["import", "osworld", str(tmp_path / "junk.json"), "--out", str(out)], ROOT)
    assert code == 2 and "junk.json:1: not valid JSON" in stderr
