"""The parser's compound commands and what a simple command changes in the shell's state.

Compound commands (`for`, `select`, `case`, `function`, `[[ ]]`, `{ }`) are read far enough to
find the commands inside them; `after_simple` finishes a simple command: assignments, `export`,
`alias`, `read`, `unset`, the alias its first word names, a call of the function being defined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.safety.shell_parse import _DECLARE, _KEYWORD, _REDIRECT, MAX_NODES, Node, TooComplex
from agent.safety.shell_words import DYN

if TYPE_CHECKING:
    from agent.safety.shell_parse import Parser


def read_compound(parser: Parser, keyword: str, stops: frozenset[str]) -> Node | None:
    """The rest of a compound command after `keyword` (pos after it)."""
    if keyword == "{":
        last = parser.parse_list(stops | {"}"})
        if parser.keyword_ahead() == "}":
            parser.pos += 1
        else:
            parser.incomplete = True
        parser.trailing_redirects(last)
        return last
    if keyword == "}":
        return None
    if keyword == "[[":
        return test_command(parser)
    if keyword in ("for", "select"):
        return for_loop(parser)
    if keyword == "case":
        return case_command(parser, stops)
    parser.skip_blanks()  # function NAME [()] BODY
    name = parser.read_word().value
    parser.skip_blanks()
    if parser.text.startswith("()", parser.pos):
        parser.pos += 2
    function_body(parser, name, stops)
    return None


def function_body(parser: Parser, name: str, stops: frozenset[str]) -> None:
    """The body of function `name`: its commands are read (they run when it is called)."""
    parser.skip_space()
    parser.functions.add(name)
    parser.function_stack.append(name)
    try:
        parser.parse_command(stops, None)
    finally:
        parser.function_stack.pop()


def test_command(parser: Parser) -> None:
    """[[ ... ]]: its words are read (substitutions in them run); < > && || ( ) ! are operators here."""
    while True:
        parser.skip_space()
        if parser.pos >= len(parser.text):
            parser.incomplete = True
            return None
        if parser.text.startswith("]]", parser.pos):
            parser.pos += 2
            return None
        if parser.peek() in "&|<>()!":
            parser.pos += 1
            continue
        start = parser.pos
        parser.read_word()
        if parser.pos == start:
            parser.pos += 1


def for_loop(parser: Parser) -> None:
    """for NAME [in WORDS]; or for ((...)): the loop variable's value is not known."""
    parser.skip_blanks()
    if parser.text.startswith("((", parser.pos):
        parser.pos += 1
        parser.balanced("(", ")")
        if parser.peek() == ")":
            parser.pos += 1
        return None
    name = parser.read_word().value
    parser.skip_space()
    values: list[str] = []
    if parser.keyword_ahead() == "in":
        parser.pos += 2
        while True:
            parser.skip_blanks()
            if parser.pos >= len(parser.text) or parser.peek() in ";\n&|)":
                break
            start = parser.pos
            values.extend(parser.read_word().fields())
            if parser.pos == start:
                parser.pos += 1
    parser.variables[name] = values[0] if len(set(values)) == 1 else DYN
    return None


def case_command(parser: Parser, stops: frozenset[str]) -> Node | None:
    """case WORD in PATTERN) LIST ;; ... esac."""
    parser.skip_blanks()
    parser.read_word()
    parser.skip_space()
    if parser.keyword_ahead() == "in":
        parser.pos += 2
    last = None
    while True:
        parser.skip_space()
        if parser.pos >= len(parser.text):
            parser.incomplete = True
            return last
        if parser.keyword_ahead() == "esac":
            parser.pos += 4
            return last
        if parser.peek() == "(":
            parser.pos += 1
        while True:  # the patterns: words separated by |, up to )
            parser.skip_blanks()
            start = parser.pos
            parser.read_word(")|")
            parser.skip_blanks()
            if parser.peek() == "|":
                parser.pos += 1
                continue
            if parser.peek() == ")" or parser.pos == start:
                parser.pos += 1
            break
        last = parser.parse_list(stops | {";;", "esac"}) or last
        for terminator in (";;&", ";;", ";&"):
            if parser.text.startswith(terminator, parser.pos):
                parser.pos += len(terminator)
                break


