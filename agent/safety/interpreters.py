"""Code given on an interpreter's command line: what it would run, as the shell commands it amounts to.

Python code (`python3 -c CODE`) is read with Python's own parser: `shutil.rmtree(p)` amounts to
`rm -r p`, `os.system(s)` and `subprocess.run(s, shell=True)` run the shell code `s`,
`subprocess.run([...])` and `os.exec*` run that argument list, `os.kill(-1, ...)` kills every
process; `exec`, `eval`, `compile`, `__import__`, `getattr` and `importlib` on values computed at
run time cannot be read, nor can code that does not parse. Other languages (perl, ruby, node, php,
lua, awk, ...) are scanned: the string literal given to `system(...)`, `exec*(...)`, backticks or
an awk pipe is shell code; any other call that runs commands, kills, evaluates code or deletes
trees leaves the code not understood. Each result is an effect as in `agent.safety.shell_programs`,
or ("unclear", why).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from agent.safety.shell_words import DYN

Effect = tuple
_SHELL_CALLS = frozenset({"os.system", "os.popen", "os.popen2", "os.popen3", "subprocess.getoutput",
                          "subprocess.getstatusoutput", "commands.getoutput", "commands.getstatusoutput",
                          "platform.popen", "asyncio.create_subprocess_shell"})
_ARGV_CALLS = frozenset({"subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
                         "subprocess.Popen", "asyncio.create_subprocess_exec", "pty.spawn", "os.posix_spawn",
                         "os.posix_spawnp"})
_EXEC_PREFIXES = ("os.exec", "os.spawn")
_TREE_DELETES = frozenset({"shutil.rmtree", "distutils.dir_util.remove_tree", "setuptools.dir_util.remove_tree"})
_DYNAMIC = frozenset({"exec", "eval", "compile", "execfile", "__import__", "importlib.import_module", "getattr",
                      "runpy.run_path", "runpy.run_module", "pickle.loads", "marshal.loads", "ctypes.CDLL",
                      "ctypes.cdll.LoadLibrary", "types.FunctionType", "code.interact", "os.fork"})
_RISKY_ATTRS = frozenset({"system", "popen", "rmtree", "check_output", "check_call", "Popen", "getoutput",
                          "execv", "execve", "execvp", "execl", "execlp", "spawnv", "spawnl", "killpg"})
_RISKY = re.compile(r"\b(?:system|exec\w*|spawn\w*|popen\w*|fork|rmtree|rm_rf?|remove_tree|rmSync|rimraf|"
                    r"child_process|shell_exec|passthru|proc_open|eval|Function|unlink\w*|remove_entry\w*|"
                    r"FileUtils|Open3|Kernel|kill|getline|qx|readpipe|syscall|removeSync|rmdirSync|do|require)\b|`|%x[{(\[]|\|\s*[\"']")
_LITERAL_CALL = re.compile(r"\b(?:system|exec\w*|spawn\w*|popen\w*|shell_exec|passthru|qx)\s*[({]?\s*"
                           r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')\s*[)}]?")
_BACKTICKS = re.compile(r"`([^`]*)`")
_AWK_PIPES = re.compile(r"\|\s*(\"(?:[^\"\\]|\\.)*\")|(\"(?:[^\"\\]|\\.)*\")\s*\|\s*getline")
_HARMLESS_WORDS = {"do", "require"}  # risky only with something else
_READS_CODE = frozenset({"sh", "bash", "dash", "zsh", "ksh", "fish", "csh", "tcsh", "python", "python3", "perl",
                         "ruby", "node", "php", "lua", "source", "eval", "xargs", "su", "sudo"})


def python_code(code: str, depth: int = 0) -> list[Effect]:
    """What Python code given with -c runs, as effects."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return other_code("python", code)
    reader = _PythonReader(depth)
    try:
        reader.visit(tree)
    except RecursionError:
        return [("unclear", "python code nested too deeply")]
    return reader.effects


