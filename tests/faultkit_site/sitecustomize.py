"""Faults the fault-injection suite plants in an alcapctl subprocess; product code has no
hook for them.  tests/faultkit.py puts this directory first on the subprocess's PYTHONPATH.

* ``FAULTKIT_SCHEDULER_TIMEOUT=SECONDS``: every scheduler command times out after SECONDS
  (alcapctl waits 60 s), so a hanging fake scheduler hits the timeout quickly.
* ``FAULTKIT_RAISE=module:function``: that function raises RuntimeError when called.  A
  name that does not exist fails the import, so a renamed step cannot pass unnoticed.

The variables and this directory are then taken out of the environment, so the processes
alcapctl starts (the fake scheduler, the jobs) run as they would without the faults.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, NoReturn


def _raise_in(target: str) -> None:
    module_name, _, name = target.partition(":")
    module = importlib.import_module(module_name)
    getattr(module, name)  # AttributeError: the target was renamed, fix the test

    def injected(*args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError(f"injected fault in {target}")

    setattr(module, name, injected)


if os.environ.get("FAULTKIT_SCHEDULER_TIMEOUT"):
    from alcapctl.batch import command

    command.DEFAULT_TIMEOUT = float(os.environ["FAULTKIT_SCHEDULER_TIMEOUT"])
if os.environ.get("FAULTKIT_RAISE"):
    _raise_in(os.environ["FAULTKIT_RAISE"])
for variable in ("FAULTKIT_SCHEDULER_TIMEOUT", "FAULTKIT_RAISE"):
    os.environ.pop(variable, None)
_here = os.path.dirname(os.path.abspath(__file__))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != _here
)
