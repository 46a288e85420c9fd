"""Watching the workers of a data-parallel run: a heartbeat each, and the signals.

Each worker writes the time into its slot of a shared array every batch (engine/group.beat).
One that stops (SIGSTOP, a deadlock) leaves its slot unchanged while the others block in
their next all-reduce, and gloo would wait 30 minutes: the launcher instead ends the run once
a worker has made no progress for `trainer.stall_timeout_s` (or 5 times its longest gap
between batches so far, for slow steps), naming the stopped one. A signal asks the workers
to save and stop; if one of them is stuck, the run ends at once.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from dlx.core.errors import DlxError
from dlx.engine.group import DONE

# After a signal, how long healthy workers get to write their checkpoint and stop.
GRACE_S = 10.0


class Watch:
    """What the launcher watches besides exits: the workers' heartbeats, and a signal."""

    def __init__(self, beats: Any, timeout: float) -> None:
        self.beats, self.timeout = beats, timeout
        self.gaps = [0.0] * len(beats)  # each worker's longest gap between beats so far
        self.seen = list(beats)
        self.first: float | None = None  # when a worker first beat: training has begun
        self.signum: int | None = None
        self.signal_at = 0.0
        self.verdict: DlxError | None = None

    def signalled(self, signum: int) -> None:
        if self.signum is None:
            self.signum, self.signal_at = signum, time.monotonic()

    def check(self, procs: list[Any], alive: list[int]) -> DlxError | None:
        now, beats = time.monotonic(), list(self.beats)
        for r, b in enumerate(beats):
            if 0 < self.seen[r] < b < DONE:
                self.gaps[r] = max(self.gaps[r], b - self.seen[r])
        self.seen = beats
        if self.first is None and any(b > 0 for b in beats):
            self.first = now
        active = [r for r in alive if beats[r] < DONE]
        # a worker that has not beaten yet counts from the first one's first beat: after
        # it, every worker is past DDP's set-up, which waits for all of them
        last = {r: beats[r] or (self.first or now) for r in active}
        limit = {r: max(self.timeout, 5 * self.gaps[r]) for r in active}
        stuck = sorted((last[r], r) for r in active if self.first and now - last[r] > limit[r])
        if self.signum is not None:  # healthy workers save and stop; stuck ones never do
            quiet = sorted(
                (last[r], r) for r in active if now - last[r] > max(1.0, 3 * self.gaps[r])
            )
            if quiet or now - self.signal_at > GRACE_S:
                name = signal.Signals(self.signum).name
                culprit = next((r for _, r in quiet if _state(procs[r].pid) == "T"), None)
                culprit = culprit if culprit is not None else (quiet[0][1] if quiet else None)
                who = f"; worker rank {culprit} made no progress" if quiet else ""
                self.verdict = DlxError(f"stopped by {name}{who}; the workers were ended")
                self.verdict.exit_code = 128 + self.signum
        elif stuck:
            rank = next((r for _, r in stuck if _state(procs[r].pid) == "T"), stuck[0][1])
            why = "it is stopped (SIGSTOP)" if _state(procs[rank].pid) == "T" else "stuck"
            self.verdict = DlxError(
                f"trainer.devices={len(self.beats)}: worker rank {rank} made no progress for "
                f"{now - last[rank]:.0f} s ({why}), so the run was ended "
                f"(trainer.stall_timeout_s={self.timeout:g}); resume with trainer.resume=auto"
            )
            self.verdict.exit_code = 1
        return self.verdict


def _state(pid: int | None) -> str:
    """A process's state letter from /proc (T: stopped); '' where there is none."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""
