"""Secrets out of every child's reach: API keys and passwords never stay in the process environment.

A child process can read its parent's *initial* environment (`/proc/$PPID/environ`), and deleting
a variable from `os.environ` does not change that block. So the `deskpilot` command calls `seal()`
first thing: when its environment holds secret variables (names matching SECRET_ENV_PATTERNS, but
for the `*_BASE_URL` settings), the process re-executes itself once (`os.execve`, same interpreter
and arguments) with those variables removed, and hands their values over through an anonymous
memory file (memfd) whose descriptor number is in DESKPILOT_VAULT_FD; the new process reads it and
closes it before doing anything else. From then on the values live only in this module: no child
inherits them and `/proc/PID/environ` does not show them. On Linux the command's process is also
marked non-dumpable, so another process of the same (non-root) user cannot read its memory either
(where a key read from the keyring lives too); root can always read any process's memory, which no
program can prevent.

Code reads these variables with `getenv(name)` (the environment first, for in-process use such
as tests, then the sealed values), and passes them to SDKs explicitly. `secret_values()` lists
every known secret value (sealed, remembered, and secret-named variables still in the
environment), so tool output can be redacted (`redact`) before it is recorded or sent to a model.
`scrub(environ)` is the environment a child may get: every secret-named variable removed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import sys
import threading
from collections import ChainMap
from collections.abc import Iterable, Mapping
from typing import Any

# A variable is a secret when its name, upper-cased, matches any of these shell-style patterns.
# This is the one place the rule lives (the bash tool, task commands and sealing all use it).
SECRET_ENV_PATTERNS: tuple[str, ...] = (
    "ANTHROPIC_*",
    "OPENAI_*",
    "AWS_*",
    "*API_KEY*",
    "*APIKEY*",
    "*ACCESS_KEY*",
    "*PRIVATE_KEY*",
    "*TOKEN",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*CREDENTIAL*",
)
NOT_SECRET_SUFFIXES = ("_BASE_URL",)  # settings that match a pattern but hide nothing; kept for the SDKs
FD_VARIABLE = "DESKPILOT_VAULT_FD"
MIN_REDACTED_LENGTH = 4  # shorter values are not masked in tool output (every "a" would go)
MASK = "•••"

_sealed: dict[str, str] = {}
_remembered: set[str] = set()
_lock = threading.Lock()


def is_secret_env_name(name: str) -> bool:
    """True if an environment variable called `name` may hold a secret (see SECRET_ENV_PATTERNS)."""
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern) for pattern in SECRET_ENV_PATTERNS)


def sealable(name: str) -> bool:
    """True for a variable `seal` takes out of the environment: a secret name that is not a plain setting."""
    return is_secret_env_name(name) and not name.upper().endswith(NOT_SECRET_SUFFIXES)


def scrub(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` without any secret-named variable: what a child process may get."""
    return {name: value for name, value in environ.items() if not is_secret_env_name(name)}


def getenv(name: str, default: str | None = None) -> str | None:
    """The variable `name`: from the environment when it is there (in-process use), else the sealed value."""
    value = os.environ.get(name)
    if value is not None:
        return value
    with _lock:
        return _sealed.get(name, default)


def environ() -> Mapping[str, str]:
    """The environment as it was given to deskpilot: os.environ, then the sealed variables (read-only view)."""
    with _lock:
        return ChainMap(os.environ, dict(_sealed))


def remember(value: str | None) -> None:
    """Treat `value` as a secret from now on (e.g. an API key read from the keyring), for `redact`."""
    if value:
        with _lock:
            _remembered.add(value)


def secret_values(extra: Iterable[str] = ()) -> list[str]:
    """Every known secret value (sealed, remembered, secret-named variables in os.environ, `extra`),
    longest first, those shorter than MIN_REDACTED_LENGTH left out."""
    with _lock:
        values = set(_sealed.values()) | _remembered
    values |= {v for k, v in os.environ.items() if sealable(k)}
    values |= set(extra)
    return sorted((v for v in values if v and len(v) >= MIN_REDACTED_LENGTH), key=lambda v: (-len(v), v))


def named_secrets() -> dict[str, str]:
    """Secret values by variable name (sealed ones, secret-named variables in os.environ, remembered
    values as "API_KEY"), those shorter than MIN_REDACTED_LENGTH left out: what a recording masks."""
    with _lock:
        found = dict(_sealed)
        remembered = sorted(_remembered)
    found.update((k, v) for k, v in os.environ.items() if sealable(k))
    found.update((f"API_KEY_{n}" if n else "API_KEY", v) for n, v in enumerate(remembered))
    return {k: v for k, v in found.items() if v and len(v) >= MIN_REDACTED_LENGTH}


def redact(text: str | None, values: Iterable[str]) -> str | None:
    """`text` with every one of `values` (longest first, as `secret_values` gives them) replaced by MASK."""
    if not text:
        return text
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def sealed_names() -> list[str]:
    """The names of the variables this process holds sealed (for `deskpilot doctor` and tests)."""
    with _lock:
        return sorted(_sealed)


# ------------------------------------------------------------------------------ the re-exec


def seal(argv: list[str] | None = None) -> None:
    """Take the secret variables out of this process's environment block (see the module docstring).

    In the re-executed process: read the values from DESKPILOT_VAULT_FD and return. Otherwise,
    when there is anything to seal: re-execute (this call does not return). When sealing is not
    possible (no memfd, exec refused), the process goes on as it is, with a warning.
    """
    if FD_VARIABLE in os.environ:
        _receive(os.environ.pop(FD_VARIABLE))
        _not_dumpable()
        return
    _not_dumpable()  # also protects a key that comes from the keyring, which never was in the environment
    secrets = {name: value for name, value in os.environ.items() if sealable(name)}
    if not secrets:
        return
    memfd = getattr(os, "memfd_create", None)
    if memfd is None:
        print("deskpilot: cannot hide secret variables on this system (no memfd); child processes may read them",
              file=sys.stderr)
        return
    fd = memfd("deskpilot-vault", 0)  # no close-on-exec: the new image inherits it
    try:
        payload = json.dumps(secrets).encode("utf-8")
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
        env = {name: value for name, value in os.environ.items() if name not in secrets}
        env[FD_VARIABLE] = str(fd)
        args = argv if argv is not None else [sys.executable, *sys.orig_argv[1:]]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, args, env)
    except OSError as exc:
        os.close(fd)
        print(f"deskpilot: cannot hide secret variables ({exc}); child processes may read them", file=sys.stderr)


def _receive(number: str) -> None:
    """Read the sealed values from the inherited descriptor, then close it."""
    if not number.isdigit():
        return
    fd = int(number)
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    try:
        data: Any = json.loads(b"".join(chunks).decode("utf-8"))
    except ValueError:
        return
    if isinstance(data, dict):
        with _lock:
            _sealed.update({str(k): str(v) for k, v in data.items()})


def _not_dumpable() -> None:
    """prctl(PR_SET_DUMPABLE, 0) on Linux: other processes of the same user cannot read our memory."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass
