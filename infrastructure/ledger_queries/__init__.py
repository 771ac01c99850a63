"""Reading the ledger's own tables: duplicates, streams, chains, times, quarantine.

A mixin for the recorders (`infrastructure.recorders`): SQL written with ``%s`` placeholders
over the recorder's own connection pool. Where the databases differ (placeholders, ``IN`` over
many values), each database's recorder overrides `sql`, `member_of` and `pairs_in` (`base`).
One module per part of the ledger read: `recorded` (inbox and events), `chains` (hashes,
heads, digests), `quarantine`.
"""

from __future__ import annotations

from infrastructure.ledger_queries.base import D, chunks, marks
from infrastructure.ledger_queries.chains import ChainQueries
from infrastructure.ledger_queries.quarantine import QuarantineQueries
from infrastructure.ledger_queries.recorded import RecordedQueries


class LedgerQueries(RecordedQueries[D], ChainQueries[D], QuarantineQueries[D]):
    """The read side of `LedgerTables`; the recorder provides `QueryBase`'s attributes."""


__all__ = ["LedgerQueries", "chunks", "marks"]
