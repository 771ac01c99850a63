"""A delivery's body, read within bounds: at most ``max_body_bytes`` (None as soon as it is
known to be larger), and only while the process's byte budget for bodies waiting to be
committed has room (`OverBudgetError` otherwise; the process's `ByteBudget`, which its writer
keeps)."""

from __future__ import annotations

from fastapi import Request


class ByteBudget:
    """Bytes of request bodies a process holds at once (read, queued or being committed).
    Used from the event loop only, so it needs no lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        """Reserve ``size`` bytes; False (nothing reserved) when that would exceed the limit."""
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used = max(self.used - size, 0)


class OverBudgetError(Exception):
    """The process holds as many body bytes as it may."""


class HeldBytes:
    """The bytes one request holds of the process's body budget, given back when it ends."""

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self.size = 0

    def take(self, size: int) -> None:
        if not self._budget.take(size):
            raise OverBudgetError
        self.size += size

    def release(self) -> None:
        self._budget.give(self.size)
        self.size = 0


async def read_at_most(request: Request, limit: int, held: HeldBytes) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` bytes. Its bytes are
    taken from the budget before they are read (the declared length at once)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit():
        if len(declared) > 18 or int(declared) > limit:
            return None
        held.take(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        if size > held.size:
            held.take(size - held.size)
        chunks.append(chunk)
    return b"".join(chunks)
