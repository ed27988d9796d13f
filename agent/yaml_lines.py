"""YAML read safely into plain data, keeping the line of every key and item (for error messages).

`read_yaml(text)` parses one document with PyYAML's safe loader and returns a `YamlDocument`:
its `data` (dicts, lists, scalars) and `line_of(path)`, the 1-based line of the key or item at a
path such as `("steps", 2, "click")`. It refuses, as `YamlError` with every problem found:

- invalid YAML (a syntax error; `syntax` problems);
- a key that appears twice in one mapping (PyYAML would silently keep the last one);
- a tag other than the plain map, sequence and safe scalar tags (`!!python/object`, `!custom`);
- a recursive alias, and documents of more than MAX_NODES values (an alias bomb).

Aliases and merge keys (`<<: *defaults`, explicit keys win) are read as PyYAML reads them.
With `mapping=True` the top level must be a mapping: an empty document or another top level
is refused before anything else is read (problem `kind` "empty" or "not_mapping").

A path is a tuple of keys (str) and list indices (int); `format_path` writes it as
`steps[2].click.index`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

MAX_NODES = 100_000

YamlPath = tuple[str | int, ...]
_MAP_TAGS = {"tag:yaml.org,2002:map"}
_SEQ_TAGS = {"tag:yaml.org,2002:seq"}
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class YamlProblem:
    """One thing wrong with a YAML text: its line, the path of the value concerned, and what.

    `kind` says what is wrong: "syntax" (invalid YAML), "too_large" (more than MAX_NODES values),
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

    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise YamlError([_syntax_problem(exc)]) from None
        except yaml.YAMLError as exc:
            raise YamlError([YamlProblem(1, (), f"invalid YAML: {exc}", "syntax")]) from None
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
