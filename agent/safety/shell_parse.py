"""Parsing shell code into the simple commands it would run, as bash reads it.

`Parser(text, state).parse()` returns every simple command (`Node`) in the order written,
including those inside `$(...)`, backticks, `<(...)`, `${x:-$(...)}`, groups, subshells, function
bodies, loops, `if`, `case` and `[[ ]]`. Words are expanded with what is known statically
(`agent.safety.shell_words`): quotes removed, escapes decoded, variables assigned earlier in the
same code (or the same shell) substituted, `$(echo rm)` replaced by what it prints, unquoted
expansions split into fields. A pipeline links each command to the one whose output it reads;
here-documents and here-strings are kept as the command's input text. Reserved words are read as
bash does only where a command starts. Nothing here judges: `agent.safety.shell` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.safety.shell_words import DYN, Word, WordReader, decode_ansi_c

MAX_NESTING = 40  # substitutions inside substitutions; deeper code is reported as not understood
MAX_NODES = 2000
_SKIPPED_KEYWORDS = frozenset({"!", "time", "then", "else", "elif", "do", "if", "while", "until", "fi", "done",
                               "coproc", "esac", "in"})
_REDIRECT = re.compile(r"(?:\d+|\{[A-Za-z_]\w*\})?(<<<|<<-|<<|<>|<&|>&|>>|>\||&>>|&>|<|>)")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])?\+?=")
_KEYWORD = re.compile(r"[^\s;&|()<>]+")
_DECLARE = frozenset({"export", "declare", "typeset", "local", "readonly"})


class TooComplex(Exception):
    """The code nests deeper (or holds more commands) than the policy reads."""


@dataclass(eq=False)
class Node:
    """One simple command as written: its words, redirections and where its input comes from."""

    words: list[Word] = field(default_factory=list)
    redirects: list[tuple[str, str]] = field(default_factory=list)
    stdin: Node | None = None  # the command piped into this one
    stdin_text: str | None = None  # a here-document or here-string
    alias: str | None = None  # the alias its first word names
    recursive: str | None = None  # the function it calls from inside that function's own body
    depth: int = 0
    ifs: str = " \t\n"  # the field separators when the command was read
    piped_by: str | None = None  # a program (not a shell command) that writes to its input: unknown data

    def argv(self) -> list[str]:
        """The command's words after expansion and field splitting."""
        return [item for word in self.words for item in word.fields(self.ifs)]

    def argv_words(self) -> list[tuple[str, Word]]:
        """Each field with the word it came from."""
        return [(item, word) for word in self.words for item in word.fields(self.ifs)]


def static_output(node: Node | None, depth: int = 0) -> str | None:
    """What a command prints when that is known without running it (echo, printf, cat of a here-doc)."""
    if node is None or depth > 8:
        return None
    argv = node.argv()
    if not argv:
        return None
    name, args = argv[0].rsplit("/", 1)[-1], argv[1:]
    if name == "echo":
        newline, escapes = "\n", False
        while args and re.fullmatch(r"-[neE]+", args[0]):
            newline = "" if "n" in args[0] else newline
            escapes = "e" in args[0] or (escapes and "E" not in args[0])
            args = args[1:]
        text = " ".join(args)
        return (decode_ansi_c(text) if escapes else text) + newline
    if name == "printf" and args:
        fmt, rest = args[0], args[1:]
        if "%" not in fmt:
            return decode_ansi_c(fmt)
        if re.fullmatch(r"%[sb](\\n)?", fmt):
            end = "\n" if fmt.endswith("\\n") else ""
            return "".join(decode_ansi_c(a) if "b" in fmt else a + end for a in rest)
        return None
    if name == "cat" and not args:
        if node.stdin_text is not None:
            return node.stdin_text
        return static_output(node.stdin, depth + 1)
    return None


