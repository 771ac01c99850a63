"""The log digest's checkpoints, extended in the background while the service records: the
same checkpoints ``ingest`` extends at its end (`domain.services.extend_checkpoints`).

The recording (`domain.services.Recording`) tells how many events each batch recorded; once
the log holds `CHECKPOINT_EVERY` events past the last checkpoint, a daemon thread extends the
checkpoints to the head, outside every delivery's commit. A database that is away is logged
and tried again at the next batch.
"""

from __future__ import annotations

import logging
import threading

from domain import services
from domain.audit import CHECKPOINT_EVERY
from domain.errors import LedgerError, first_line
from domain.ledger import Ledger
from infrastructure.storage_errors import STORAGE_ERRORS, ErrorTypes

logger = logging.getLogger("partner_ledger.http")
WAKE_SECONDS = 1.0  # how often the thread looks whether it was told to stop
LOGGED_ERRORS: ErrorTypes = (*STORAGE_ERRORS, LedgerError, OSError)  # then tried again


class Checkpointer:
    """Extends the digest checkpoints on a daemon thread: at start, and whenever another
    ``every`` events were recorded after the last checkpoint."""

    def __init__(self, ledger: Ledger, *, every: int = CHECKPOINT_EVERY) -> None:
        self._ledger = ledger
        self._every = every
        self._guard = threading.Lock()
        self._pending = 0  # events after the last checkpoint, as far as this process knows
        self._due = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="digest-checkpoints", daemon=True)
        self.extended = 0  # checkpoints added so far

    def recorded(self, events: int) -> None:
        """Count a batch's recorded events (on the recording thread: only counts, signals)."""
        with self._guard:
            self._pending += events
            if self._pending >= self._every:
                self._due.set()

    def start(self) -> None:
        self._due.set()  # a ledger whose checkpoints fell behind catches up at start
        self._thread.start()

    def stop(self, *, timeout: float = 0.5) -> None:
        """Stop, waiting at most ``timeout`` seconds (a daemon thread: one stuck in the
        database never holds the process's exit)."""
        self._stop.set()
        self._due.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._due.wait(WAKE_SECONDS) or self._stop.is_set():
                continue
            self._due.clear()
            try:
                added, after = services.extend_checkpoints(self._ledger)
            except LOGGED_ERRORS as error:
                logger.warning("digest checkpoints: %s", first_line(error))
                continue
            self.extended += added
            with self._guard:
                self._pending = after
                if self._pending >= self._every:  # recorded meanwhile
                    self._due.set()
