"""What programs run: wrappers, shells, interpreters and the commands that run other commands.

`effects(name, argv)` says, for one command line, what else it makes run, without recursing:
("run", argv) a command it runs (sudo, env, timeout, xargs, find -exec, busybox...), ("shell", code)
shell code it runs (sh -c, eval, su -c, ssh HOST CMD, watch, flock -c...), ("stdin", lang) code it
reads from its standard input (`| bash`, `python3 -`), ("file", index, lang) a script file it runs
(so that `bash <(...)` is seen), ("code", lang, code) code given on an interpreter's command line
(python -c, perl -e, node -e, awk). `agent.safety.shell` follows them.
"""

from __future__ import annotations

import re
import shlex

from agent.safety.shell_words import DYN

Effect = tuple
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "fish", "csh", "tcsh",
                    "rbash", "lksh", "oksh", "pdksh"})
_PYTHON = re.compile(r"(?:python|pypy)[0-9.]*(?:-dbg)?")
# interpreter -> (options that take code, options that take another argument)
INTERPRETERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "perl": (frozenset({"-e", "-E"}), frozenset({"-I", "-M", "-m", "-x"})),
    "ruby": (frozenset({"-e"}), frozenset({"-I", "-r", "-C", "-E"})),
    "node": (frozenset({"-e", "--eval", "-p", "--print"}), frozenset({"-r", "--require", "--import"})),
    "nodejs": (frozenset({"-e", "--eval", "-p", "--print"}), frozenset({"-r", "--require"})),
    "deno": (frozenset({"eval"}), frozenset()),
    "bun": (frozenset({"-e", "--eval", "-p", "--print"}), frozenset()),
    "php": (frozenset({"-r", "-R", "-B", "-E"}), frozenset({"-c", "-d", "-f"})),
    "lua": (frozenset({"-e"}), frozenset({"-l"})),
    "luajit": (frozenset({"-e"}), frozenset({"-l"})),
    "Rscript": (frozenset({"-e"}), frozenset()),
    "osascript": (frozenset({"-e"}), frozenset({"-l"})),
    "tclsh": (frozenset(), frozenset()),
    "wish": (frozenset(), frozenset()),
    "jshell": (frozenset(), frozenset()),
    "irb": (frozenset(), frozenset()),
}
AWKS = frozenset({"awk", "gawk", "mawk", "nawk", "busybox-awk"})
# wrapper -> (short options that take an argument, long options that take one, positional words before the command)
WRAPPERS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "sudo": ("ugChpDrtUTR", ("--user", "--group", "--host", "--prompt", "--chdir", "--role", "--type",
                             "--other-user", "--command-timeout", "--close-from"), 0),
    "doas": ("uC", (), 0), "pkexec": ("", ("--user",), 0), "run0": ("ugD", ("--user", "--group", "--chdir"), 0),
    "env": ("uCS", ("--unset", "--chdir", "--split-string"), 0),
    "nice": ("n", ("--adjustment",), 0), "ionice": ("cnpPu", ("--class", "--classdata"), 0),
    "nohup": ("", (), 0), "setsid": ("", (), 0), "time": ("fo", ("--format", "--output"), 0),
    "timeout": ("sk", ("--signal", "--kill-after"), 1), "stdbuf": ("ioe", ("--input", "--output", "--error"), 0),
    "exec": ("a", (), 0), "builtin": ("", (), 0), "command": ("", (), 0), "unbuffer": ("", (), 0),
    "chrt": ("TPD", ("--sched-runtime", "--sched-period", "--sched-deadline"), 1), "taskset": ("", (), 1),
    "flock": ("wEc", ("--timeout", "--conflict-exit-code", "--command"), 1),
    "chroot": ("", ("--userspec", "--groups"), 1), "runuser": ("ugGlsw", ("--user", "--group", "--shell"), 0),
    "strace": ("abeEIoOpPsSuUX", (), 0), "ltrace": ("aeEfInosSuUX", (), 0), "catchsegv": ("", (), 0),
    "xvfb-run": ("nsfep", ("--server-num", "--server-args", "--auth-file", "--error-file"), 0),
    "dbus-run-session": ("", (), 0), "dbus-launch": ("", (), 0), "fakeroot": ("", (), 0),
    "firejail": ("", (), 0), "proot": ("rbwq", (), 0), "faketime": ("", (), 1), "torsocks": ("", (), 0),
    "proxychains": ("f", (), 0), "proxychains4": ("f", (), 0), "rlwrap": ("", (), 0), "caffeinate": ("", (), 0),
    "systemd-run": ("pEu", ("--property", "--setenv", "--unit", "--uid", "--gid", "--working-directory"), 0),
    "unshare": ("", (), 0), "nsenter": ("tS", ("--target",), 0), "sg": ("", (), 1), "valgrind": ("", (), 0),
    "gdb": ("", (), 0), "xargs": ("aIiEeLlnPsd", ("--arg-file", "--delimiter", "--max-args", "--max-procs",
                                                 "--max-lines", "--replace", "--eof", "--max-chars"), 0),
    "parallel": ("jSI", ("--jobs",), 0), "busybox": ("", (), 0), "toybox": ("", (), 0), "noglob": ("", (), 0),
    "doas-keepenv": ("", (), 0), "sem": ("j", (), 0), "ssh-agent": ("acEt", (), 0), "script": ("cEOT", (), 1),
}
_SSH_ARG = "BbcDEeFIiJLlmOoPpQRSWw"


