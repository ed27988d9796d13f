"""Engines that run attempts: `local` (threads or worker processes of this machine) and `ray` (a Ray cluster).

All share one interface (`Engine.run`, see `base`); `make_engine` picks one by name:

- `local`, workers "processes" (the default for suites): one fresh worker process per attempt from a
  fork server, so a crash or a killed worker ends only its attempt (and is retried once);
- `local`, workers "threads" (the default for rollouts): attempts in this process, where they can
  use this process's objects (a model factory, the terminal for policy questions, live step lines);
- `ray`: each attempt a Ray task with `num_cpus`, on the cluster at `address` or on a local Ray
  started and stopped for the run. Ray is optional: `pip install 'deskpilot[ray]'`.
"""

from __future__ import annotations

from typing import Any

from agent.errors import BadInput
from agent.eval.engines.base import Engine

ENGINES = ("local", "ray")
WORKERS = ("processes", "threads")


def make_engine(name: str, parallel: int, *, workers: str = "processes", address: str | None = None,
                num_cpus: float = 1.0, callbacks: Any = None, model_factory: Any = None,
                env_names: tuple[str, ...] = ()) -> Engine:
    """The engine `name` running `parallel` attempts at a time. BadInput for an unknown name or a
    combination that cannot work (a model factory or an address where they do not apply)."""
    confirm_mode = getattr(callbacks, "confirm_mode", None)
    if name == "local":
        if address:
            raise BadInput("--ray-address needs --engine ray")
        if workers == "threads":
            from agent.eval.engines.threads import ThreadEngine

            return ThreadEngine(parallel, callbacks=callbacks, model_factory=model_factory)
        if workers != "processes":
            raise BadInput(f"unknown workers {workers!r}; use one of {', '.join(WORKERS)}")
        if model_factory is not None:
            raise BadInput("a model factory needs the local engine's threads (it cannot cross processes)")
        from agent.eval.engines.processes import ProcessEngine

        return ProcessEngine(parallel, confirm_mode=confirm_mode)
    if name == "ray":
        if model_factory is not None:
            raise BadInput("a model factory needs the local engine's threads (it cannot travel to Ray workers)")
        from agent.eval.engines.ray_cluster import RayEngine

        return RayEngine(parallel, address=address, num_cpus=num_cpus, confirm_mode=confirm_mode,
                         env_names=env_names)
    raise BadInput(f"unknown engine {name!r}; use one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "make_engine"]
