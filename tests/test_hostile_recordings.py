"""Hostile recordings: links that leave the folder, devices, deep nesting. `report` and `replay` refuse
them with exit 2 naming the file and the problem; nothing outside the folder is read, embedded or linked.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.recording.writer import Recording, RecordingError, RecordingWriter

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"width": 64, "height": 48}


def deskpilot(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.ui.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def refused(result: subprocess.CompletedProcess, *needles: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    for needle in needles:
        assert needle in output, output
    return output


def recording(tmp_path: Path, steps: int = 2) -> Path:
    w = RecordingWriter(tmp_path / "recs", "act", screen=SMALL)
    for i in range(steps):
        frame = w.save_frame(np.full((48, 64, 3), 40 * i, np.uint8))
        anchor = w.save_anchor(np.full((48, 64, 3), 40 * i, np.uint8), (10, 10), i)
        w.add_step(action={"action": "left_click", "coordinate": [10, 10]}, frame=frame, anchor=anchor)
    w.finish("succeeded", final_frame=np.zeros((48, 64, 3), np.uint8))
    return w.path


def swap_for_link(path: Path, target: str | Path) -> None:
    path.unlink()
    path.symlink_to(target)


def test_report_embed_refuses_a_frame_linked_to_etc_passwd(tmp_path: Path) -> None:
    rec = recording(tmp_path)
    swap_for_link(rec / "frames" / "000000.png", "/etc/passwd")
    output = refused(deskpilot("report", str(rec), "--embed"), "frames/000000.png", "outside the recording")
    secret = base64.b64encode(Path("/etc/passwd").read_bytes()[:30]).decode()[:32]
    assert not (rec / "report.html").exists()
    assert secret not in output


@pytest.mark.parametrize("which", ["frame", "anchor", "final", "frames_dir"])
def test_links_leaving_the_folder_are_refused_by_report_and_replay(tmp_path: Path, which: str) -> None:
    rec = recording(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "000000.png").write_bytes((rec / "frames" / "000001.png").read_bytes())
    (outside / "final.png").write_bytes((rec / "frames" / "final.png").read_bytes())
    if which == "frame":
        swap_for_link(rec / "frames" / "000000.png", os.path.relpath(outside / "000000.png", rec / "frames"))
        name = "frames/000000.png"
    elif which == "anchor":
        swap_for_link(rec / "anchors" / "000001.png", outside / "000000.png")
        name = "anchors/000001.png"
    elif which == "final":
        swap_for_link(rec / "frames" / "final.png", outside / "final.png")
        name = "frames/final.png"
    else:
        for child in (rec / "frames").iterdir():
            child.unlink()
        (rec / "frames").rmdir()
        (outside / "000001.png").write_bytes((outside / "000000.png").read_bytes())
        (rec / "frames").symlink_to(outside)
        name = "frames/000000.png"
    for embed in ([], ["--embed"]):
        refused(deskpilot("report", str(rec), *embed), name, "outside the recording")
    refused(deskpilot("replay", str(rec), "--display", ":99", "--out", str(tmp_path / "out")), name,
            "outside the recording")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_links_that_stay_inside_are_fine_and_a_linked_folder_too(tmp_path: Path) -> None:
    rec = recording(tmp_path)
    swap_for_link(rec / "frames" / "000001.png", "000000.png")
    alias = tmp_path / "latest"
    alias.symlink_to(rec)
    result = deskpilot("report", str(alias), "--embed")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (rec / "report.html").is_file()


@pytest.mark.parametrize("name", ["steps.jsonl", "model.jsonl", "meta.json"])
def test_record_files_linked_to_devices_or_outside_are_refused(tmp_path: Path, name: str) -> None:
    rec = recording(tmp_path)
    swap_for_link(rec / name, "/dev/zero")
    refused(deskpilot("report", str(rec), timeout=20), name)
    swap_for_link(rec / name, "/etc/passwd")
    refused(deskpilot("report", str(rec), timeout=20), name, "outside the recording")


def test_report_never_links_an_attempt_outside_the_folder(tmp_path: Path) -> None:
    parent = RecordingWriter(tmp_path / "recs", "rollouts", goal="g", screen=SMALL)
    sibling = recording(tmp_path)  # another recording next to the parent, with a final frame
    parent.set_meta(attempts=[{"path": f"../{sibling.name}", "status": "succeeded"},
                              {"path": str(sibling), "status": "failed"}], chosen=0)
    parent.finish("succeeded")
    result = deskpilot("report", str(parent.path))
    assert result.returncode == 0, result.stdout + result.stderr
    html = (parent.path / "report.html").read_text(encoding="utf-8")
    assert "final.png" not in html


def test_a_report_html_link_is_replaced_not_followed(tmp_path: Path) -> None:
    rec = recording(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    (rec / "report.html").symlink_to(victim)
    result = deskpilot("report", str(rec))
    assert result.returncode == 0, result.stdout + result.stderr
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert not (rec / "report.html").is_symlink()


# ------------------------------------------------------------------------ deep nesting (item 10)


def deep_line(depth: int) -> str:
    return '{"i": 0, "t": 0, "source": "script", "action": {"action": "wait", "duration": 0}, "thought": ' + \
        "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [100_000, 900, 200])
def test_a_deeply_nested_step_line_is_refused_by_report_and_replay(tmp_path: Path, depth: int) -> None:
    rec = recording(tmp_path, steps=0)
    (rec / "steps.jsonl").write_text(deep_line(depth) + "\n", encoding="utf-8")
    with pytest.raises(RecordingError, match="line 1"):
        Recording.load(rec)
    for args in (["report", str(rec)], ["replay", str(rec), "--display", ":99", "--out", str(tmp_path / "o")]):
        output = refused(deskpilot(*args), "steps.jsonl", "line 1", "nested")
        assert "RecursionError" not in output


def test_a_deeply_nested_meta_is_refused(tmp_path: Path) -> None:
    rec = recording(tmp_path)
    meta = json.loads((rec / "meta.json").read_text(encoding="utf-8"))
    text = json.dumps(meta)[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (rec / "meta.json").write_text(text, encoding="utf-8")
    refused(deskpilot("report", str(rec)), "meta.json", "nested")


@pytest.mark.parametrize("field", ["frame", "anchor"])
def test_a_file_name_with_a_nul_character_is_refused(tmp_path: Path, field: str) -> None:
    """Found by benchmarks/hostile_inputs: a NUL in a step's frame name was a ValueError traceback."""
    rec = recording(tmp_path)
    lines = (rec / "steps.jsonl").read_text(encoding="utf-8").splitlines()
    step = json.loads(lines[1])
    if field == "frame":
        step["frame"] = "frames/000\u00001.png"
    else:
        step["anchor"]["image"] = "anchors/a\u0000.png"
    lines[1] = json.dumps(step)
    (rec / "steps.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for args in (["report", str(rec)], ["replay", str(rec), "--display", ":99", "--out", str(tmp_path / "o")]):
        refused(deskpilot(*args), "steps.jsonl", "line 2", "NUL")
