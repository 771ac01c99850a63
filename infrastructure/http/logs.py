"""Logging for ``serve``: uvicorn's configuration, with repeated lines rate-limited.

At the open-file limit the service once wrote 56 MB of one identical traceback in 10 s. The
`RepeatFilter` on every handler lets through at most ``burst`` identical records (logger, level,
first line of the message, exception type) per ``window`` seconds; the first one let through
after a quiet spell says how many were left out. The access log is exempt: each of its lines is
one request, or one commit of deliveries (`committed_group`).
"""

from __future__ import annotations

import copy
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, get_args

from domain.rows import Outcome, OutcomeStatus

BURST = 5
WINDOW_SECONDS = 10.0
ACCESS_LOG = logging.getLogger("partner_ledger.http.access")
EXEMPT = (ACCESS_LOG.name,)
STATUSES: tuple[OutcomeStatus, ...] = get_args(OutcomeStatus)  # in the line's order


class RepeatFilter(logging.Filter):
    """Drops records of a kind already seen ``burst`` times in the current window."""

    def __init__(self, burst: int = BURST, window: float = WINDOW_SECONDS) -> None:
        super().__init__()
        self._burst = burst
        self._window = window
        self._seen: dict[tuple[Any, ...], list[float]] = {}  # kind -> [window start, n, left out]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name in EXEMPT:
            return True
        error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        # The first line only: asyncio appends the failing handle, whose time differs each time.
        kind = (record.name, record.levelno, record.getMessage().split("\n", 1)[0], error)
        now = time.monotonic()
        entry = self._seen.get(kind)
        if entry is None or now - entry[0] >= self._window:
            left_out = int(entry[2]) if entry is not None else 0
            if len(self._seen) > 1000:
                self._seen.clear()  # bounded memory: many kinds at once are not repeats
            self._seen[kind] = [now, 1, 0]
            if left_out:
                record.msg = f"{record.getMessage()} ({left_out} similar lines left out)"
                record.args = ()
            return True
        entry[1] += 1
        if entry[1] <= self._burst:
            return True
        entry[2] += 1
        return False


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, plus our loggers and asyncio's, all rate-limited."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"repeats": {"()": "infrastructure.http.logs.RepeatFilter"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["repeats"]
    for name in ("partner_ledger", "asyncio"):
        config["loggers"][name] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def committed_group(outcomes: Sequence[Outcome], seconds: float) -> None:
    """The access log's line for the deliveries of one commit, which are answered 200 (and
    400 for a body that is not JSON, which also has a line of its own): how many, what became
    of them, how long the commit took. One line per commit instead of one per delivery: at a
    few thousand deliveries a second, those lines cost the event loop a tenth of its time."""
    counts = Counter(outcome.status for outcome in outcomes)
    ACCESS_LOG.info(
        "POST /webhooks/capillary: %d committed (%s) in %.1f ms",
        len(outcomes),
        ", ".join(f"{counts[status]} {status}" for status in STATUSES if counts[status]),
        seconds * 1000,
    )
