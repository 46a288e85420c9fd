"""Fault injection for the kill-and-resume tests: a signal to this process at a named point.

`DLX_FAULT=<point>:<n>[:<signal>]` sends <signal> (default KILL; TERM, INT ...) to the
process the n-th time it reaches <point>: start, step, epoch_end, checkpoint_write, eval,
test (before the test pass), figures (before the figures and loggers). Unset, every call is
a dictionary miss.
"""

from __future__ import annotations

import os
import signal

_point, _, _rest = os.environ.get("DLX_FAULT", "").partition(":")
_count, _, _signal = _rest.partition(":")
_remaining = {_point: int(_count or 1)} if _point else {}
_SIGNUM = getattr(signal, f"SIG{_signal or 'KILL'}")

ENABLED = bool(_remaining)


def reach(point: str) -> None:
    if point in _remaining:
        _remaining[point] -= 1
        if _remaining[point] == 0:
            os.kill(os.getpid(), _SIGNUM)