def read_subshell(parser: Parser, stops: frozenset[str]) -> Node | None:
    """( list ) or (( arithmetic )) (pos on the parenthesis)."""
    if parser.peek(1) == "(":
        parser.pos += 1
        body = parser.balanced("(", ")")
        if parser.peek() == ")":
            parser.pos += 1
        if "$(" in body or "`" in body:
            parser.scan(body)
        return None
    parser.pos += 1
    last = parser.parse_list(stops | {")"})
    if parser.peek() == ")":
        parser.pos += 1
    else:
        parser.incomplete = True
    parser.trailing_redirects(last)
    return last


def read_heredocs(parser: Parser) -> None:
    """The bodies of the here-documents announced on the line just ended (pos after its newline)."""
    text = parser.text
    for node, delimiter, strip, is_literal in parser.heredocs:
        lines, closed = [], False
        while parser.pos < len(text):
            end = text.find("\n", parser.pos)
            end = len(text) if end < 0 else end
            line, parser.pos = text[parser.pos:end], min(end + 1, len(text))
            line = line.lstrip("\t") if strip else line
            if line == delimiter:
                closed = True
                break
            lines.append(line)
        parser.incomplete = parser.incomplete or not closed
        body = "\n".join(lines) + "\n"
        node.stdin_text = body if is_literal else parser.expand_text(body)
    parser.heredocs = []


def trailing_redirects(parser: Parser, node: Node | None) -> None:
    """Redirections after a group or subshell: read (substitutions in them run), kept on its last command."""
    while True:
        parser.skip_blanks()
        match = _REDIRECT.match(parser.text, parser.pos)
        if not match or (match[1] in "<>" and parser.peek(len(match[0])) == "("):
            return
        parser.pos = match.end()
        parser.skip_blanks()
        target = parser.read_word()
        if node is not None:
            node.redirects.append((match[1], target.value))


def read_array(parser: Parser) -> str:
    """name=( words ) (pos on the parenthesis): the words are read; the value is not one string."""
    parser.pos += 1
    while True:
        parser.skip_space()
        if parser.pos >= len(parser.text):
            parser.incomplete = True
            break
        if parser.peek() == ")":
            parser.pos += 1
            break
        start = parser.pos
        parser.read_word()
        if parser.pos == start:
            parser.pos += 1
    return DYN


def after_simple(parser: Parser, node: Node, assignments: list[tuple[str, str]]) -> Node | None:
    """Finish a simple command: state changes (assignments, export, alias, read, unset), alias, recursion."""
    if not node.words:
        for name, value in assignments:
            parser.variables[name] = value
        if node.redirects:
            parser.nodes.append(node)
            return node
        return None
    first = node.words[0]
    if not first.quoted and not first.expanded and first.value in parser.aliases:
        node.alias = parser.aliases[first.value]
    if first.value in parser.function_stack:
        node.recursive = first.value
    argv = node.argv()
    name = argv[0].rsplit("/", 1)[-1] if argv else ""
    args = [a for a in argv[1:] if not a.startswith("-")]
    if name in _DECLARE or name == "alias":
        for arg in args:
            key, eq, value = arg.partition("=")
            if eq and _KEYWORD.fullmatch(key):
                (parser.aliases if name == "alias" else parser.variables)[key] = value
    elif name in ("read", "mapfile", "readarray", "getopts", "printf") and args:
        targets = args if name != "printf" else [argv[argv.index("-v") + 1]] if "-v" in argv[:-1] else []
        for arg in targets:
            parser.variables[arg] = DYN
    elif name in ("unset", "unalias"):
        for arg in args:
            (parser.aliases if name == "unalias" else parser.variables).pop(arg, None)
    parser.nodes.append(node)
    if len(parser.nodes) > MAX_NODES:
        raise TooComplex(f"more than {MAX_NODES} commands")
    return node


__all__ = ["after_simple", "case_command", "for_loop", "function_body", "read_array", "read_compound",
           "read_heredocs", "read_subshell", "test_command", "trailing_redirects"]
