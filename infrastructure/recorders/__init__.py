"""Application recorders that keep the inbox and the quarantine beside the events: one module
per database (`postgres`, `sqlite`, as the library has), the tables they share in `tables`.

The library's recorders store events; ours also write, in the **same transaction**:

- ``ledger_inbox``: one row per recorded notification (membership id, version, fingerprint,
  eventId, occurrence and recording time). Its unique indexes make duplicate detection
  permanent and atomic with the write: two concurrent deliveries of one notification cannot
  both commit; the loser gets an ``IntegrityError`` and the ledger retries, finding a duplicate.
- ``ledger_quarantine``: raw bytes of every payload that could not be recorded, keyed by the
  SHA-256 of those bytes, with a reason code, a sentence, receipt times, and where it came from
  (``source``, nullable: a column added after the first release, migrated on start-up).

The rows travel as keyword arguments of ``Application.save()``, which the library passes down
to ``insert_events()``.

A store error that says the *data* is refused (PostgreSQL SQLSTATE class 22, data exception,
or 54, program limit exceeded, e.g. an index row too large; SQLite's "string or blob too big",
"datatype mismatch", or a trigger's ``RAISE(ABORT)``; recognised by
`infrastructure.storage_errors.refused`) is raised at once as `StoreRefusedError`, never
retried: the same rows would be refused again. The ledger splits the batch to find the payload
the store refuses. Connection, rollback, resource and operator errors (classes 08, 40,
53, 57) stay transient and are retried as the library does.
"""

from __future__ import annotations

from infrastructure.recorders.postgres import PostgresLedgerRecorder
from infrastructure.recorders.sqlite import SQLiteLedgerRecorder
from infrastructure.recorders.tables import SCHEMA_LOCK, WRITER_LOCK

__all__ = ["SCHEMA_LOCK", "WRITER_LOCK", "PostgresLedgerRecorder", "SQLiteLedgerRecorder"]
