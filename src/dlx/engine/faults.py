"""Fault injection for the kill-and-resume tests: SIGKILL this process at a named point.

`DLX_FAULT=<point>:<n>` kills the run the n-th time it reaches <point> (start, step,
epoch_end, checkpoint_write, eval). Unset, every call is a dictionary miss.
"""

from __future__ import annotations

import os
import signal

_spec = os.environ.get("DLX_FAULT", "")
_point, _, _count = _spec.partition(":")
_remaining = {_point: int(_count or 1)} if _point else {}

ENABLED = bool(_remaining)


def reach(point: str) -> None:
    if point in _remaining:
        _remaining[point] -= 1
        if _remaining[point] <= 0:
            os.kill(os.getpid(), signal.SIGKILL)
