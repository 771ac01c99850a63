"""``serve --workers N``: worker processes end when their supervisor does, however it died.

uvicorn's supervisor stops its workers when it is told to (SIGTERM, SIGINT), but a supervisor
killed with SIGKILL leaves them serving, holding the port. Each worker therefore asks Linux to
send it SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``), and checks once that the
parent did not die before it asked. SIGTERM makes the worker drain and exit within its bound.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
logger = logging.getLogger("partner_ledger.http")


def exit_with_parent() -> None:
    """In a worker process (a multiprocessing child): get SIGTERM when the parent dies."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        logger.warning("cannot ask to end with the supervisor: errno %d", ctypes.get_errno())
        return
    if os.getppid() != parent.pid:  # it died before we asked: the signal will not come
        os.kill(os.getpid(), signal.SIGTERM)