class _PythonReader(ast.NodeVisitor):
    """Walks Python code, resolving imported names, and collects what its calls would run."""

    def __init__(self, depth: int) -> None:
        self.names: dict[str, str] = {}
        self.effects: list[Effect] = []
        self.depth = depth

    def visit_Import(self, node: ast.Import) -> None:  # noqa: N802 - ast's visitor names
        for alias in node.names:
            self.names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(
                ".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:  # noqa: N802
        for alias in node.names:
            if alias.name == "*":
                self.effects.append(("unclear", f"from {node.module} import *"))
                continue
            self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def dotted(self, expr: ast.expr) -> str | None:
        """The dotted name an expression stands for (imports resolved), or None."""
        if isinstance(expr, ast.Name):
            return self.names.get(expr.id, expr.id)
        if isinstance(expr, ast.Attribute):
            base = self.dotted(expr.value)
            return f"{base}.{expr.attr}" if base else None
        if isinstance(expr, ast.Call):
            func = self.dotted(expr.func)
            first = _literal(expr.args[0]) if expr.args else None
            if func in ("__import__", "importlib.import_module") and first and DYN not in first:
                return first
            if func == "getattr" and len(expr.args) >= 2:
                base, attr = self.dotted(expr.args[0]), _literal(expr.args[1])
                return f"{base}.{attr}" if base and attr and DYN not in attr else None
        return None

    def visit_Call(self, node: ast.Call) -> None:  # noqa: N802
        name = self.dotted(node.func)
        args = node.args
        first = args[0] if args else None
        shell = any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and not k.value.value)
                    for k in node.keywords)
        if name in _TREE_DELETES:
            self.effects.append(("run", ["rm", "-r", _literal(first) if first is not None else DYN]))
        elif name in _SHELL_CALLS or (name in _ARGV_CALLS and shell):
            self.effects.append(("shell", _literal(first) if first is not None else DYN))
        elif name in _ARGV_CALLS:
            self.effects.append(("run", _argv(args[:1])))
        elif (name or "").startswith(_EXEC_PREFIXES):  # os.execv(path, [args]), os.spawnl(mode, path, *args)
            self.effects.append(("run", _argv(a for a in args if not _spawn_mode(a))))
        elif name == "os.kill" and len(args) >= 1 and _literal(first) == "-1":
            self.effects.append(("run", ["kill", "-9", "-1"]))
        elif name in ("exec", "eval", "compile") and first is not None and isinstance(first, ast.Constant) and \
                isinstance(first.value, str) and self.depth < 4:
            self.effects.extend(python_code(first.value, self.depth + 1))
        elif name in _DYNAMIC:
            if not (name in ("__import__", "importlib.import_module", "getattr") and self.dotted(node)):
                self.effects.append(("unclear", f"python {name}() of something computed when it runs"))
        elif name is None and isinstance(node.func, ast.Attribute) and node.func.attr in _RISKY_ATTRS:
            self.effects.append(("unclear", f"python .{node.func.attr}() on an object computed when it runs"))
        self.generic_visit(node)


def _spawn_mode(expr: ast.expr) -> bool:
    """os.P_WAIT, os.P_NOWAIT, 0: a spawn mode, not a word of the command."""
    return (isinstance(expr, ast.Attribute) and expr.attr.startswith("P_")) or (
        isinstance(expr, ast.Constant) and isinstance(expr.value, int)) or isinstance(expr, ast.Dict)


def _literal(expr: ast.expr | None) -> str:
    """A Python expression's string value, DYN for what is computed when it runs."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, (str, bytes, int, float)):
        value = expr.value
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub) and isinstance(expr.operand, ast.Constant):
        return f"-{expr.operand.value}"
    if isinstance(expr, ast.JoinedStr):
        return "".join(_literal(v) if isinstance(v, ast.Constant) else DYN for v in expr.values)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return _literal(expr.left) + _literal(expr.right)
    return DYN


def _argv(args: Iterable[ast.expr]) -> list[str]:
    """A program's argument list from call arguments: a list or tuple literal, or the arguments themselves."""
    out: list[str] = []
    for arg in args:
        if isinstance(arg, (ast.List, ast.Tuple)):
            out.extend(DYN if isinstance(e, ast.Starred) else _literal(e) for e in arg.elts)
        elif isinstance(arg, ast.Starred):
            out.append(DYN)
        else:
            out.append(_literal(arg))
    return out or [DYN]


def other_code(language: str, code: str) -> list[Effect]:
    """Code of another language (or Python that does not parse): literal shell commands, else unclear if risky."""
    out: list[Effect] = []
    for match in _LITERAL_CALL.finditer(code):
        out.append(("shell", _unquote(match[1])))
    for match in _BACKTICKS.finditer(code):
        if language != "node":
            out.append(("shell", match[1]))
    if language == "awk":
        for match in _AWK_PIPES.finditer(code):
            command = _unquote(match[1] or match[2])
            if match[1] and command.split()[:1] and command.split()[0].rsplit("/", 1)[-1] in _READS_CODE:
                out.append(("unclear", f"awk prints into {command.split()[0]!r}, which runs what it reads"))
            out.append(("shell", command))
    risky = [m[0] for m in _RISKY.finditer(code) if m[0] not in _HARMLESS_WORDS]
    if language == "awk":
        risky = [r for r in risky if r in ("system", "getline") or r.startswith("|")]
    if language == "node":
        risky = [r for r in risky if r != "`"]
    if risky and not out:
        out.append(("unclear", f"{language} code that uses {risky[0].strip()!r}"))
    elif risky and any(r for r in risky if not _covered(r, code)):
        out.append(("unclear", f"{language} code that uses {risky[0].strip()!r} on something computed"))
    return out


def _covered(token: str, code: str) -> bool:
    """Whether every use of `token` in the code is a call with a literal string (read as shell code)."""
    if token == "`" or token.startswith("|"):
        return True
    uses = len(re.findall(r"\b" + re.escape(token) + r"\b", code))
    literal_uses = len(re.findall(r"\b" + re.escape(token) + r"\s*[({]?\s*[\"']", code))
    return uses == literal_uses


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


__all__ = ["other_code", "python_code"]