def shell_script_options(argv: list[str]) -> tuple[str | None, int | None]:
    """A shell's -c code (or None) and the index of its script file argument (or None: it reads stdin)."""
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if arg.startswith("-") and arg != "-" or arg.startswith("+") and len(arg) > 1:
            if arg.startswith("--"):
                i += 2 if arg in ("--rcfile", "--init-file") else 1
                continue
            if "c" in arg[1:] and not arg.startswith("+"):
                return (argv[i + 1] if i + 1 < len(argv) else ""), None
            i += 2 if arg[-1] in "oO" else 1
            continue
        break
    if i < len(argv) and argv[i] != "-":
        return None, i
    return None, None


def peel(name: str, argv: list[str]) -> list[str]:
    """The command a wrapper runs (argv after its options and positional words); [] when none."""
    short, long, positional = WRAPPERS[name]
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if name == "env" and re.match(r"[A-Za-z_]\w*=", arg):
            i += 1
            continue
        if arg.startswith("--") and len(arg) > 2:
            i += 2 if arg in long else 1
            continue
        if arg.startswith("-") and len(arg) > 1:
            flags = arg[1:]
            i += 2 if flags and flags[-1] in short and len(flags) == 1 + _attached(flags, short) else 1
            continue
        break
    return argv[i + positional:]


def _attached(flags: str, short: str) -> int:
    """How many flags of a cluster come before the one taking an argument (so -oL is -o L, -xo FILE is -x -o)."""
    for k, flag in enumerate(flags):
        if flag in short:
            return k
    return len(flags)


def effects(name: str, argv: list[str]) -> list[Effect]:
    """What else the command `argv` (program `name`) makes run."""
    if name in SHELLS:
        code, script = shell_script_options(argv)
        if code is not None:
            return [("shell", code)]
        return [("file", script, "shell")] if script is not None else [("stdin", "shell")]
    if _PYTHON.fullmatch(name):
        return python_effects(argv)
    if name in INTERPRETERS:
        return interpreter_effects(name, argv)
    if name in AWKS:
        program = next((a for a in argv[1:] if not a.startswith("-")), None)
        return [] if "-f" in argv or program is None else [("code", "awk", program)]
    if name in ("eval", "trap"):
        return [("shell", " ".join(argv[1:]))] if name == "eval" else [("shell", argv[1])] if len(argv) > 1 else []
    if name in ("source", "."):
        return [("file", 1, "shell")] if len(argv) > 1 else []
    if name in ("su", "runuser", "sg", "flock", "script"):
        code = _code_option(argv)
        if code is not None:
            return [("shell", code)]
    if name == "fc" and any(a == "-s" or a.startswith("-e") for a in argv[1:]):
        return [("shell", DYN)]  # runs a command from the history
    if name == "ssh":
        return ssh_effects(argv)
    if name == "watch":
        inner = peel_simple(argv, "ndqx", ("--interval", "--differences"))
        return [("shell", " ".join(inner))] if inner else []
    if name == "find":
        return find_effects(argv)
    if name == "git":
        return git_effects(argv)
    if name in ("tar", "gtar", "bsdtar"):
        return [("shell", value) for arg in argv[1:] for option in _TAR_COMMANDS if arg.startswith(option)
                for value in [arg[len(option):]]]
    if name == "command" and any(a in ("-v", "-V") for a in argv[1:2]):
        return []
    if name == "env" and any(a in ("-S", "--split-string") or a.startswith(("-S", "--split-string=")) for a in argv):
        value = _option_value(argv, "-S", "--split-string")
        return [("run", _split(value))]
    if name in ("busybox", "toybox"):
        return [("run", argv[1:])] if len(argv) > 1 else []
    if name in WRAPPERS:
        inner = peel(name, argv)
        if name == "xargs":
            inner = (inner or ["echo"]) + [DYN]
        if name in ("sudo", "run0") and not inner and any(a in ("-s", "-i", "--shell", "--login") for a in argv):
            return []
        return [("run", inner)] if inner else []
    return []


