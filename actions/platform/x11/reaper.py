"""Process groups of a desktop, and the guard that ends them if their owner dies.

Every program a desktop starts runs in its own process group (its pid is the group id) and is
registered with the desktop's reaper: a tiny /bin/sh process in its own session that reads group
ids from a pipe. When the pipe closes without a final "done" line (the owner crashed, was
SIGKILLed or forgot to stop) it kills every registered group. So no orphans survive, whichever
thread created the desktop and however its owner ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

GRACE_S = 1.0  # seconds between SIGTERM and SIGKILL

# Lines "PGID" register a group, "-PGID" forget one, "done" means exit without killing.
_REAPER_SCRIPT = """
trap '' HUP INT
g=
while read -r p; do
  case $p in
    done) exit 0 ;;
    -*) n=; for q in $g; do [ "$q" = "${p#-}" ] || n="$n $q"; done; g=$n ;;
    *) g="$g $p" ;;
  esac
done
[ -n "$g" ] || exit 0
for q in $g; do kill -TERM -$q; done
i=0
while [ $i -lt 10 ]; do
  a=; for q in $g; do kill -0 -$q && a=1; done
  [ -n "$a" ] || exit 0
  sleep 0.1; i=$((i + 1))
done
for q in $g; do kill -KILL -$q; done
"""


class Reaper:
    """The guard process of one desktop. `register`/`forget` raise OSError once it has died."""

    def __init__(self) -> None:
        # In its own session, so neither a Ctrl-C nor a killpg meant for us reaches it.
        self._proc = subprocess.Popen(["/bin/sh", "-c", _REAPER_SCRIPT], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def _tell(self, line: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"{line}\n".encode())
        self._proc.stdin.flush()

    def register(self, pgid: int) -> None:
        """Kill group `pgid` if the owner dies."""
        self._tell(str(pgid))

    def forget(self, pgid: int) -> None:
        """Leave group `pgid` alone (it has ended; its id may be reused)."""
        self._tell(f"-{pgid}")

    def close(self, clean: bool) -> None:
        """End the guard: `clean` when every group has ended, else it kills what is left first."""
        try:
            if clean:
                self._tell("done")
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        except OSError:
            pass
        self._proc.wait(timeout=5)


def _exists(pgid: int) -> bool:
    """Whether any process (zombies included) is still in group `pgid`."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_groups(pgids: set[int]) -> set[int]:
    """The process groups among `pgids` that still have a running (non-zombie) member."""
    candidates = {pgid for pgid in pgids if _exists(pgid)}
    if not candidates:
        return set()
    import psutil

    live: set[int] = set()
    for proc in psutil.process_iter(["status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        with contextlib.suppress(OSError):
            pgid = os.getpgid(proc.pid)
            if pgid in candidates:
                live.add(pgid)
    return live


def kill_group(pgid: int, sig: int) -> None:
    """Send `sig` to group `pgid`, if it still exists."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def end_groups(procs: list[subprocess.Popen], grace: float = GRACE_S) -> None:
    """End the groups these group leaders head: SIGTERM, up to `grace` seconds, then SIGKILL; reap the leaders."""
    pgids = {p.pid for p in procs}
    for pgid in pgids:
        kill_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while True:
        for p in procs:
            p.poll()
        live = live_groups(pgids)
        if not live or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    for pgid in live:
        kill_group(pgid, signal.SIGKILL)
    for p in procs:
        p.wait(timeout=5)
