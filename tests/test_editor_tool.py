"""The editor tool on real files: every command, ranges, ambiguity, errors and undo."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.tools.editor import EditorTool


@pytest.fixture
def editor(tmp_path: Path) -> EditorTool:
    """An editor whose relative-path suggestions point into tmp_path."""
    return EditorTool(root=tmp_path)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A five-line file."""
    path = tmp_path / "sample.txt"
    path.write_text("one\ntwo\nthree\nfour\nfive\n")
    return path


def test_to_params() -> None:
    from agent.models.anthropic import TOOL_VERSIONS
    from agent.models.anthropic_messages import render_tool

    version = TOOL_VERSIONS["20251124"]
    assert render_tool(EditorTool().spec, version) == {"type": "text_editor_20250728",
                                                       "name": "str_replace_based_edit_tool"}
    assert render_tool(EditorTool(max_characters=500).spec, version)["max_characters"] == 500


def test_view_file_numbers_lines(editor: EditorTool, sample: Path) -> None:
    result = editor.run(command="view", path=str(sample))
    assert result.ok
    header, body = result.output.split("\n", 1)
    assert str(sample) in header
    assert body == "     1\tone\n     2\ttwo\n     3\tthree\n     4\tfour\n     5\tfive"


@pytest.mark.parametrize(
    ("view_range", "numbers"),
    [([2, 3], [2, 3]), ([4, -1], [4, 5]), ([5, 5], [5]), ([1, 99], [1, 2, 3, 4, 5])],
)
def test_view_range(editor: EditorTool, sample: Path, view_range: list[int], numbers: list[int]) -> None:
    body = editor.run(command="view", path=str(sample), view_range=view_range).output.split("\n")[1:]
    assert [int(line.split("\t")[0]) for line in body] == numbers


@pytest.mark.parametrize("view_range", [[0, 2], [6, 7], [3, 2], [1], "1-2", [1.0, 2]])
def test_bad_view_range(editor: EditorTool, sample: Path, view_range: object) -> None:
    result = editor.run(command="view", path=str(sample), view_range=view_range)
    assert not result.ok and "view_range" in result.error


def test_view_directory_two_levels_without_hidden(editor: EditorTool, tmp_path: Path) -> None:
    (tmp_path / "pkg" / "deep" / "deeper").mkdir(parents=True)
    (tmp_path / "pkg" / "mod.py").write_text("")
    (tmp_path / "pkg" / "deep" / "too_deep.py").write_text("")
    (tmp_path / ".git").mkdir()
    (tmp_path / "pkg" / ".hidden").write_text("")
    (tmp_path / "top.txt").write_text("")
    result = editor.run(command="view", path=str(tmp_path))
    lines = result.output.split("\n")[1:]
    assert lines == [f"{tmp_path}/", f"{tmp_path}/pkg/", f"{tmp_path}/pkg/deep/", f"{tmp_path}/pkg/mod.py",
                     f"{tmp_path}/top.txt"]