def _code_option(argv: list[str]) -> str | None:
    """The code of -c CODE, a cluster ending in c (-qc CODE), --command CODE or --command=CODE; None if none."""
    for i, arg in enumerate(argv[1:], 1):
        if arg.startswith("--command="):
            return arg.split("=", 1)[1]
        if arg == "--command" or (arg.startswith("-") and not arg.startswith("--") and arg.endswith("c")):
            return argv[i + 1] if i + 1 < len(argv) else ""
    return None


def _option_value(argv: list[str], short: str, long: str) -> str:
    for i, arg in enumerate(argv):
        if arg in (short, long):
            return argv[i + 1] if i + 1 < len(argv) else ""
        if arg.startswith(long + "="):
            return arg.split("=", 1)[1]
        if arg.startswith(short) and len(arg) > len(short) and short != "-c":
            return arg[len(short):]
    return ""


def _split(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError:
        return value.split()


def peel_simple(argv: list[str], short: str, long: tuple[str, ...]) -> list[str]:
    """argv after its options (those in `short`/`long` take an argument)."""
    i = 1
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        arg = argv[i]
        i += 2 if (arg in long or (len(arg) == 2 and arg[1] in short)) else 1
    return argv[i:]


def ssh_effects(argv: list[str]) -> list[Effect]:
    """ssh [options] HOST [COMMAND...]: the command runs in a shell on that host."""
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i][-1] in _SSH_ARG and len(argv[i]) == 2 else 1
    rest = argv[i + 1:]
    return [("shell", " ".join(rest))] if rest else []


def find_effects(argv: list[str]) -> list[Effect]:
    """find ... -exec CMD ARGS ; (also -execdir, -ok, -okdir): the commands it runs."""
    out: list[Effect] = []
    i = 1
    while i < len(argv):
        if argv[i] in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            while j < len(argv) and argv[j] not in (";", "+"):
                j += 1
            if j > i + 1:
                out.append(("run", argv[i + 1:j]))
            i = j
        i += 1
    return out


_TAR_COMMANDS = ("--checkpoint-action=exec=", "--to-command=", "--use-compress-program=", "--info-script=",
                 "--new-volume-script=", "--rsh-command=")
_GIT_SHELL_KEYS = ("core.pager", "core.sshcommand", "core.editor", "core.fsmonitor", "core.hookspath",
                   "sequence.editor", "diff.external", "pager.", "credential.helper", "gpg.program", "alias.")


def git_effects(argv: list[str]) -> list[Effect]:
    """git -c KEY=VALUE for the settings git runs as shell commands (pager, ssh command, editor, `!` aliases)."""
    out: list[Effect] = []
    for i, arg in enumerate(argv[:-1]):
        if arg == "-c" and "=" in argv[i + 1]:
            key, value = argv[i + 1].split("=", 1)
            if key.lower().startswith(_GIT_SHELL_KEYS):
                out.append(("shell", value[1:] if value.startswith("!") else value))
    return out


def python_effects(argv: list[str]) -> list[Effect]:
    """python [-options] (-c CODE | -m MODULE | SCRIPT | - | nothing)."""
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-c" or (arg.startswith("-") and not arg.startswith("--") and arg.endswith("c") and len(arg) > 2):
            return [("code", "python", argv[i + 1] if i + 1 < len(argv) else "")]
        if arg.startswith("-c") and len(arg) > 2:
            return [("code", "python", arg[2:])]
        if arg == "-m" or (arg.startswith("-m") and len(arg) > 2):
            return []
        if arg in ("-W", "-X", "-Q"):
            i += 2
            continue
        if arg == "-":
            return [("stdin", "python")]
        if arg.startswith("-"):
            i += 1
            continue
        return [("file", i, "python")]
    return [("stdin", "python")]


def interpreter_effects(name: str, argv: list[str]) -> list[Effect]:
    """An interpreter's code from its command line (-e CODE), else its script file or its standard input."""
    code_options, arg_options = INTERPRETERS[name]
    out: list[Effect] = []
    i = 1
    while i < len(argv):
        arg = argv[i]
        cluster = arg.startswith("-") and not arg.startswith("--") and len(arg) > 2
        if arg in code_options or (cluster and "-" + arg[-1] in code_options):
            out.append(("code", name, argv[i + 1] if i + 1 < len(argv) else ""))
            i += 2
            continue
        if cluster and any(arg.startswith(opt) for opt in code_options if len(opt) == 2):
            out.append(("code", name, arg[2:]))
        elif arg in arg_options:
            i += 1
        elif not arg.startswith("-") and not out:
            return [("file", i, name)]
        i += 1
    return out or [("stdin", name)]


__all__ = ["AWKS", "INTERPRETERS", "SHELLS", "WRAPPERS", "Effect", "effects", "peel", "shell_script_options"]
