"""The little of a database cursor that the SQL both databases share uses (`ledger_queries`,
`recorders.tables`, `views.store`): psycopg's ``Cursor[DictRow]``, the library's
``SQLiteCursor`` and ``sqlite3.Cursor`` all have it. Rows are read by column name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Cursor(Protocol):
    def execute(self, statement: str, params: Sequence[Any] = ..., /) -> object: ...

    def executemany(self, statement: str, params: Iterable[Sequence[Any]], /) -> object: ...

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


class Datastore(Protocol):
    """The library's ``PostgresDatastore`` or ``SQLiteDatastore``, as the shared SQL uses it."""

    def transaction(self, *, commit: bool) -> AbstractContextManager[Cursor]: ...
