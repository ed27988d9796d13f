"""What a shell command would run, read statically: the policy judges these commands, not the text as written.

`analyse(code, state)` parses the code as bash does (`agent.safety.shell_parse`) and follows
everything that makes another command run (`agent.safety.shell_programs`,
`agent.safety.interpreters`): wrappers (sudo, env, timeout, xargs, busybox, find -exec), shells
given code (`sh -c`, `eval`, `su -c`, `ssh HOST CMD`, `watch`), shells and interpreters reading a
script from a pipe, a here-document or `<(...)`, aliases, and code on an interpreter's command
line. The result lists every command that would run (`Command`, its words after expansion) and
the findings: what cannot be judged before it runs.

Findings (the policy's `finding` matcher names them):
- `dynamic-command`: the program to run, or the code a shell or interpreter runs, is computed
  when it runs: a command substitution or unknown variable as the command name, a glob in it,
  `eval` of something computed, data decoded or fetched and piped into a shell;
- `recursive-function`: a shell function that calls itself (the fork bomb `:(){ :|:& };:`);
- `interpreter-code`: code on an interpreter's command line (perl -e, node -e, awk, python -c
  that does not parse) that runs commands, kills, deletes trees or evaluates code in a way that
  cannot be read.

`ShellState` is what a shell remembers between commands (variables, aliases, functions): the
bash tool's shell and each terminal window keep one, so `x=rm` in one call and `$x -rf ~` in the
next are read together.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from agent.safety.interpreters import other_code, python_code
from agent.safety.shell_parse import Node, Parser, TooComplex, static_output
from agent.safety.shell_programs import effects
from agent.safety.shell_words import BENIGN, DYN, Word, has_markers

FINDINGS = ("dynamic-command", "recursive-function", "interpreter-code")
MAX_DEPTH = 8  # code inside code inside code ...
MAX_COMMANDS = 2000
_WORD_CHARS = str.maketrans({" ": "\u00a0", "\t": "\u00a0", "\n": "\u00a0", ";": "\uff1b", "&": "\uff06",
                             "|": "\uff5c", "(": "\uff08", ")": "\uff09", "<": "\uff1c", ">": "\uff1e",
                             "`": "\uff40", "'": "\uff07", '"': "\uff02", DYN: "\u2026", BENIGN: "$X"})


@dataclass
class ShellState:
    """What a shell remembers between commands: variables (values as far as known), aliases, functions,
    and the files its commands wrote (path as written -> content as far as known, DYN where not)."""

    variables: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    functions: set[str] = field(default_factory=set)
    files: dict[str, str] = field(default_factory=dict)

    def copy(self) -> ShellState:
        """An independent copy."""
        return ShellState(dict(self.variables), dict(self.aliases), set(self.functions), dict(self.files))


@dataclass(frozen=True)
class Command:
    """One command that would run: its words after expansion, and its redirections."""

    argv: tuple[str, ...]
    redirects: tuple[tuple[str, str], ...] = ()

    def line(self) -> str:
        """The command as one line for the policy's regexes: words apart, nothing inside a word looks like syntax."""
        words = [render(word) for word in self.argv]
        words += [f"{op} {render(target)}" for op, target in self.redirects]
        return " ".join(words)


def render(word: str) -> str:
    """One word with blanks and shell syntax replaced by look-alikes, unknown parts as `…`."""
    return word.translate(_WORD_CHARS) if word else "''"


@dataclass
class Analysis:
    """Every command the code would run, what cannot be judged (finding -> why), and the state after it."""

    commands: list[Command]
    findings: dict[str, str]
    incomplete: bool  # the code ends inside a quote, a here-document or after | && \ : a terminal waits for more
    state: ShellState


def analyse(code: str, state: ShellState | None = None) -> Analysis:
    """Read `code` as bash would (with `state` from earlier commands of the same shell); never raises."""
    judge = _Judge((state or ShellState()).copy())
    try:
        judge.code(code, 0)
    except (TooComplex, RecursionError) as exc:
        judge.find("dynamic-command", f"the command is too complex to check ({exc or 'nested too deeply'})")
    return Analysis(judge.commands, judge.findings, judge.incomplete, judge.state)


