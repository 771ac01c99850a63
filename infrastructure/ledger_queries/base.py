"""What every ledger query needs of its recorder: the statement's spelling for this database,
a reading cursor, ``IN`` over many values (`member_of`, `pairs_in`), and the row helpers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from infrastructure.dbapi import Cursor, Datastore

D = TypeVar("D", bound=Datastore, covariant=True)


class QueryBase(Generic[D]):
    """The recorder provides the attributes below; each database's recorder overrides `sql`,
    `originator`, `reading`, `member_of` and `pairs_in`."""

    events_table: str
    datastore: D
    placeholder = "%s"
    uuid_type = "uuid"
    position_column = "notification_id"

    def sql(self, text: str) -> str:
        """A statement written with ``%s`` placeholders, as this database's driver takes it."""
        return text

    def originator(self, value: UUID) -> UUID | str:
        return value

    def reading(self) -> AbstractContextManager[Cursor]:
        """A cursor for one read (each database's recorder says how it opens one)."""
        raise NotImplementedError

    def query(self, text: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.reading() as curs:
            curs.execute(self.sql(text), params)
            return [dict(row) for row in curs.fetchall()]

    def member_of(self, column: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        """``column IN values`` as (condition, params), in as few statements as the database
        allows (each database's recorder says how)."""
        raise NotImplementedError

    def pairs_in(
        self, columns: tuple[str, str], pairs: Sequence[tuple[Any, Any]], types: tuple[str, str]
    ) -> Iterator[tuple[str, list[Any]]]:
        """``(a, b) IN pairs`` as (condition, params), like `member_of`."""
        raise NotImplementedError


def stored(row: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        originator_id=UUID(str(row["originator_id"])),
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )


def chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(chunk: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(chunk))
