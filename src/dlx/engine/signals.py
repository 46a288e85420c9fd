"""Graceful preemption: SIGTERM/SIGINT finish the current step, save, and exit non-zero.

Slurm (and most schedulers) send SIGTERM before killing a job; Ctrl-C sends SIGINT. The
first one sets a flag the loop reads after each optimizer step; a second one aborts at once.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopRequest:
    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # the second signal: stop now
            from dlx.core.errors import Interrupted

            self.restore()
            raise Interrupted(signum)
        self.signum = signum

    def __enter__(self) -> StopRequest:
        # Signal handlers can only be installed from the main thread (not in joblib workers).
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def __exit__(self, *exc: object) -> None:
        self.restore()
