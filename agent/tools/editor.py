"""The text editor tool: view, create and edit text files by absolute path, with per-file undo.

It speaks the input of Anthropic's `text_editor_20250728` tool (`str_replace_based_edit_tool`) and
also keeps `undo_edit`. Files are read and written as UTF-8 bytes, untouched apart from the edit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from actions.result import ToolError, ToolResult
from agent.tools.base import Invocation
from agent.types import ToolSpec

if TYPE_CHECKING:
    from agent.types import ToolCall

SNIPPET_LINES = 4  # lines of context shown around an edit
MAX_LISTED_LINES = 20  # line numbers listed for an ambiguous old_str
INPUT_KEYS = frozenset(
    {"command", "path", "file_text", "old_str", "new_str", "insert_line", "insert_text", "view_range"}
)


def split_lines(text: str) -> list[str]:
    """`text` split after each "\\n" (kept); a last line without one is kept as it is."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def number_lines(lines: list[str], first: int) -> str:
    """Lines numbered like `cat -n`, the first one numbered `first`."""
    return "\n".join(f"{n:6}\t{line.removesuffix(chr(10))}" for n, line in enumerate(lines, first))


class EditorTool:
    """A file editor for the model: commands view, create, str_replace, insert and undo_edit.

    `root` is only the directory a relative path is joined to when suggesting its absolute form
    (default: the current directory); it does not confine the tool. `max_characters`, if set,
    truncates what `view` shows.
    """

    name = "str_replace_based_edit_tool"

    def __init__(self, root: Path | None = None, max_characters: int | None = None) -> None:
        if max_characters is not None and max_characters < 1:
            raise ValueError("max_characters must be positive")
        self.root = root
        self.max_characters = max_characters
        self._history: dict[Path, list[bytes | None]] = {}  # earlier contents; None: did not exist
        self._commands: dict[str, Callable[[Path, Mapping[str, object]], ToolResult]] = {
            "view": self._view,
            "create": self._create,
            "str_replace": self._str_replace,
            "insert": self._insert,
            "undo_edit": self._undo_edit,
        }

    @property
    def spec(self) -> ToolSpec:
        """The editor: commands view, create, str_replace, insert, undo_edit on absolute paths."""
        options = {"max_characters": self.max_characters} if self.max_characters is not None else {}
        return ToolSpec(self.name, "View, create and edit text files by absolute path.",
                        {"type": "object", "required": ["command", "path"],
                         "properties": {"command": {"type": "string", "enum": sorted(self._commands)},
                                        "path": {"type": "string"}, "file_text": {"type": "string"},
                                        "old_str": {"type": "string"}, "new_str": {"type": "string"},
                                        "insert_line": {"type": "integer"}, "insert_text": {"type": "string"},
                                        "view_range": {"type": "array", "items": {"type": "integer"}}}},
                        kind="editor", options=options)

    def validate(self, call: ToolCall) -> Invocation:
        """Editor input is checked when it runs; bad input comes back as an error result."""
        return Invocation(call)

    def __call__(self, invocation: Invocation) -> ToolResult:
        """Run a validated call."""
        return self.run(**invocation.call.input)

    def run(self, **tool_input: object) -> ToolResult:
        """Run one editor command; bad input and file errors become error results."""
        try:
            unknown = sorted(set(tool_input) - INPUT_KEYS)
            if unknown:
                raise ToolError(f"unknown input key(s): {', '.join(unknown)}")
            command = tool_input.get("command")
            if not isinstance(command, str) or command not in self._commands:
                raise ToolError(f"`command` must be one of: {', '.join(self._commands)}; got {command!r}")
            path = self._path(tool_input.get("path"))
            return self._commands[command](path, tool_input)
        except ToolError as e:
            return ToolResult(error=str(e))
        except OSError as e:
            where = f" ({e.filename})" if e.filename else ""
            return ToolResult(error=f"{e.strerror or e}{where}")

    def _path(self, value: object) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise ToolError("`path` is required: an absolute path")
        path = Path(value)
        if not path.is_absolute():
            suggestion = os.path.normpath((self.root or Path.cwd()) / path)
            raise ToolError(f"The path {value} is not an absolute path; did you mean {suggestion}?")
        return Path(os.path.normpath(path))

    def _view(self, path: Path, tool_input: Mapping[str, object]) -> ToolResult:
        view_range = tool_input.get("view_range")
        if path.is_dir():
            if view_range is not None:
                raise ToolError("`view_range` is not allowed when `path` is a directory")
            listing = self._limit("\n".join(list_dir(path)))
            return ToolResult(
                output=f"Here are the files and directories up to 2 levels deep in {path}, "
                f"excluding hidden items:\n{listing}"
            )
        data = _read(path)
        if b"\0" in data[:8192]:
            raise ToolError(f"{path} looks like a binary file; the editor shows text files only")
        lines = split_lines(data.decode("utf-8", errors="replace"))
        start, end = 1, len(lines)
        if view_range is not None:
            start, end = _parse_range(view_range, len(lines))
        body = self._limit(number_lines(lines[start - 1 : end], start))
        return ToolResult(output=f"Here's the result of running `cat -n` on {path}:\n{body}")

    def _create(self, path: Path, tool_input: Mapping[str, object]) -> ToolResult:
        file_text = _string(tool_input, "file_text")
        if path.is_dir():
            raise ToolError(f"{path} is a directory; `create` needs a file path")
        previous = path.read_bytes() if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write(path, file_text.encode("utf-8", errors="replace"), previous)
        if previous is None:
            return ToolResult(output=f"File created successfully at: {path}")
        return ToolResult(output=f"File overwritten at: {path} (undo_edit restores the previous content)")

    def _str_replace(self, path: Path, tool_input: Mapping[str, object]) -> ToolResult:
        old_str = _string(tool_input, "old_str")
        new_str = _string(tool_input, "new_str", default="")
        if not old_str:
            raise ToolError("`old_str` must not be empty")
        data, text = _read_text(path)
        positions = _find_all(text, old_str)
        if not positions:
            raise ToolError(f"No replacement was performed: old_str did not appear verbatim in {path}.")
        if len(positions) > 1:
            line_numbers = sorted({text.count("\n", 0, pos) + 1 for pos in positions})
            listed = ", ".join(map(str, line_numbers[:MAX_LISTED_LINES]))
            more = ", ..." if len(line_numbers) > MAX_LISTED_LINES else ""
            raise ToolError(
                f"No replacement was performed: old_str occurs {len(positions)} times in {path}, "
                f"at lines {listed}{more}. Include more context to make it unique."
            )
        pos = positions[0]
        new_text = text[:pos] + new_str + text[pos + len(old_str) :]
        self._write(path, new_text.encode("utf-8", errors="replace"), data)
        first = text.count("\n", 0, pos) + 1
        return self._edited(path, new_text, first, first + max(0, len(split_lines(new_str)) - 1))

    def _insert(self, path: Path, tool_input: Mapping[str, object]) -> ToolResult:
        key = "insert_text" if "insert_text" in tool_input else "new_str"
        insert_text = _string(tool_input, key, required_name="insert_text")
        insert_line = tool_input.get("insert_line")
        if not isinstance(insert_line, int) or isinstance(insert_line, bool):
            raise ToolError("`insert_line` is required: the line number to insert after (0 for the top)")
        data, text = _read_text(path)
        lines = split_lines(text)
        if not 0 <= insert_line <= len(lines):
            raise ToolError(
                f"`insert_line` {insert_line} is out of range: {path} has {len(lines)} lines, "
                f"so it must be between 0 and {len(lines)}"
            )
        if not insert_text.endswith("\n"):
            insert_text += "\n"
        if insert_line == len(lines) and lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        new_text = "".join(lines[:insert_line]) + insert_text + "".join(lines[insert_line:])
        self._write(path, new_text.encode("utf-8", errors="replace"), data)
        return self._edited(path, new_text, insert_line + 1, insert_line + insert_text.count("\n"))

    def _undo_edit(self, path: Path, tool_input: Mapping[str, object]) -> ToolResult:
        history = self._history.get(path)
        if not history:
            raise ToolError(f"No edit history for {path}; there is nothing to undo.")
        previous = history[-1]
        if previous is None:
            path.unlink(missing_ok=True)
            history.pop()
            return ToolResult(output=f"Last edit to {path} undone: it did not exist before and was removed.")
        path.write_bytes(previous)
        history.pop()
        body = self._limit(number_lines(split_lines(previous.decode("utf-8", errors="replace")), 1))
        return ToolResult(
            output=f"Last edit to {path} undone. Here's the result of running `cat -n` on {path}:\n{body}"
        )

    def _write(self, path: Path, data: bytes, previous: bytes | None) -> None:
        path.write_bytes(data)
        self._history.setdefault(path, []).append(previous)

    def _edited(self, path: Path, text: str, first: int, last: int) -> ToolResult:
        lines = split_lines(text)
        start = max(1, first - SNIPPET_LINES)
        end = min(len(lines), last + SNIPPET_LINES)
        snippet = number_lines(lines[start - 1 : end], start)
        return ToolResult(
            output=f"The file {path} has been edited. Here's the result of running `cat -n` on a snippet "
            f"of {path}:\n{snippet}\nReview the changes and make sure they are as expected. "
            "Edit the file again if necessary."
        )

    def _limit(self, text: str) -> str:
        if self.max_characters is None or len(text) <= self.max_characters:
            return text
        return (
            f"{text[: self.max_characters]}\n[... truncated: showing {self.max_characters} of {len(text)} "
            "characters; use `view_range` to see other lines]"
        )


