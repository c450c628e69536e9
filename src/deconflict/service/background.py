"""The background threads of a ``deconflict serve`` process: the webhook worker and the
overdue escalation sweep, each a pass repeated until the process stops."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class BackgroundLoop:
    """A daemon thread that runs a pass again at once while the pass says there is more to
    do, and otherwise every ``interval_s`` seconds, until ``stop``."""

    def __init__(self, name: str, *, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        raise NotImplementedError

    def repeat(self, one_pass: Callable[[], bool], logger: logging.Logger, failed: str) -> None:
        """Run ``one_pass`` (True: more is waiting) until stopped. A pass that raises is
        logged as ``failed`` and the loop goes on: a worker must outlive a database hiccup or
        a bad row, and what the pass did not settle is left for the next one."""
        while not self._stop.is_set():
            try:
                more = one_pass()
            except Exception:
                logger.exception(failed)
                more = False
            if not more:
                self._stop.wait(self.interval_s)
