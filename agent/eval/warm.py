"""Imported by the local engine's fork server, once: what every attempt imports, so forked workers start with it.

This module does its work at import time on purpose: a fork server can only be given module names
to import (`set_forkserver_preload`), and every worker it forks starts with what they loaded. It
loads the attempt code; the libraries a run uses (numpy, OpenCV, mss, python-xlib, PyYAML); the
chosen platform backend's desktop code, through the platform factory (a virtual desktop object is
made, never started); and the default model's backend, through the registry (a model object, no
network, no credentials). What cannot load here is left for the attempt, which then says why.
benchmarks/eval_scaling.py measures what it saves per attempt ("fork_server_preload").
"""

from __future__ import annotations

import contextlib
import importlib

for _name in ("agent.eval.worker", "agent.tasks.loader", "agent.tools.bash", "agent.tools.editor", "vision.diff",
              "vision.locate.ocr", "vision.settle", "vision.capture", "numpy", "cv2", "mss", "yaml", "psutil",
              "Xlib.display", "Xlib.ext.xtest"):
    with contextlib.suppress(ImportError):
        importlib.import_module(_name)

with contextlib.suppress(Exception):
    from actions.platform import virtual_desktop

    virtual_desktop(None)
with contextlib.suppress(Exception):
    from agent.models import registry
    from agent.models.base import ModelConfig

    registry.create(ModelConfig())