def test_view_max_characters(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("".join(f"line {n}\n" for n in range(1000)))
    result = EditorTool(max_characters=200).run(command="view", path=str(path))
    assert "truncated: showing 200 of" in result.output
    shown = result.output.split("\n", 1)[1].rsplit("\n\n[... truncated", 1)[0]  # between the header and the note
    assert len(shown) <= 200


def test_create_makes_parents_and_overwrites_with_undo(editor: EditorTool, tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "file.py"
    result = editor.run(command="create", path=str(path), file_text="print('hi')\n")
    assert result.ok and "created" in result.output
    assert path.read_text() == "print('hi')\n"
    result = editor.run(command="create", path=str(path), file_text="print('bye')\n")
    assert result.ok and "overwritten" in result.output
    assert path.read_text() == "print('bye')\n"
    assert editor.run(command="undo_edit", path=str(path)).ok
    assert path.read_text() == "print('hi')\n"
    assert editor.run(command="undo_edit", path=str(path)).ok  # undoing the creation removes the file
    assert not path.exists()
    assert not editor.run(command="undo_edit", path=str(path)).ok


def test_create_needs_file_text_and_a_file_path(editor: EditorTool, tmp_path: Path) -> None:
    assert "file_text" in editor.run(command="create", path=str(tmp_path / "x.txt")).error
    assert "directory" in editor.run(command="create", path=str(tmp_path), file_text="").error


def test_str_replace_returns_a_snippet(editor: EditorTool, tmp_path: Path) -> None:
    path = tmp_path / "code.py"
    path.write_text("".join(f"x{n} = {n}\n" for n in range(1, 21)))
    new_str = "x10 = 'ten'\nx10b = 0\n"
    result = editor.run(command="str_replace", path=str(path), old_str="x10 = 10\n", new_str=new_str)
    assert result.ok
    assert "    10\tx10 = 'ten'\n    11\tx10b = 0" in result.output
    assert "     6\tx6 = 6" in result.output and "     5\t" not in result.output
    assert "    15\tx14 = 14" in result.output and "    16\t" not in result.output
    assert path.read_text().count("\n") == 21


def test_str_replace_new_str_defaults_to_deleting(editor: EditorTool, sample: Path) -> None:
    assert editor.run(command="str_replace", path=str(sample), old_str="three\n").ok
    assert sample.read_text() == "one\ntwo\nfour\nfive\n"


def test_str_replace_missing_and_ambiguous(editor: EditorTool, tmp_path: Path) -> None:
    path = tmp_path / "dup.py"
    path.write_text("a = 1\nb = 2\na = 1\nc = 3\na = 1\n")
    missing = editor.run(command="str_replace", path=str(path), old_str="z = 9", new_str="")
    assert not missing.ok and "did not appear verbatim" in missing.error
    ambiguous = editor.run(command="str_replace", path=str(path), old_str="a = 1", new_str="a = 2")
    assert not ambiguous.ok and "3 times" in ambiguous.error and "lines 1, 3, 5" in ambiguous.error
    assert path.read_text() == "a = 1\nb = 2\na = 1\nc = 3\na = 1\n"
    assert "old_str" in editor.run(command="str_replace", path=str(path), old_str="").error


def test_insert_at_top_middle_and_end(editor: EditorTool, sample: Path) -> None:
    assert editor.run(command="insert", path=str(sample), insert_line=0, insert_text="zero").ok
    assert sample.read_text() == "zero\none\ntwo\nthree\nfour\nfive\n"
    result = editor.run(command="insert", path=str(sample), insert_line=6, insert_text="six\nseven\n")
    assert result.ok and "     7\tsix\n     8\tseven" in result.output
    assert sample.read_text().endswith("five\nsix\nseven\n")
    assert editor.run(command="insert", path=str(sample), insert_line=2, new_str="1.5").ok  # older input name
    assert sample.read_text().startswith("zero\none\n1.5\ntwo\n")


def test_insert_at_end_of_file_without_final_newline(editor: EditorTool, tmp_path: Path) -> None:
    path = tmp_path / "no_newline.txt"
    path.write_text("a\nb")
    assert editor.run(command="insert", path=str(path), insert_line=2, insert_text="c").ok
    assert path.read_text() == "a\nb\nc\n"


@pytest.mark.parametrize("insert_line", [-1, 6, None, "2", True])
def test_insert_bad_line(editor: EditorTool, sample: Path, insert_line: object) -> None:
    result = editor.run(command="insert", path=str(sample), insert_line=insert_line, insert_text="x")
    assert not result.ok and "insert_line" in result.error


def test_undo_restores_edits_in_reverse_order(editor: EditorTool, sample: Path) -> None:
    original = sample.read_text()
    editor.run(command="str_replace", path=str(sample), old_str="two", new_str="TWO")
    editor.run(command="insert", path=str(sample), insert_line=1, insert_text="inserted")
    result = editor.run(command="undo_edit", path=str(sample))
    assert result.ok and "     2\tTWO" in result.output
    assert editor.run(command="undo_edit", path=str(sample)).ok
    assert sample.read_text() == original
    result = editor.run(command="undo_edit", path=str(sample))
    assert not result.ok and "No edit history" in result.error


def test_missing_file_is_named(editor: EditorTool, tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    for tool_input in (
        {"command": "view"},
        {"command": "str_replace", "old_str": "a", "new_str": "b"},
        {"command": "insert", "insert_line": 0, "insert_text": "x"},
    ):
        result = editor.run(path=str(missing), **tool_input)
        assert not result.ok and f"The path {missing} does not exist" in result.error


def test_relative_path_is_refused_with_the_absolute_form(editor: EditorTool, tmp_path: Path) -> None:
    result = editor.run(command="view", path="src/main.py")
    assert not result.ok and "not an absolute path" in result.error
    assert str(tmp_path / "src" / "main.py") in result.error


@pytest.mark.parametrize(
    ("tool_input", "named"),
    [
        ({"path": "/tmp"}, "command"),
        ({"command": "delete", "path": "/tmp"}, "command"),
        ({"command": "view"}, "path"),
        ({"command": "view", "path": "/tmp", "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_an_error_result(editor: EditorTool, tool_input: dict, named: str) -> None:
    result = editor.run(**tool_input)
    assert not result.ok and named in result.error


def test_binary_and_non_utf8_files(editor: EditorTool, tmp_path: Path) -> None:
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02")
    assert "binary" in editor.run(command="view", path=str(binary)).error
    latin = tmp_path / "latin1.txt"
    latin.write_bytes(b"caf\xe9\n")
    assert editor.run(command="view", path=str(latin)).ok
    result = editor.run(command="str_replace", path=str(latin), old_str="caf", new_str="tea")
    assert not result.ok and "UTF-8" in result.error
    assert latin.read_bytes() == b"caf\xe9\n"