class _Judge:
    """Follows commands into what they run."""

    def __init__(self, state: ShellState) -> None:
        self.state = state
        self.commands: list[Command] = []
        self.findings: dict[str, str] = {}
        self.incomplete = False

    def find(self, name: str, why: str) -> None:
        """Note a finding (the first reason is kept)."""
        self.findings.setdefault(name, why)

    def add(self, command: Command) -> None:
        """A command that would run."""
        if len(self.commands) >= MAX_COMMANDS:
            raise TooComplex(f"more than {MAX_COMMANDS} commands")
        self.commands.append(command)

    def code(self, code: str, depth: int, origin: str | None = None) -> None:
        """Shell code that runs; `origin` says what runs it (None: the command itself)."""
        if depth > MAX_DEPTH:
            self.find("dynamic-command", "code nested in code too deeply to check")
            return
        if origin is not None and DYN in code:
            self.find("dynamic-command", f"{origin} is built when it runs: {shown(code)}")
        if depth == 0:
            state = self.state
        else:
            state = self.state.copy()
            state.aliases = {}
        parser = Parser(code, state.variables, depth, aliases=state.aliases, functions=state.functions)
        nodes = parser.parse()
        if depth == 0:
            self.incomplete = parser.incomplete
        for node in list(nodes):
            self.node(node, depth)

    def node(self, node: Node, depth: int) -> None:
        """One parsed simple command."""
        pairs = node.argv_words()
        redirects = tuple(node.redirects)
        if not pairs:
            if redirects:
                self.add(Command((), redirects))
            return
        if node.recursive:
            self.find("recursive-function", f"function {node.recursive!r} calls itself (a fork bomb)")
        argv = [text for text, _ in pairs]
        self.remember_writes(node, argv)
        if node.alias is not None:
            self.add(Command(tuple(argv), redirects))
            self.code(" ".join([node.alias, *(shlex.quote(a) for a in argv[1:])]), depth + 1, f"alias {argv[0]}")
            return
        self.argv(argv, [word for _, word in pairs], node, depth)

    def argv(self, argv: list[str], words: list[Word] | None, node: Node, depth: int) -> None:
        """A command that runs, and whatever it runs in turn."""
        if not argv:
            return
        if depth > MAX_DEPTH:
            self.find("dynamic-command", "commands wrapped in commands too deeply to check")
            return
        self.add(Command(tuple(argv), tuple(node.redirects)))
        name = argv[0].rsplit("/", 1)[-1]
        first = words[0] if words else None
        if "/" in argv[0] and _path_key(argv[0]) in self.state.files:  # ./script.sh written just before
            self.language("shell", self.state.files[_path_key(argv[0])], depth, f"the script {argv[0]}")
        if not name or has_markers(name) or (first is not None and first.glob):
            shown_name = first.raw if first is not None and first.raw else argv[0]
            self.find("dynamic-command", f"the program to run ({shown(shown_name)}) is known only when it runs")
            return
        for effect in effects(name, argv):
            kind = effect[0]
            if kind == "run":
                self.argv(list(effect[1]), _words_of(effect[1], argv, words), node, depth + 1)
            elif kind == "shell":
                self.code(effect[1], depth + 1, f"the code {name} runs")
            elif kind == "stdin":
                self.stdin(node, effect[1], name, depth)
            elif kind == "file":
                self.script_file(node, effect[1], effect[2], argv, words, depth)
            elif kind == "code":
                self.language(effect[1], effect[2], depth)

    def stdin(self, node: Node, language: str, name: str, depth: int) -> None:
        """A shell or interpreter that runs the code it reads from its standard input."""
        text = node.stdin_text if node.stdin_text is not None else static_output(node.stdin)
        if text is not None:
            self.language(language, text, depth, f"the code {name} reads")
            return
        if node.piped_by is not None:
            self.find("dynamic-command", f"{name} runs code that {node.piped_by} writes to it")
            return
        if node.stdin is None:
            for operator, target in node.redirects:
                if operator == "<&" or (operator in ("<", "<>") and (has_markers(target) or target.startswith(
                        ("/dev/tcp/", "/dev/udp/", "/proc/", "/dev/fd/")))):
                    self.find("dynamic-command", f"{name} runs code it reads from {shown(operator + ' ' + target)}")
            return  # a file (< script.sh) or the terminal: nothing to read here
        producer = node.stdin.argv()
        source = producer[0].rsplit("/", 1)[-1] if producer else "another command"
        if source == "cat" and producer[1:] and not any(has_markers(a) for a in producer[1:]):
            return  # cat script.sh | bash runs a file, like bash script.sh
        self.find("dynamic-command", f"{name} runs code that {shown(source)} prints")

    def script_file(self, node: Node, index: int, language: str, argv: list[str], words: list[Word] | None,
                    depth: int) -> None:
        """A script file given as an argument: `<(...)` and /dev/stdin are code seen here; a file is not."""
        word = words[index] if words is not None and index < len(words) else None
        path = argv[index] if index < len(argv) else ""
        if word is not None and word.psub is not None:
            text = static_output(word.psub)
            if text is None:
                source = (word.psub.argv() or ["another command"])[0].rsplit("/", 1)[-1]
                self.find("dynamic-command", f"{argv[0]} runs a script that {shown(source)} prints")
            else:
                self.language(language, text, depth, f"the script {argv[0]} runs")
        elif _path_key(path) in self.state.files:
            self.language(language, self.state.files[_path_key(path)], depth, f"the script {path}")
        elif path in ("/dev/stdin", "/proc/self/fd/0", "/dev/fd/0", "-"):
            self.stdin(node, language, argv[0].rsplit("/", 1)[-1], depth)
        elif DYN in path and language != "shell":
            self.find("dynamic-command", f"{argv[0]} runs a script whose name is known only when it runs")

    def language(self, language: str, code: str, depth: int, origin: str | None = None) -> None:
        """Code of `language` (shell, python, perl, ...) that runs."""
        if language == "shell":
            self.code(code, depth + 1, origin or "the code")
            return
        found = python_code(code) if language.startswith(("python", "pypy")) else other_code(language, code)
        for effect in found:
            if effect[0] == "run":
                self.argv(list(effect[1]), None, Node(piped_by=f"{language} code"), depth + 1)
            elif effect[0] == "shell":
                self.code(effect[1], depth + 1, f"the shell command in {language} code")
            elif effect[0] == "unclear":
                self.find("interpreter-code", effect[1])


    def remember_writes(self, node: Node, argv: list[str]) -> None:
        """Files this command writes (> FILE, >> FILE, tee FILE, curl -o FILE, wget -O FILE), with what it writes."""
        content = static_output(node)
        targets = [(target, op == ">>") for op, target in node.redirects if op in (">", ">>", ">|", "&>", "&>>")]
        name = argv[0].rsplit("/", 1)[-1]
        if name == "tee":
            content = node.stdin_text if node.stdin_text is not None else static_output(node.stdin)
            targets += [(a, "-a" in argv) for a in argv[1:] if not a.startswith("-")]
        elif name in ("curl", "wget"):
            content = None
            short, long = ("o", "--output") if name == "curl" else ("O", "--output-document")
            for i, arg in enumerate(argv[1:], 1):
                if arg.startswith(long + "="):
                    targets.append((arg.split("=", 1)[1], False))
                elif (arg == long or (arg.startswith("-") and not arg.startswith("--") and arg.endswith(short))) \
                        and i + 1 < len(argv):
                    targets.append((argv[i + 1], False))
                elif arg.startswith("-" + short) and len(arg) > 2:
                    targets.append((arg[2:], False))
        for target, append in targets:
            if target in ("/dev/null", "/dev/stdout", "/dev/stderr") or target.isdigit():
                continue
            key = _path_key(target)
            text = DYN if content is None else content
            self.state.files[key] = (self.state.files.get(key, "") + text) if append else text


def _path_key(path: str) -> str:
    """A file path as the shell's memory of written files keys it (./a.sh and a.sh are one file)."""
    return path[2:] if path.startswith("./") else path


def _words_of(inner: list[str], argv: list[str], words: list[Word] | None) -> list[Word] | None:
    """The words of `inner` when it is a slice of `argv` (a wrapper's command), else None."""
    if words is None or len(words) != len(argv):
        return None
    for k in range(len(argv) - len(inner) + 1):
        if argv[k:k + len(inner)] == inner:
            return words[k:k + len(inner)]
    return None


def shown(text: str, limit: int = 80) -> str:
    """Text for a message: markers as `…`, one line, cut to `limit`."""
    text = " ".join(text.replace(DYN, "…").replace(BENIGN, "$X").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["FINDINGS", "Analysis", "Command", "ShellState", "analyse", "render", "shown"]
