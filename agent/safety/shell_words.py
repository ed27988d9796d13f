"""Shell words as bash reads them: quotes, escapes, expansions, substitutions, field splitting, braces.

A `Word` keeps its value after quote removal, with what cannot be known before the command runs
written as DYN (a command substitution whose output is not known, an unknown variable, `$1`) or
BENIGN (a variable whose value holds no shell syntax: `$HOME`, `$?`). `WordReader` is the part of
the parser (`agent.safety.shell_parse`) that reads one word; a command substitution inside a word
is parsed as commands by the parser it belongs to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.safety.shell_parse import Node

DYN = "\ue000"  # a character whose value is known only when the command runs
BENIGN = "\ue001"  # a character from a variable whose value holds no shell syntax ($HOME, $?, ...)
MARKERS = DYN + BENIGN
METACHARS = frozenset(" \t\n;&|()<>")
BENIGN_VARIABLES = frozenset({
    "HOME", "USER", "LOGNAME", "PWD", "OLDPWD", "TMPDIR", "HOSTNAME", "DISPLAY", "LANG", "LC_ALL", "TERM",
    "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "UID", "EUID", "PPID", "RANDOM",
    "SECONDS", "LINENO", "BASHPID", "COLUMNS", "LINES", "SHLVL", "VIRTUAL_ENV", "CONDA_PREFIX",
    "DESKPILOT_ATTEMPT", "DESKPILOT_ATTEMPT_DIR",
})
_ANSI = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
         "\\": "\\", "'": "'", '"': '"', "?": "?"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACES = re.compile(r"\{([^{}]*)\}")


@dataclass
class Word:
    """One word: its parts after quote removal, whether any was quoted, and what produced it."""

    raw: str = ""
    segments: list[tuple[str, bool]] = field(default_factory=list)  # (text, from an unquoted expansion)
    quoted: bool = False
    glob: bool = False  # an unquoted * ? or [ : names files, or a program, only when it runs
    expanded: bool = False  # some part came from a variable or a substitution
    psub: Node | None = None  # the word is <(...) or >(...): the file holds this command's output

    @property
    def value(self) -> str:
        """The word's text, markers standing for what is not known yet."""
        return "".join(text for text, _ in self.segments)

    def add(self, text: str, split: bool = False) -> None:
        """Append text (`split`: it came from an unquoted expansion, so whitespace separates fields)."""
        self.segments.append((text, split))

    def fields(self, ifs: str = " \t\n") -> list[str]:
        """The words this word becomes: unquoted expansions split on `ifs` characters, braces expanded."""
        splitter = re.compile("[" + re.escape(ifs) + "]+") if ifs else None
        out: list[str] = []
        current: list[str] = []
        solid = False  # the current field has a literal or quoted part: it exists even when empty
        for text, split in self.segments:
            if not split:
                current.append(text)
                solid = True
                continue
            parts = splitter.split(text) if splitter else [text]
            for k, part in enumerate(parts):
                if k:
                    if current and ("".join(current) or solid):
                        out.append("".join(current))
                    current, solid = [], False
                current.append(part)
        if "".join(current) or solid or self.quoted:
            out.append("".join(current))
        if "{" in self.raw and not self.quoted:
            out = [item for value in out for item in expand_braces(value)]
        return out


def expand_braces(text: str, limit: int = 64) -> list[str]:
    """Bash's brace expansion of `{a,b}` and `{1..3}` (the innermost first), up to `limit` words."""
    words = [text]
    for _ in range(8):
        changed, out = False, []
        for word in words:
            match = next((m for m in _BRACES.finditer(word) if "," in m[1] or ".." in m[1]), None)
            if match is None:
                out.append(word)
                continue
            changed = True
            inner = match[1]
            seq = re.fullmatch(r"(-?\d+|[A-Za-z])\.\.(-?\d+|[A-Za-z])", inner)
            if seq:
                a, b = seq[1], seq[2]
                if a.lstrip("-").isdigit() and b.lstrip("-").isdigit():
                    lo, hi = int(a), int(b)
                    items = [str(n) for n in range(lo, hi + (1 if hi >= lo else -1), 1 if hi >= lo else -1)][:limit]
                else:
                    lo, hi = ord(a), ord(b)
                    items = [chr(n) for n in range(lo, hi + (1 if hi >= lo else -1), 1 if hi >= lo else -1)][:limit]
            else:
                items = inner.split(",")
            out.extend(word[: match.start()] + item + word[match.end():] for item in items)
        words = out[:limit]
        if not changed:
            break
    return words


