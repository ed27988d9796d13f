"""YAML read safely into plain data, keeping the line of every key and item (for error messages).

`read_yaml(text)` parses one document with PyYAML's safe loader and returns a `YamlDocument`:
its `data` (dicts, lists, scalars) and `line_of(path)`, the 1-based line of the key or item at a
path such as `("steps", 2, "click")`. It refuses, as `YamlError` with every problem found:

- invalid YAML (a syntax error; `syntax` problems);
- a key that appears twice in one mapping (PyYAML would silently keep the last one);
- a tag other than the plain map, sequence and safe scalar tags (`!!python/object`, `!custom`);
- a recursive alias, and documents of more than MAX_NODES values (an alias bomb), counted while
  the text is parsed, so a huge document is refused after MAX_NODES values, not after all of them;
- text longer than MAX_CHARS characters (before parsing: kind "too_large"), control characters
  such as NUL, BEL or ESC (kind "control", naming the line, column and code point), and
  collections nested more than MAX_DEPTH levels deep (kind "too_deep"), which PyYAML would
  otherwise follow into a RecursionError.

Aliases and merge keys (`<<: *defaults`, explicit keys win) are read as PyYAML reads them.
With `mapping=True` the top level must be a mapping: an empty document or another top level
is refused before anything else is read (problem `kind` "empty" or "not_mapping").

A path is a tuple of keys (str) and list indices (int); `format_path` writes it as
`steps[2].click.index`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

MAX_NODES = 100_000
MAX_DEPTH = 64  # nested mappings and lists; a task or policy file needs fewer than 10
MAX_CHARS = 1 << 20  # 1 MiB of text
# what YAML 1.1 allows in a document (PyYAML refuses the rest with a traceback-worthy ReaderError)
_NOT_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")
_CONTROL_NAMES = {0: "NUL", 7: "BEL", 8: "BS", 0x0B: "VT", 0x0C: "FF", 0x1B: "ESC", 0x7F: "DEL"}

YamlPath = tuple[str | int, ...]
_MAP_TAGS = {"tag:yaml.org,2002:map"}
_SEQ_TAGS = {"tag:yaml.org,2002:seq"}
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class YamlProblem:
    """One thing wrong with a YAML text: its line, the path of the value concerned, and what.

    `kind` says what is wrong: "syntax" (invalid YAML), "too_large" (more than MAX_NODES values or
    MAX_CHARS characters), "too_deep" (nested more than MAX_DEPTH levels), "control" (a control character),
    "duplicate" (a key at `path` appears twice), "tag" (an unsupported tag), "alias" (a recursive
    alias), "value" (another key or value at `path` that cannot be read), "empty" or "not_mapping"
    (the top level, with `mapping=True`; `found` says what it is).
    """

    line: int
    path: YamlPath
    message: str
    kind: str = "value"
    found: str | None = None


class YamlError(ValueError):
    """A YAML text that cannot be used as it is; `problems` lists every problem found."""

    def __init__(self, problems: list[YamlProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"line {p.line}: {format_path(p.path) or 'top level'}: {p.message}"
                                   for p in problems))


@dataclass(frozen=True)
class YamlDocument:
    """A YAML document as plain data, with the line of every key and list item in it."""

    data: Any
    lines: dict[YamlPath, int] = field(default_factory=dict)

    def line_of(self, path: YamlPath) -> int | None:
        """The line of the key or item at `path` (`()`: the document's start); None when there is none."""
        return self.lines.get(tuple(path))

    def nearest_line(self, path: YamlPath, default: int = 1) -> int:
        """The line of `path`, else of the closest enclosing key or item that exists, else `default`."""
        found = tuple(path)
        while found not in self.lines and found:
            found = found[:-1]
        return self.lines.get(found, default)


def format_path(path: YamlPath) -> str:
    """('steps', 2, 'click', 'index') -> 'steps[2].click.index'; () -> ''."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def read_yaml(text: str, *, mapping: bool = False) -> YamlDocument:
    """Parse one YAML document into plain data and the line of every key/item path.

    Raises YamlError listing every problem (see the module docstring); `mapping=True` also
    refuses an empty document and a top level that is not a mapping.
    """
    import yaml

    if len(text) > MAX_CHARS:
        raise YamlError([YamlProblem(1, (), f"too large: {len(text)} characters, the limit is {MAX_CHARS} "
                                            f"({MAX_CHARS // (1 << 20)} MiB)", "too_large")])
    bad = _NOT_PRINTABLE.search(text)
    if bad:
        raise YamlError([_control_problem(text, bad.start())])
    loader = _make_loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise YamlError([_syntax_problem(exc)]) from None
        except yaml.YAMLError as exc:
            raise YamlError([YamlProblem(1, (), f"invalid YAML: {exc}", "syntax")]) from None
        except _TooDeep as exc:
            raise YamlError([YamlProblem(exc.line, (), f"nested more than {MAX_DEPTH} levels deep", "too_deep")]
                            ) from None
        except _TooLarge:
            raise YamlError([YamlProblem(1, (), f"more than {MAX_NODES} values", "too_large")]) from None
        if mapping and node is None:
            raise YamlError([YamlProblem(1, (), "the document is empty", "empty")])
        if mapping and not isinstance(node, yaml.MappingNode):
            found = "a list" if isinstance(node, yaml.SequenceNode) else f"a single value ({node.value!r})"
            raise YamlError([YamlProblem(_line(node), (), f"the top level must be a mapping, got {found}",
                                         "not_mapping", found)])
        if node is None:
            return YamlDocument(None, {(): 1})
        reader = _Reader(loader)
        reader.lines[()] = _line(node)
        try:
            data = reader.read(node, ())
        except yaml.MarkedYAMLError as exc:
            raise YamlError([_syntax_problem(exc)]) from None
        except _TooLarge:
            raise YamlError([YamlProblem(1, (), f"more than {MAX_NODES} values (alias bomb?)", "too_large")]) from None
        if reader.problems:
            raise YamlError(reader.problems)
        return YamlDocument(data, reader.lines)
    finally:
        loader.dispose()


class _Reader:
    """Turns a composed YAML node tree into plain data, recording the line of every key and item."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.lines: dict[YamlPath, int] = {}
        self.problems: list[YamlProblem] = []
        self.count = 0
        self.active: set[int] = set()

    def read(self, node: yaml.Node, path: YamlPath) -> Any:
        import yaml

        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge
        if isinstance(node, yaml.ScalarNode):
            try:
                return self.loader.construct_object(node, deep=True)
            except yaml.constructor.ConstructorError as exc:
                self.problems.append(YamlProblem(_line(node), path, f"cannot read this value: {exc.problem}"))
                return None
        if id(node) in self.active:
            self.problems.append(YamlProblem(_line(node), path, "recursive alias", "alias"))
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return self.sequence(node, path)
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def sequence(self, node: yaml.SequenceNode, path: YamlPath) -> list[Any]:
        if node.tag not in _SEQ_TAGS:
            self.problems.append(YamlProblem(_line(node), path, f"unsupported YAML tag {node.tag}", "tag"))
        items = []
        for i, item in enumerate(node.value):
            self.lines[(*path, i)] = _line(item)
            items.append(self.read(item, (*path, i)))
        return items

    def mapping(self, node: yaml.MappingNode, path: YamlPath) -> dict[str, Any]:
        import yaml

        if node.tag not in _MAP_TAGS:
            self.problems.append(YamlProblem(_line(node), path, f"unsupported YAML tag {node.tag}", "tag"))
        merged: dict[str, Any] = {}
        result: dict[str, Any] = {}
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *defaults`; explicit keys win, as in PyYAML
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        for key, value in self.mapping(source, path).items():
                            merged.setdefault(key, value)
                    else:
                        self.problems.append(YamlProblem(_line(source), path, "<< must merge a mapping"))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(YamlProblem(_line(key_node), path, "a key must be a plain name"))
                continue
            key = str(key_node.value)
            if key in first:
                self.problems.append(YamlProblem(_line(key_node), (*path, key),
                                                 f"duplicate key {key!r} (first at line {first[key]})", "duplicate"))
                continue
            first[key] = _line(key_node)
            self.lines[(*path, key)] = _line(key_node)
            result[key] = self.read(value_node, (*path, key))
        return {**{k: v for k, v in merged.items() if k not in result}, **result}


class _TooLarge(Exception):
    pass


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _counting_loader_class() -> type:
    """PyYAML's SafeLoader, composing with a bound on nesting depth and on the number of nodes."""
    import yaml

    class CountingLoader(yaml.SafeLoader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.depth = 0
            self.nodes = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise _TooLarge
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise _TooDeep(self.peek_event().start_mark.line + 1)
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return CountingLoader


_loader_class: type | None = None


def _make_loader(text: str) -> Any:
    """A bounded loader (see `_counting_loader_class`) for `text`; the class is built on first use."""
    global _loader_class
    if _loader_class is None:
        _loader_class = _counting_loader_class()
    return _loader_class(text)


def _control_problem(text: str, at: int) -> YamlProblem:
    """The first character YAML does not allow, named by line, column and code point."""
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    code = ord(text[at])
    name = _CONTROL_NAMES.get(code)
    what = f"U+{code:04X}" + (f" ({name})" if name else "")
    kind = "control character" if code < 0x20 or 0x7F <= code < 0xA0 else "character"
    return YamlProblem(line, (), f"{kind} {what} at column {column}: a YAML file holds printable text only",
                       "control")


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _syntax_problem(exc: yaml.MarkedYAMLError) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    message = exc.problem or "invalid YAML"
    if exc.context:
        context_line = exc.context_mark.line + 1 if exc.context_mark else line
        where = f" at line {context_line}" if context_line != line else ""
        message = f"{message} ({exc.context}{where})"
    return YamlProblem(line, (), f"invalid YAML: {message}", "syntax")
