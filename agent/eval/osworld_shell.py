"""Commands and paths of OSWorld tasks as deskpilot task commands, with `/home/user` as the running user's home.

OSWorld tasks run in a VM whose user is `user`; here they run as whoever runs deskpilot, on
whichever machine the attempt lands (a Ray node's user may differ). So `/home/user` (and a
leading `~`) becomes `$HOME`, expanded when the command runs:

- a shell command line (OSWorld `shell: true`) keeps its text, with `/home/user` replaced by
  `$HOME` in a form that expands wherever it stands: `"$HOME"` outside quotes, `$HOME` inside
  double quotes, `'"$HOME"'` inside single quotes (closing and reopening them);
- an argument list (`shell: false`; a string is split like a shell would, as OSWorld does) stays
  a list when no argument needs the home folder, else becomes a shell command line with each
  argument quoted (`"$HOME"'/Desktop/a b.txt'`);
- a path for a `file`/`output` check becomes `$HOME/...` (checks expand `$VARS` when they run).
"""

from __future__ import annotations

import shlex

HOME = "/home/user"


def _boundary(text: str, end: int) -> bool:
    """Whether the home prefix ending at `end` ends a path component (not /home/username)."""
    return end == len(text) or not (text[end].isalnum() or text[end] in "_-.")


def map_shell_text(text: str) -> str:
    """A shell command line with every `/home/user` path replaced by the running user's `$HOME`."""
    out, state, i = [], None, 0
    while i < len(text):
        ch = text[i]
        if text.startswith(HOME, i) and _boundary(text, i + len(HOME)):
            out.append({None: '"$HOME"', '"': "$HOME", "'": "'\"$HOME\"'"}[state])
            i += len(HOME)
            continue
        if state is None and ch in "'\"":
            state = ch
        elif state == ch and (ch == "'" or text[i - 1] != "\\"):
            state = None
        elif state is None and ch == "\\" and i + 1 < len(text):
            out.append(text[i:i + 2])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def needs_home(arg: str) -> bool:
    """Whether an argument is a path under `/home/user` or `~`."""
    return any(arg == p or arg.startswith(p + "/") for p in (HOME, "~"))


def shell_word(arg: str) -> str:
    """One argument as a shell word; a path under `/home/user` or `~` starts with "$HOME"."""
    for prefix in (HOME, "~"):
        if arg == prefix or arg.startswith(prefix + "/"):
            rest = arg[len(prefix):]
            return '"$HOME"' + (shlex.quote(rest) if rest else "")
    return shlex.quote(arg)


def map_argv(argv: list[str]) -> str | list[str]:
    """An argument list: as it is, or as a shell command line when some argument needs `$HOME`."""
    if not any(needs_home(a) for a in argv):
        return argv
    return " ".join(shell_word(a) for a in argv)


def map_path(path: str) -> str:
    """A file path for a check: `/home/user/x` and `~/x` become `$HOME/x`."""
    for prefix in (HOME, "~"):
        if path == prefix or path.startswith(prefix + "/"):
            return "$HOME" + path[len(prefix):]
    return path