def list_dir(path: Path) -> list[str]:
    """`path` and the non-hidden entries up to 2 levels below it; directories end with "/"."""
    entries = [f"{path}/"]

    def children(directory: Path) -> list[Path]:
        try:
            return sorted(p for p in directory.iterdir() if not p.name.startswith("."))
        except OSError:
            return []

    for child in children(path):
        is_dir = child.is_dir()
        entries.append(f"{child}/" if is_dir else str(child))
        if is_dir and not child.is_symlink():
            entries.extend(f"{sub}/" if sub.is_dir() else str(sub) for sub in children(child))
    return entries


def _string(
    tool_input: Mapping[str, object], key: str, default: str | None = None, required_name: str = ""
) -> str:
    value = tool_input.get(key, default)
    if not isinstance(value, str):
        raise ToolError(f"`{required_name or key}` is required: a string")
    return value


def _read(path: Path) -> bytes:
    if not path.exists():
        raise ToolError(f"The path {path} does not exist.")
    if not path.is_file():
        raise ToolError(f"{path} is not a regular file")
    return path.read_bytes()


def _read_text(path: Path) -> tuple[bytes, str]:
    data = _read(path)
    try:
        return data, data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{path} is not UTF-8 text; edit it with bash instead") from None


def _parse_range(view_range: object, line_count: int) -> tuple[int, int]:
    if (
        not isinstance(view_range, (list, tuple))
        or len(view_range) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in view_range)
    ):
        raise ToolError("`view_range` must be two integers [start, end]; end -1 means the end of the file")
    start, end = view_range
    if not 1 <= start <= max(line_count, 1):
        raise ToolError(f"`view_range` start {start} is out of range: the file has {line_count} lines")
    if end == -1:
        return start, line_count
    if end < start:
        raise ToolError(f"`view_range` end {end} is before its start {start}")
    return start, min(end, line_count)


def _find_all(text: str, sub: str) -> list[int]:
    positions = []
    pos = text.find(sub)
    while pos != -1:
        positions.append(pos)
        pos = text.find(sub, pos + 1)
    return positions
