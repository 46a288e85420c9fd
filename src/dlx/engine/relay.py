"""Rank 0's log records, from the workers of a data-parallel run to the launcher's handlers
(the console and the run's log file)."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any


class Relay:
    """Hands rank 0's log records, from a queue, to this process's loggers of the same name.

    Not logging's QueueListener: its stop() puts an end marker on the queue, which waits
    forever for the queue's lock when a worker was killed while writing a record. This one
    puts nothing, and stop() waits only so long for the records in flight: a record cut off
    by a kill would block the reading thread for good (a daemon, left behind).
    """

    def __init__(self, records: Any) -> None:
        self._records = records
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dlx-log-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                record = self._records.get(timeout=0.1)
            except queue.Empty:
                if self._done.is_set():  # every worker is gone and their records are read
                    return
                continue
            except (EOFError, OSError):
                return
            logging.getLogger(record.name).handle(record)

    def stop(self, timeout: float = 2.0) -> None:
        self._done.set()
        self._thread.join(timeout)