class Parser(WordReader):
    """Reads shell code into Nodes; `variables`, `aliases` and `functions` are the shell's state (updated)."""

    def __init__(self, text: str, variables: dict[str, str], depth: int = 0, nodes: list[Node] | None = None,
                 aliases: dict[str, str] | None = None, functions: set[str] | None = None) -> None:
        self.text, self.pos, self.depth = text, 0, depth
        self.variables = variables
        self.aliases = aliases if aliases is not None else {}
        self.functions = functions if functions is not None else set()
        self.nodes = nodes if nodes is not None else []
        self.incomplete = False
        self.heredocs: list[tuple[Node, str, bool, bool]] = []
        self.function_stack: list[str] = []
        self.nesting = 0
        if depth > MAX_NESTING:
            raise TooComplex("nested too deeply")

    def parse(self) -> list[Node]:
        """Every simple command of the code, in order."""
        while True:
            self.parse_list(frozenset())
            if self.pos >= len(self.text):
                break
            self.pos += 1  # a stray ) or } or ;; : skip it and go on
        if self.heredocs:
            self.incomplete = True
        return self.nodes

    def child(self, text: str) -> Parser:
        """A parser for code nested in this code, sharing its commands and state."""
        sub = Parser(text, self.variables, self.depth + 1, self.nodes, self.aliases, self.functions)
        sub.function_stack = self.function_stack
        return sub

    # --- lists, pipelines, commands -----------------------------------------------------------
    def skip_blanks(self) -> None:
        """Skip spaces, tabs and line continuations."""
        while self.pos < len(self.text):
            if self.text[self.pos] in " \t":
                self.pos += 1
            elif self.text.startswith("\\\n", self.pos):
                self.pos += 2
            else:
                break

    def skip_space(self) -> None:
        """Skip blanks, newlines (reading pending here-documents) and comments."""
        while True:
            self.skip_blanks()
            if self.peek() == "\n":
                self.newline()
            elif self.peek() == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def newline(self) -> None:
        """Consume a newline; the here-documents announced on its line follow it."""
        from agent.safety.shell_compound import read_heredocs

        self.pos += 1
        read_heredocs(self)

    def expand_text(self, text: str) -> str:
        """`text` with its expansions done as in a here-document (substitutions in it run)."""
        word = Word()
        sub = self.child(text)
        sub.double_quoted(word, "\x00")
        return word.value

    def scan(self, text: str) -> None:
        """Run the substitutions inside `text` (the body of a ${...})."""
        self.expand_text(text)

    def keyword_ahead(self) -> str | None:
        """The word at pos when it stands alone (a reserved word candidate)."""
        match = _KEYWORD.match(self.text, self.pos)
        return match[0] if match else None

    def parse_list(self, stops: frozenset[str]) -> Node | None:
        """Pipelines separated by ; & && || and newlines, up to a stop (")", "`", ";;", "}", "esac")."""
        last = None
        while True:
            self.skip_space()
            if self.pos >= len(self.text):
                return last
            char, two = self.peek(), self.text[self.pos:self.pos + 2]
            if char == ")" or (char == "`" and "`" in stops):
                return last
            if two in (";;", ";&"):
                if ";;" in stops:
                    return last
                self.pos += 2
            elif char in ";&|":
                self.pos += 2 if two in ("&&", "||", "|&") else 1
                if two in ("&&", "||"):
                    self.skip_space()
                    self.incomplete = self.incomplete or self.pos >= len(self.text)
            elif self.keyword_ahead() in stops:
                return last
            else:
                start = self.pos
                last = self.parse_pipeline(stops) or last
                if self.pos == start:
                    return last

    def parse_pipeline(self, stops: frozenset[str]) -> Node | None:
        """Commands joined by | or |&; each reads the output of the one before."""
        previous = None
        while True:
            node = self.parse_command(stops, previous)
            self.skip_blanks()
            if self.peek() == "|" and self.peek(1) != "|":
                self.pos += 2 if self.peek(1) == "&" else 1
                self.skip_space()
                self.incomplete = self.incomplete or self.pos >= len(self.text)
                previous = node
                continue
            return node

    def parse_command(self, stops: frozenset[str], stdin: Node | None) -> Node | None:
        """One command: a compound one (group, subshell, if, for, case, [[ ]], a function) or a simple one."""
        while True:
            self.skip_blanks()
            keyword = self.keyword_ahead()
            if keyword is None or keyword in stops:
                break
            if keyword in _SKIPPED_KEYWORDS or (keyword == "-p" and self.text[:self.pos].rstrip().endswith("time")):
                self.pos += len(keyword)
                continue
            if keyword in ("for", "select", "case", "function", "[[", "{", "}"):
                self.pos += len(keyword)
                return self.compound(keyword, stops)
            break
        if self.peek() == "(":
            return self.subshell(stops)
        return self.simple(stops, stdin)

    def subshell(self, stops: frozenset[str]) -> Node | None:
        """( list ) or (( arithmetic ))."""
        from agent.safety.shell_compound import read_subshell

        self.enter()
        try:
            return read_subshell(self, stops)
        finally:
            self.nesting -= 1

    def enter(self) -> None:
        """One level deeper; TooComplex beyond MAX_NESTING."""
        self.nesting += 1
        if self.nesting + self.depth > MAX_NESTING:
            raise TooComplex("nested too deeply")

    def compound(self, keyword: str, stops: frozenset[str]) -> Node | None:
        """The compound commands after their keyword."""
        from agent.safety.shell_compound import read_compound

        self.enter()
        try:
            return read_compound(self, keyword, stops)
        finally:
            self.nesting -= 1

    def trailing_redirects(self, node: Node | None) -> None:
        """Redirections after a group or subshell: read (substitutions in them run), kept on its last command."""
        from agent.safety.shell_compound import trailing_redirects

        trailing_redirects(self, node)

    def substitution(self, closer: str) -> Node | None:
        """$(...), <(...), >(...) (pos after the opener) or `...` (pos on it): the commands inside, parsed."""
        self.enter()
        try:
            if closer == "`":
                i = self.pos
                while i < len(self.text) and self.text[i] != "`":
                    i += 2 if self.text[i] == "\\" else 1
                body = re.sub(r"\\([`$\\])", r"\1", self.text[self.pos:i])
                self.incomplete = self.incomplete or i >= len(self.text)
                self.pos = min(i + 1, len(self.text))
                sub = self.child(body)
                last = sub.parse_list(frozenset())
                sub.parse()
                self.incomplete = self.incomplete or sub.incomplete
                return last
            last = self.parse_list(frozenset({")"}))
            if self.peek() == ")":
                self.pos += 1
            else:
                self.incomplete = True
            return last
        finally:
            self.nesting -= 1

    def simple(self, stops: frozenset[str], stdin: Node | None) -> Node | None:
        """Assignments, words and redirections up to an operator."""
        from agent.safety.shell_compound import after_simple, read_array

        ifs = self.variables.get("IFS", " \t\n")
        node = Node(stdin=stdin, depth=self.depth, ifs=ifs if DYN not in ifs else " \t\n" + "".join(
            chr(c) for c in range(0x21, 0x7F) if not chr(c).isalnum()))
        assignments: list[tuple[str, str]] = []
        while True:
            self.skip_blanks()
            if self.pos >= len(self.text) or self.peek() in "\n;&|)" or (self.peek() == "`" and "`" in stops):
                break
            match = _REDIRECT.match(self.text, self.pos)
            if match and not (match[1] in "<>" and self.peek(len(match[0])) == "("):
                self.redirect(node, match)
                continue
            if self.peek() == "(":
                if len(node.words) == 1 and re.match(r"\(\s*\)", self.text[self.pos:]):
                    from agent.safety.shell_compound import function_body

                    self.pos = self.text.index(")", self.pos) + 1
                    function_body(self, node.words[0].value, stops)
                    return None
                break
            start = self.pos
            word = self.read_word("`" if "`" in stops else "")
            if self.pos == start:
                self.pos += 1
                continue
            assignment = _ASSIGNMENT.match(word.raw) if not node.words else None
            if assignment:
                name = assignment[0].split("[")[0].rstrip("+=")
                value = word.value.split("=", 1)[1] if "=" in word.value else ""
                if word.raw.endswith("=") and self.peek() == "(":
                    value = read_array(self)
                assignments.append((name, value))
                continue
            node.words.append(word)
        return after_simple(self, node, assignments)

    def redirect(self, node: Node, match: re.Match[str]) -> None:
        """A redirection at pos: its target read; here-documents announced, here-strings kept as input."""
        operator = match[1]
        self.pos = match.end()
        self.skip_blanks()
        target = self.read_word()
        if operator in ("<<", "<<-"):
            self.heredocs.append((node, target.value, operator == "<<-", target.quoted))
        elif operator == "<<<":
            node.stdin_text = target.value + "\n"
        node.redirects.append((operator, target.value if target.value or target.raw else DYN))


__all__ = ["MAX_NESTING", "Node", "Parser", "TooComplex", "static_output"]