def decode_ansi_c(body: str) -> str:
    """The text of a $'...' string: backslash escapes decoded (\\n, \\x72, \\0162, \\u00e9, \\cA)."""
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char != "\\" or i + 1 >= len(body):
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ANSI:
            out.append(_ANSI[nxt])
            i += 2
        elif nxt in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = re.match(rf"[0-9a-fA-F]{{1,{size}}}", body[i + 2:])
            if digits:
                out.append(chr(min(int(digits[0], 16), 0x10FFFF)))
                i += 2 + len(digits[0])
            else:
                out.append("\\" + nxt)
                i += 2
        elif nxt in "01234567":
            digits = re.match(r"[0-7]{1,3}", body[i + 1:])
            assert digits is not None
            out.append(chr(int(digits[0], 8) & 0xFF))
            i += 1 + len(digits[0])
        elif nxt == "c" and i + 2 < len(body):
            out.append(chr(ord(body[i + 2]) & 0x1F))
            i += 3
        else:
            out.append("\\" + nxt)
            i += 2
    return "".join(out)


class WordReader:
    """Reads words from `self.text` at `self.pos`; mixed into the parser, which provides `substitution`."""

    text: str
    pos: int
    incomplete: bool
    variables: dict[str, str]

    def substitution(self, closer: str) -> Node | None:  # provided by the parser
        raise NotImplementedError

    def peek(self, n: int = 0) -> str:
        """The character `n` ahead ("" at the end)."""
        i = self.pos + n
        return self.text[i] if i < len(self.text) else ""

    def at_word_end(self) -> bool:
        """Whether the next character ends an unquoted word."""
        return self.pos >= len(self.text) or self.text[self.pos] in METACHARS

    def read_word(self, stops: str = "") -> Word:
        """One word from here to the next unquoted blank or metacharacter (or a character of `stops`)."""
        word, start = Word(), self.pos
        if self.peek() in "<>" and self.peek(1) == "(":
            self.pos += 2
            word.psub = self.substitution(")")
            word.add(DYN)
            word.expanded = True
        while not self.at_word_end() and self.peek() not in stops:
            char = self.peek()
            if char == "\\":
                if self.peek(1) == "\n":
                    self.pos += 2
                    continue
                word.quoted = True
                word.add(self.peek(1) or "")
                self.pos += 2
            elif char == "'":
                word.quoted = True
                word.add(self.until("'"))
            elif char == '"':
                word.quoted = True
                self.pos += 1
                self.double_quoted(word, '"')
            elif char == "$" and self.peek(1) == "'":
                word.quoted = True
                self.pos += 1
                word.add(decode_ansi_c(self.until("'", ansi=True)))
            elif char == "$" and self.peek(1) == '"':
                word.quoted = True
                self.pos += 2
                self.double_quoted(word, '"')
            elif char in "$`":
                self.expansion(word, quoted=False)
            elif char in "*?[" or (char in "@!+" and self.peek(1) == "("):
                word.glob = word.glob or char != "[" or self.closes_bracket()
                if self.peek(1) == "(" and char in "*?@!+":
                    self.pos += 1
                    word.add(char + "(" + self.balanced("(", ")") + ")")
                else:
                    word.add(char)
                    self.pos += 1
            else:
                word.add(char)
                self.pos += 1
        word.raw = self.text[start:self.pos]
        return word

    def closes_bracket(self) -> bool:
        """Whether the `[` at pos opens a bracket expression (a `]` follows in the same word): `[` alone is test."""
        end = self.pos + 1
        while end < len(self.text) and self.text[end] not in METACHARS:
            if self.text[end] == "]":
                return True
            end += 1
        return False

    def until(self, closer: str, ansi: bool = False) -> str:
        """The text from after the opening quote (at pos) to `closer`; pos after it."""
        self.pos += 1
        i = self.pos
        while i < len(self.text) and self.text[i] != closer:
            i += 2 if ansi and self.text[i] == "\\" else 1
        body = self.text[self.pos:min(i, len(self.text))]
        if i >= len(self.text):
            self.incomplete = True
        self.pos = min(i + 1, len(self.text))
        return body

    def balanced(self, opener: str, closer: str) -> str:
        """Raw text up to the matching `closer` (pos just after the opener); pos after it."""
        depth, i = 1, self.pos + 1 if self.peek() == opener else self.pos
        start = i
        while i < len(self.text):
            c = self.text[i]
            if c == "\\":
                i += 2
                continue
            if c in "'\"":
                j = self.text.find(c, i + 1)
                i = len(self.text) if j < 0 else j + 1
                continue
            if c == opener:
                depth += 1
            elif c == closer:
                depth -= 1
                if depth == 0:
                    self.pos = i + 1
                    return self.text[start:i]
            i += 1
        self.incomplete = True
        self.pos = len(self.text)
        return self.text[start:]

    def double_quoted(self, word: Word, closer: str) -> None:
        """The inside of "..." (pos after the opening quote) up to `closer`; pos after it."""
        while self.pos < len(self.text) and self.peek() != closer:
            char = self.peek()
            if char == "\\" and self.peek(1) in '$`"\\\n':
                if self.peek(1) != "\n":
                    word.add(self.peek(1))
                self.pos += 2
            elif char in "$`":
                self.expansion(word, quoted=True)
            else:
                word.add(char)
                self.pos += 1
        if self.pos >= len(self.text):
            self.incomplete = True
        self.pos += 1

    def expansion(self, word: Word, quoted: bool) -> None:
        """$name, ${...}, $(...), $((...)), `...` at pos."""
        split = not quoted
        if self.peek() == "`":
            self.pos += 1
            node = self.substitution("`")
            word.expanded = True
            word.add(self.output_of(node), split)
            return
        nxt = self.peek(1)
        if nxt == "(" and self.peek(2) == "(":
            self.pos += 1
            body = self.balanced("(", ")")
            word.expanded = True
            word.add(DYN if "$(" in body or "`" in body else BENIGN, split)
            return
        if nxt == "(":
            self.pos += 2
            node = self.substitution(")")
            word.expanded = True
            word.add(self.output_of(node), split)
            return
        if nxt == "{":
            self.pos += 1
            body = self.parameter()
            word.expanded = True
            word.add(self.lookup(body[0]) if body[1] else DYN, split)
            return
        name = _NAME.match(self.text, self.pos + 1)
        if name:
            self.pos = name.end()
            word.expanded = True
            word.add(self.lookup(name[0]), split)
        elif nxt and nxt in "?#$!-0123456789@*_":
            self.pos += 2
            word.expanded = True
            word.add(BENIGN if nxt in "?#$!-" else DYN, split)
        else:
            word.add("$")
            self.pos += 1

    def parameter(self) -> tuple[str, bool]:
        """${...} at pos (on the brace): (its body, whether it is a plain ${name}); substitutions inside run."""
        body = self.balanced("{", "}")
        if any(opener in body for opener in ("$(", "`", "<(", ">(")):
            self.scan(body)
        return body, _NAME.fullmatch(body) is not None

    def scan(self, text: str) -> None:  # provided by the parser: run the substitutions inside `text`
        raise NotImplementedError

    def lookup(self, name: str) -> str:
        """A variable's value as far as it is known."""
        if name in self.variables:
            return self.variables[name]
        return BENIGN if name in BENIGN_VARIABLES else DYN

    def output_of(self, node: Node | None) -> str:
        """What a command substitution gives: its static output (trailing newlines removed) or DYN."""
        from agent.safety.shell_parse import static_output

        out = static_output(node) if node is not None else None
        return DYN if out is None else out.rstrip("\n")


def has_markers(text: str, benign_ok: bool = False) -> bool:
    """Whether `text` holds a DYN marker (or, unless `benign_ok`, a BENIGN one)."""
    return DYN in text or (not benign_ok and BENIGN in text)


def literal(text: str) -> Any:
    """A Word of plain text (for commands built from another language's literals)."""
    word = Word(raw=text)
    word.add(text)
    return word


__all__ = ["BENIGN", "BENIGN_VARIABLES", "DYN", "MARKERS", "Word", "WordReader", "decode_ansi_c", "expand_braces",
           "has_markers", "literal"]
