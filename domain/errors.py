"""Errors of the ledger, under one base: every error the ledger raises on purpose is drawn
here, and all but two (their modules' own, named beside them) are defined here.

LedgerError
+-- InvalidNotificationError   a payload that cannot become a ledger event (quarantined)
+-- MembershipNotFoundError    a query for a membership the ledger has never seen
+-- StorageUnavailableError    the event store cannot be reached (retry later)
+-- StoreRefusedError          the store refused a batch's data (not retried; split out)
+-- ConfigurationError         a bad database URL or setting
+-- DigestFormatError          a published digest is not DIGEST@POSITION
+-- NoLedgerError              the store holds no ledger, and the command may not create one
+-- SourceError                an input file or stdin could not be opened or read
+-- ViewBehindError            a view did not reach a requested position in time (HTTP)
+-- LockHeldError              another process holds a named lock (followers, rebuilds)
+-- LockLostError              a lock this process took is gone (its session or file)
+-- RebuildError               a rebuild met an event it could not project
+-- PositionConflictError      another process moved a view first (the batch is retried)
+-- ConcurrencyError           a batch kept losing races with other writers; nothing written
+-- ParserFailedError          a parse worker process died (`infrastructure.parsing`)
+-- WriterUnavailableError     the HTTP group-commit writer is stopped or full
                               (`infrastructure.http.writer`)

Not under it, on purpose: `CursorError` and the dashboard's `FormError` are `ValueError`s of
their doors' own input, turned into an answer where they are raised; the webhook's
`OverBudgetError` (`infrastructure.http.bodies`: a body would overrun the bytes waiting to be
committed) is answered with the transient status by the one caller that reads bodies.
"""

from __future__ import annotations

from enum import StrEnum


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its type's name when it has none): how a door
    says a driver's error in one sentence."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


class Reason(StrEnum):
    """Stable quarantine reason codes. The values are a public contract: never rename one."""

    NOT_JSON = "NOT_JSON"
    NOT_AN_OBJECT = "NOT_AN_OBJECT"
    UNKNOWN_EVENT = "UNKNOWN_EVENT"
    MISSING_FIELD = "MISSING_FIELD"
    BAD_NUMBER = "BAD_NUMBER"
    BAD_TIMESTAMP = "BAD_TIMESTAMP"
    BAD_DATE = "BAD_DATE"
    BAD_VALUE = "BAD_VALUE"
    ID_COLLISION = "ID_COLLISION"
    STORE_REFUSED = "STORE_REFUSED"


REASON_SENTENCES: dict[Reason, str] = {
    Reason.NOT_JSON: "the body is not valid UTF-8 JSON",
    Reason.NOT_AN_OBJECT: "the body is JSON but not an object",
    Reason.UNKNOWN_EVENT: "the event name is not a partner-program notification",
    Reason.MISSING_FIELD: "a required field is absent or empty",
    Reason.BAD_NUMBER: "a field that must be an integer is not one",
    Reason.BAD_TIMESTAMP: "createdAt is not a plausible epoch-milliseconds time",
    Reason.BAD_DATE: "a date field is not a valid YYYY-MM-DD date",
    Reason.BAD_VALUE: "a field has the wrong type (an object or list where text belongs), "
    "or a text is longer than its limit",
    Reason.ID_COLLISION: "the eventId was already recorded with different business content",
    Reason.STORE_REFUSED: "the database refused to store it (a data exception or a limit), "
    "while the rest of its batch was recorded",
}


class InvalidNotificationError(LedgerError):
    """A payload that cannot be recorded. It is quarantined, never dropped.

    ``reason`` is the stable code of the first problem found; ``detail`` is a sentence
    naming every offending field and value.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type[InvalidNotificationError], tuple[Reason, str]]:
        # Parsed in a worker process and sent back: rebuild from the two fields.
        return (type(self), (self.reason, self.detail))


class MembershipNotFoundError(LedgerError):
    """The ledger holds no event for the requested membership."""


class StorageUnavailableError(LedgerError):
    """The event store could not be reached or timed out; nothing was written."""


class StoreRefusedError(LedgerError):
    """The store refused the data of a batch (PostgreSQL SQLSTATE class 22, data exception,
    or 54, program limit exceeded; SQLite's equivalents). Retrying the same batch cannot help:
    the ledger splits the batch to find the payload it refuses and quarantines that one."""


class ConfigurationError(LedgerError):
    """A setting (database URL, environment variable) is not usable as given."""


class DigestFormatError(LedgerError):
    """A published digest is not written as DIGEST@POSITION."""


class NoLedgerError(LedgerError):
    """The store holds no ledger, and the command may not create one."""


class SourceError(LedgerError):
    """The input could not be opened or read."""


class ViewBehindError(LedgerError):
    """A view did not reach the requested position in time."""

    def __init__(self, view: str, position: int | None, wanted: int) -> None:
        super().__init__(
            f"the {view} view is at position {position or 0}, not yet at {wanted}; retry shortly"
        )
        self.position = position


class LockHeldError(LedgerError):
    """Another process holds the lock."""


class LockLostError(LedgerError):
    """A lock this process took is no longer held: its connection ended, or its lock file
    was removed. Whatever it guarded must not be written until it is taken again."""


class RebuildError(LedgerError):
    """A rebuild met an event it could not project; nothing was switched."""


class ConcurrencyError(LedgerError):
    """A batch kept losing races with other writers; nothing of it was written."""


class PositionConflictError(LedgerError):
    """Another process moved the view first; the batch was not applied and can be retried."""
