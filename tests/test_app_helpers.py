"""The app's helpers without a window: settings, the run history and its filter, opening files, the model
picker's families and server check, the UI scale and the system theme."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from agent.ui import app_models
from agent.ui.app_history import filter_runs, run_view, scan_runs
from agent.ui.app_open import editor_command, folder_command
from agent.ui.app_settings import AppSettings, load_settings, save_settings, settings_path
from agent.ui.app_theme import draw_icon, scale_from, system_theme
from tests.fake_openai import FakeOpenAI


def test_settings_round_trip_and_bad_files_are_ignored_with_a_note(tmp_path: Path) -> None:
    assert settings_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "deskpilot" / "app.json"
    assert settings_path({"HOME": "/home/ada"}) == Path("/home/ada/.config/deskpilot/app.json")
    path = tmp_path / "deskpilot" / "app.json"
    assert load_settings(path) == (AppSettings(), None)
    assert save_settings(path, AppSettings(model="chat/x", base_url="http://h/v1", attempts=3)) is None
    settings, note = load_settings(path)
    assert (settings.model, settings.base_url, settings.attempts, note) == ("chat/x", "http://h/v1", 3, None)
    for text, words in (("{oops", "could not be read"), ("[1, 2]", "not a JSON object"),
                        ("\xff\xfe", "could not be read")):
        path.write_bytes(text.encode("latin-1"))
        settings, note = load_settings(path)
        assert settings == AppSettings() and words in note and str(path) in note
    path.write_text(json.dumps({"model": 7, "theme": "purple", "attempts": -2, "engine": "ray", "unknown": 1}))
    settings, note = load_settings(path)  # wrong types and values fall back, known ones stay
    assert (settings.model, settings.theme, settings.attempts, settings.engine, note) == ("", "system", 1, "ray", None)
    path.write_text("x" * 70_000)
    assert "larger than" in load_settings(path)[1]


def test_settings_on_a_file_in_the_way_say_so(tmp_path: Path) -> None:
    (tmp_path / "deskpilot").write_text("a file, not a folder")
    note = save_settings(tmp_path / "deskpilot" / "app.json", AppSettings())
    assert note and "could not be saved" in note


def _recording(folder: Path, name: str, **meta: object) -> Path:
    path = folder / name
    (path / "frames").mkdir(parents=True)
    (path / "steps.jsonl").write_text("")
    base = {"format": "deskpilot.recording/1", "kind": "run", "status": "succeeded", "created": "2025-06-14T10:32:00Z",
            "summary": {"steps": 0, "duration_s": 1.0, "cost_usd": 0.25}}
    (path / "meta.json").write_text(json.dumps(base | meta))
    return path


def test_the_history_lists_recordings_and_suites_newest_first_and_filters_them(tmp_path: Path) -> None:
    _recording(tmp_path, "20250614-103200-run-aaaa", goal="Open the terminal", model="claude-sonnet-4-6")
    _recording(tmp_path, "20250615-090000-task-bbbb", kind="task", task="/tasks/fill-form.yaml", status="failed",
               created="2025-06-15T09:00:00Z")
    (tmp_path / "20250616-000000-broken").mkdir()
    (tmp_path / "20250616-000000-broken" / "meta.json").write_text("{")
    suite = tmp_path / "20250617-000000-eval-cccc"
    suite.mkdir()
    (suite / "suite.json").write_text(json.dumps({"created": "2025-06-17T00:00:00Z", "status": "completed",
                                                  "models": [None], "tasks": [{"name": "a"}, {"name": "b"}],
                                                  "totals": {"passed": 3, "attempts": 4, "cost_usd": 0.0}}))
    (tmp_path / "notes.txt").write_text("not a run")
    (tmp_path / "empty-folder").mkdir()
    runs = scan_runs(tmp_path)
    assert [r.name for r in runs] == [
        "20250617-000000-eval-cccc", "20250615-090000-task-bbbb", "20250614-103200-run-aaaa",
        "20250616-000000-broken"]
    suite_run, task_run, goal_run, broken = runs
    assert suite_run.what == "suite: 2 tasks, 3/4 passed" and suite_run.status == "failed" and not suite_run.can_replay
    assert task_run.what == "fill-form.yaml" and task_run.task == "/tasks/fill-form.yaml" and task_run.can_run_again
    assert goal_run.goal == "Open the terminal" and goal_run.cost_usd == 0.25 and goal_run.date_text
    assert broken.status == "invalid" and "meta.json" in broken.error and not broken.can_run_again
    assert [r.name for r in filter_runs(runs, "failed")] == [suite_run.name, task_run.name]
    assert [r.name for r in filter_runs(runs, "all", "TERMINAL sonnet")] == [goal_run.name]
    assert filter_runs(runs, "all", "terminal opus") == []
    assert scan_runs(tmp_path / "missing") == []
    with pytest.raises(Exception, match="no such recording"):
        run_view(tmp_path / "missing", (640, 400))


def test_opening_files_uses_the_desktop_then_the_users_editor() -> None:
    path = Path("/tmp/t.yaml")
    have = {"xdg-open": "/usr/bin/xdg-open", "code": "/usr/bin/code"}
    assert editor_command(path, {}, have.get) == ["xdg-open", "/tmp/t.yaml"]
    without = {"code": "/usr/bin/code"}.get
    assert editor_command(path, {"VISUAL": "code --wait", "EDITOR": "vi"}, without) == ["code", "--wait", "/tmp/t.yaml"]
    assert editor_command(path, {"EDITOR": "no-such-editor"}, without) is None
    assert editor_command(path, {"EDITOR": "'unclosed"}, without) is None
    assert editor_command(path, {}, without, platform="darwin") == ["open", "-t", "/tmp/t.yaml"]
    assert folder_command(Path("/r"), have.get) == ["xdg-open", "/r"]
    assert folder_command(Path("/r"), without) is None


def test_the_model_picker_offers_every_family_and_checks_the_server() -> None:
    families = app_models.families()
    assert families[:6] == ["anthropic", "openai", "chat", "ui-tars", "qwen2.5-vl", "qwen3-vl"]
    assert "scripted" not in families
    assert app_models.models_of("anthropic")[0] == "claude-sonnet-4-6" and app_models.models_of("chat")
    assert app_models.split_choice("qwen3-vl/Qwen3-VL-8B") == ("qwen3-vl", "Qwen3-VL-8B")
    assert app_models.split_choice("claude-opus-4-5") == ("anthropic", "claude-opus-4-5")
    assert app_models.compose("anthropic", "claude-opus-4-5") == "claude-opus-4-5"
    assert app_models.compose("ui-tars", "UI-TARS-1.5-7B") == "ui-tars/UI-TARS-1.5-7B"
    server = FakeOpenAI(models=("served",)).start()
    try:
        assert app_models.server_problem("chat/served", server.base_url) is None
        problem = app_models.server_problem("chat/other", server.base_url)
        assert "does not serve 'other'" in problem and "served" in problem and "What to do" in problem
    finally:
        server.stop()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    problem = app_models.server_problem("ui-tars/x", dead)
    assert "does not answer" in problem and "fix the base URL" in problem
    if not os.environ.get("OPENAI_BASE_URL"):
        assert "server of your own" in app_models.server_problem("ui-tars/x", None)
    assert app_models.server_problem("claude-sonnet-4-6", None) is None


def test_the_scale_follows_an_override_then_the_larger_dpi() -> None:
    assert scale_from(None, None, 96.0) == 1.0
    assert scale_from(None, 192.0, 96.0) == 2.0  # Xft.dpi of a HiDPI session
    assert scale_from(None, None, 144.0) == 1.5  # the screen's own pixels per inch
    assert scale_from(None, 60.0, 72.0) == 1.0  # never below 1 on its own
    assert scale_from("1.3", 192.0, 96.0) == 1.25 and scale_from("oops", None, 120.0) == 1.25
    assert scale_from("99", None, None) == 4.0


def test_the_system_theme_is_read_from_gtk_theme_or_gsettings() -> None:
    assert system_theme({"GTK_THEME": "Adwaita:dark"}) == "dark"
    assert system_theme({"GTK_THEME": "Adwaita"}) == "light"
    if shutil.which("gsettings") is None:
        assert system_theme({"PATH": os.environ.get("PATH", "")}) is None


def test_icons_are_drawn_at_the_size_asked() -> None:
    import cv2
    import numpy as np

    for name in ("start", "pause", "stop", "record", "live", "folder", "refresh", "check", "report"):
        image = cv2.imdecode(np.frombuffer(draw_icon(name, 32, "#ff0000"), np.uint8), cv2.IMREAD_UNCHANGED)
        assert image.shape == (32, 32, 4) and 0.05 < (image[..., 3] > 128).mean() < 0.8, name
        assert tuple(image[image[..., 3] > 200][0][:3]) == (0, 0, 255)
    with pytest.raises(ValueError, match="no icon"):
        draw_icon("nope", 16, "#000000")
