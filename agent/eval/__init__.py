"""Evaluation: suites of tasks run many times on an engine (local processes or Ray), scored, reported.

- `attempt`: what one attempt runs (`AttemptSpec`) and how it ended (`Attempt`), both picklable;
- `sandbox`: one attempt on its own private virtual display, wherever it runs;
- `engines`: the `local` (threads or worker processes) and `ray` engines behind one interface;
- `worker`, `coordinator`: the code inside a worker process or Ray task, and the Ray run's shared state;
- `suite`: reading a suite (task files, folders, OSWorld JSON) into tasks and the attempts to run;
- `run`: running a suite and writing `suite.json`; `stats`: success rates and their intervals;
- `osworld`: OSWorld task JSON as deskpilot task files.
"""
