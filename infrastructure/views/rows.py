"""The views' row writers that both databases share: a batch applied under its position guard
(`apply`), and its parts on a transaction's cursor (`move`, `replace`, `add`), which the inline
views (`infrastructure.views.inline`) use in the ledger's write transaction."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from domain.errors import PositionConflictError
from infrastructure.dbapi import Cursor
from infrastructure.retrying import now_us
from projections.store import DeadLetter, Generation, Row
from projections.views import View

C = TypeVar("C", bound=Cursor)  # the cursor of the database's driver


class SQLRows(Generic[C]):
    """Writing a generation's rows and position; each database's store supplies its
    placeholders, transactions, bulk insert and savepoints."""

    def _sql(self, text: str) -> str:
        """A statement written with ``%s`` placeholders, in this database's placeholders."""
        return text

    def transaction(self) -> AbstractContextManager[C]:
        """A write transaction's cursor."""
        raise NotImplementedError

    def _insert(self, cursor: C, view: View, generation: Generation, rows: Sequence[Row]) -> None:
        raise NotImplementedError

    def apply(
        self,
        view: View,
        generation: Generation,
        *,
        expected_position: int,
        new_position: int,
        replaced: Sequence[str],
        rows: Sequence[Row],
        dead_letters: Sequence[DeadLetter] = (),
        require_state: str | None = None,
    ) -> None:
        """Replace the rows of ``replaced`` memberships and move the position, in one
        transaction; `PositionConflictError` if the position is no longer the expected one."""
        with self.transaction() as cursor:
            if not self.move(
                cursor,
                view,
                generation,
                expected=expected_position,
                new=new_position,
                require_state=require_state,
            ):
                raise PositionConflictError(
                    f"view {view.name} moved past position {expected_position} meanwhile"
                )
            self.replace(cursor, view, generation, replaced, rows)
            for letter in dead_letters:
                cursor.execute(
                    self._sql(
                        "INSERT INTO projection_dead_letters (view, generation, position, "
                        "membership_id, error, failed_at_us) VALUES (%s, %s, %s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING"
                    ),
                    (
                        view.name,
                        generation.number,
                        letter.position,
                        letter.membership_id,
                        letter.error,
                        now_us(),
                    ),
                )

    # The row writers of `apply`, on a transaction's cursor: the inline views
    # (`infrastructure.views.inline`) write with them in the ledger's write transaction.

    def move(
        self,
        cursor: C,
        view: View,
        generation: Generation,
        *,
        expected: int,
        new: int,
        require_state: str | None = None,
    ) -> bool:
        """Move the generation's position from ``expected`` to ``new``; False (and nothing
        written) if it does not stand at ``expected`` (or is not in ``require_state``)."""
        guard = "" if require_state is None else " AND state = %s"
        cursor.execute(
            self._sql(
                "UPDATE projection_generations SET position = %s "
                f"WHERE view = %s AND generation = %s AND position = %s{guard} "
                "RETURNING generation"
            ),
            (new, view.name, generation.number, expected)
            + ((require_state,) if require_state else ()),
        )
        return cursor.fetchone() is not None

    def move_or_fail(
        self,
        cursor: C,
        view: View,
        generation: Generation,
        *,
        expected: int,
        new: int,
        require_state: str | None = None,
    ) -> None:
        """`move`, or `PositionConflictError`: a store that can fail the statement itself
        instead (PostgreSQL) sends it without waiting for its result."""
        if not self.move(
            cursor, view, generation, expected=expected, new=new, require_state=require_state
        ):
            raise PositionConflictError(f"view {view.name} moved past position {expected}")

    def replace(
        self,
        cursor: C,
        view: View,
        generation: Generation,
        replaced: Sequence[str],
        rows: Sequence[Row],
    ) -> None:
        """The rows of the ``replaced`` memberships become ``rows``."""
        self._delete_memberships(cursor, generation, replaced)
        self._insert(cursor, view, generation, rows)

    def _delete_memberships(self, cursor: C, generation: Generation, ids: Sequence[str]) -> None:
        """The rows of these memberships, deleted: a list of placeholders, 500 at a time."""
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            cursor.execute(
                self._sql(
                    f"DELETE FROM {generation.table} WHERE membership_id IN "
                    f"({', '.join(['%s'] * len(chunk))})"
                ),
                chunk,
            )

    def add(self, cursor: C, view: View, generation: Generation, rows: Sequence[Row]) -> None:
        """Rows of a view with a tally: each adds its count to the stored row of its key (or
        is inserted). Rows of one key are summed first, so each key is written once."""
        if not rows or view.tally is None:
            raise ValueError(f"view {view.name} has no tally to add rows to")
        self._upsert(cursor, view, generation, _summed(view, rows))

    def _upsert(self, cursor: C, view: View, generation: Generation, rows: Sequence[Row]) -> None:
        """Each row inserted, or its tally added to the stored row of its key (one row per
        key: `add` sums them)."""
        names = ", ".join(view.column_names)
        marks = ", ".join(["%s"] * len(view.columns))
        cursor.executemany(
            self._sql(
                f"INSERT INTO {generation.table} ({names}) VALUES ({marks}) "
                + adding_clause(view, generation)
            ),
            rows,
        )

    def savepoint(self, cursor: C, *, bulk: bool = False) -> AbstractContextManager[None]:
        """A savepoint in the cursor's transaction: an error in the block rolls back to it
        (and is raised); the transaction goes on. A ``bulk`` block writes many rows: a store
        may then prefer its bulk insert to fewer round trips."""
        raise NotImplementedError

    def bulk_load(self, view: View, generation: Generation, rows: Sequence[Row]) -> None:
        """Append rows to a generation that is being built (set-based: COPY on PostgreSQL)."""
        with self.transaction() as cursor:
            self._insert(cursor, view, generation, rows)

    def set_position(self, generation: Generation, position: int) -> None:
        with self.transaction() as cursor:
            cursor.execute(
                self._sql(
                    "UPDATE projection_generations SET position = %s "
                    "WHERE view = %s AND generation = %s"
                ),
                (position, generation.view, generation.number),
            )


def adding_clause(view: View, generation: Generation) -> str:
    """The conflict clause of a tally's upsert: the new count adds to the stored one."""
    return (
        f"ON CONFLICT ({', '.join(view.primary_key)}) DO UPDATE SET {view.tally} = "
        f"{generation.table}.{view.tally} + excluded.{view.tally}"
    )


def _summed(view: View, rows: Sequence[Row]) -> list[Row]:
    """The rows with one row per primary key, the tallies of a key's rows added up (the
    other columns are the key's, or the membership's: equal across its rows)."""
    names = view.column_names
    keys = [names.index(name) for name in view.primary_key]
    tally = names.index(view.tally or "")
    summed: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        key = tuple(row[i] for i in keys)
        if (seen := summed.get(key)) is None:
            summed[key] = list(row)
        else:
            seen[tally] += row[tally]
    return [tuple(row) for row in summed.values()]
