"""Apply: the chosen attempt's winning path, replayed onto the target display, and checked there.

When the chosen attempt succeeded, it is replayed onto the target (a Desktop: the `target=` of
run_rollouts, else `options.display`, host or `:N`) with agent.replay.replayer's `replay` (verify
mode: every target found again on the live screen). A task's `setup` runs on the target first (so
the application is there, with DESKPILOT_ATTEMPT=apply and DESKPILOT_ATTEMPT_DIR=<parent>/apply/files),
then the replay, then the task's checks, evaluated on the target; as in any task run the programs
the setup launched are stopped at the end. Only computer actions are replayed (replay skips bash
and editor calls). An attempt that did not succeed is never applied.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.errors import RunEnded
from agent.replay.replayer import replay
from agent.rollouts.attempts import ENV_ATTEMPT, ENV_ATTEMPT_DIR, Attempt, EnvDesktop
from agent.session import Callbacks, RunOptions, RunOutcome, Session
from agent.stepping import final_frame
from agent.tasks.runner import TaskRunner
from agent.tasks.schema import Task
from agent.types import Usage


class Applier:
    """Applies a chosen attempt onto `target`, recording under `<folder>/apply`.

    `interrupted` says when Ctrl-C interrupted it; `callbacks.stop` stops it, `callbacks.on_step`
    sees the replay's steps (each with `"attempt": "apply"`).
    """

    def __init__(self, task: Task | None, options: RunOptions, target: Any, folder: Path,
                 callbacks: Callbacks) -> None:
        self.task, self.options, self.target, self.folder, self.callbacks = task, options, target, folder, callbacks
        self.interrupted: str | None = None

    def apply(self, chosen: Attempt | None) -> dict:
        """Replay the chosen attempt onto the target (after the task's setup there), then check it there.

        Returns meta `applied`: display, status, message, the replay's and the task run's recordings
        (relative to the parent folder), the checks and the files folder.
        """
        info: dict[str, Any] = {"display": getattr(self.target, "display", None), "status": "skipped",
                                "message": "", "replay": None, "recording": None, "checks": [], "dir": None}
        if chosen is None or chosen.status != "succeeded" or chosen.recording is None:
            info["message"] = "nothing to apply: no attempt succeeded"
            return info
        files = self.folder / "apply" / "files"
        files.mkdir(parents=True, exist_ok=True)
        info["dir"] = str(files)
        env = {ENV_ATTEMPT: "apply", ENV_ATTEMPT_DIR: str(files)}
        desktop = EnvDesktop(self.target, env)
        options = replace(self.options, out=self.folder / "apply")
        try:
            if self.task is None:
                replayed = self._replay(chosen, options, desktop)
                info["replay"] = self._rel(replayed.recording)
                info["status"], info["message"] = replayed.result.status, replayed.result.message
                return info
            self._apply_task(chosen, options, desktop, env, info)
        except KeyboardInterrupt:
            self.interrupted = "interrupted by the user (Ctrl-C) while applying"
            info["status"], info["message"] = "stopped", "interrupted by the user"
        except Exception as exc:  # BadInput from replay, a display problem...
            info["status"], info["message"] = "error", f"{type(exc).__name__}: {exc}"
        return info

    def _apply_task(self, chosen: Attempt, options: RunOptions, desktop: Any, env: dict[str, str],
                    info: dict[str, Any]) -> None:
        task = self.task
        assert task is not None
        from agent.vault import getenv

        secrets = {name: getenv(name) or "" for name in task.secret_names if getenv(name) is not None}
        stop = self.callbacks.stop
        with Session(options, desktop=desktop, secrets=secrets, stop=stop) as session:
            session.tools["bash"].env.update(env)
            recorder = session.recorder("task", secrets, task=str(task.path or task.name), goal=task.goal, model=None,
                                        extra_meta={"apply_of": self._rel(chosen.recording)})
            info["recording"] = self._rel(recorder.path)
            runner = TaskRunner(task, session, recorder, Callbacks(stop=stop))
            checks: list[dict] = []
            final = None
            try:
                for number, item in enumerate(task.setup, 1):
                    runner.setup(number, item)
                replayed = self._replay(chosen, options, desktop)
                info["replay"] = self._rel(replayed.recording)
                if replayed.result.status != "succeeded":
                    status, message = replayed.result.status, f"the replay did not finish: {replayed.result.message}"
                else:
                    checks = [runner.check(item) for item in task.checks]
                    failed = [c for c in checks if not c["ok"]]
                    status = "failed" if failed else "succeeded"
                    message = ("checks failed on the target: " + "; ".join(f"{c['check']}: {c['detail']}"
                                                                           for c in failed) if failed else
                               f"replayed attempt {chosen.index}; {len(checks)} checks passed on the target")
            except RunEnded as end:
                status, message = end.status, str(end)
            except KeyboardInterrupt:
                self.interrupted = "interrupted by the user (Ctrl-C) while applying"
                status, message = "stopped", "interrupted by the user"
            except Exception as exc:  # BadInput from replay (an unreadable recording), a display problem
                status, message = "error", f"{type(exc).__name__}: {exc}"
            finally:
                final = final_frame(session.screen.grab)
                runner.stop_launched()
            recorder.set_meta(result=message)
            recorder.finish(status, error=None if status == "succeeded" else message, checks=checks,
                            final_frame=final)
            info.update(status=status, message=message, checks=checks)

    def _replay(self, chosen: Attempt, options: RunOptions, desktop: Any) -> RunOutcome:
        on_step = None
        if self.callbacks.on_step is not None:
            def on_step(line: dict, usage: Usage) -> None:
                self.callbacks.on_step({**line, "attempt": "apply"}, usage)
        return replay(chosen.recording, options, desktop=desktop, on_step=on_step, stop=self.callbacks.stop,
                      confirm_mode=self.callbacks.confirm_mode, asker=self.callbacks.asker)

    def _rel(self, path: Path | None) -> str | None:
        if path is None:
            return None
        try:
            return Path(path).relative_to(self.folder).as_posix()
        except ValueError:
            return str(path)
