"""The views' SQL that both databases share (`projections.store.ViewStore`, implemented):
generation tables, the registry of generations, dead letters. Each database's module adds its
transactions, its bulk insert and its catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from domain.errors import PositionConflictError
from infrastructure.dbapi import Cursor
from infrastructure.retrying import now_us
from projections.store import DeadLetter, Generation, Row, reader_name
from projections.views import View

C = TypeVar("C", bound=Cursor)  # the cursor of the database's driver


class SQLViewStore(Generic[C]):
    """The SQL both databases share, over the ledger's own connection pool; each database's
    module (`infrastructure.views.postgres`, `.sqlite`) supplies its transactions, its bulk
    insert (COPY on PostgreSQL) and its catalogue."""

    def __init__(self) -> None:
        self._ensure_registry()

    # --- plumbing ------------------------------------------------------------------------

    def _sql(self, text: str) -> str:
        """A statement written with ``%s`` placeholders, in this database's placeholders."""
        return text

    def transaction(self) -> AbstractContextManager[C]:
        """A write transaction's cursor."""
        raise NotImplementedError

    def _reading(self) -> AbstractContextManager[C]:
        """A cursor for one read."""
        raise NotImplementedError

    def _lock_schema(self, cursor: C) -> None:
        """Serialize with other processes creating tables (nothing to do on SQLite)."""

    def _analyze(self, generation: Generation) -> None:
        """Give a freshly filled table its planner statistics (nothing to do on SQLite)."""

    def _insert(self, cursor: C, view: View, generation: Generation, rows: Sequence[Row]) -> None:
        raise NotImplementedError

    def _columns(self, table: str) -> list[dict[str, Any]]:
        """The columns of ``table``, each as ``{"name": ...}``."""
        raise NotImplementedError

    def query(self, text: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._reading() as cursor:
            cursor.execute(self._sql(text), params)
            return [dict(row) for row in cursor.fetchall()]

    def _ensure_registry(self) -> None:
        with self.transaction() as cursor:
            self._lock_schema(cursor)
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS projection_generations (view TEXT NOT NULL, "
                "generation BIGINT NOT NULL, schema_version BIGINT NOT NULL, state TEXT NOT NULL, "
                "position BIGINT NOT NULL, created_at_us BIGINT NOT NULL, "
                "switched_at_us BIGINT, PRIMARY KEY (view, generation))"
            )
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS projection_dead_letters (view TEXT NOT NULL, "
                "generation BIGINT NOT NULL, position BIGINT NOT NULL, "
                "membership_id TEXT NOT NULL, "
                "error TEXT NOT NULL, failed_at_us BIGINT NOT NULL, "
                "PRIMARY KEY (view, generation, position))"
            )

    # --- generations ---------------------------------------------------------------------

    def generations(self, view: View) -> list[Generation]:
        rows = self.query(
            "SELECT view, generation, schema_version, state, position FROM projection_generations "
            "WHERE view = %s ORDER BY generation",
            (view.name,),
        )
        return [
            Generation(r["view"], r["generation"], r["schema_version"], r["state"], r["position"])
            for r in rows
        ]

    def live(self, view: View) -> Generation | None:
        return next((g for g in self.generations(view) if g.state == "live"), None)

    def create_generation(self, view: View) -> Generation:
        """A new, empty generation in state ``building`` at position 0."""
        with self.transaction() as cursor:
            cursor.execute(
                self._sql(
                    "SELECT MAX(generation) AS top FROM projection_generations WHERE view = %s"
                ),
                (view.name,),
            )
            top = dict(cursor.fetchone())["top"] or 0
            generation = Generation(view.name, top + 1, view.schema_version, "building", 0)
            columns = ", ".join(f"{c.name} {c.sql_type}" for c in view.columns)
            cursor.execute(
                f"CREATE TABLE {generation.table} ({columns}, "
                f"PRIMARY KEY ({', '.join(view.primary_key)}))"
            )
            for number, index in enumerate(view.indexes):
                cursor.execute(
                    f"CREATE INDEX {generation.table}_i{number} ON {generation.table} "
                    f"({', '.join(index)})"
                )
            cursor.execute(
                self._sql(
                    "INSERT INTO projection_generations (view, generation, schema_version, state, "
                    "position, created_at_us) VALUES (%s, %s, %s, 'building', 0, %s)"
                ),
                (view.name, generation.number, view.schema_version, now_us()),
            )
        return generation

    def switch(self, view: View, generation: Generation) -> Generation | None:
        """Make ``generation`` the live one, atomically for readers. Returns the retired one."""
        previous = self.live(view)
        self._analyze(generation)
        with self.transaction() as cursor:
            cursor.execute(f"DROP VIEW IF EXISTS {reader_name(view)}")
            cursor.execute(f"CREATE VIEW {reader_name(view)} AS SELECT * FROM {generation.table}")
            cursor.execute(
                self._sql(
                    "UPDATE projection_generations SET state = 'retired' "
                    "WHERE view = %s AND state = 'live'"
                ),
                (view.name,),
            )
            cursor.execute(
                self._sql(
                    "UPDATE projection_generations SET state = 'live', switched_at_us = %s "
                    "WHERE view = %s AND generation = %s"
                ),
                (now_us(), view.name, generation.number),
            )
        return previous

    def drop(self, generation: Generation) -> None:
        with self.transaction() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {generation.table}")
            cursor.execute(
                self._sql("DELETE FROM projection_generations WHERE view = %s AND generation = %s"),
                (generation.view, generation.number),
            )
            cursor.execute(
                self._sql(
                    "DELETE FROM projection_dead_letters WHERE view = %s AND generation = %s"
                ),
                (generation.view, generation.number),
            )

    # --- writing rows --------------------------------------------------------------------

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
            guard = "" if require_state is None else " AND state = %s"
            cursor.execute(
                self._sql(
                    "UPDATE projection_generations SET position = %s "
                    f"WHERE view = %s AND generation = %s AND position = %s{guard}"
                ),
                (new_position, view.name, generation.number, expected_position)
                + ((require_state,) if require_state else ()),
            )
            if _rowcount(cursor) != 1:
                raise PositionConflictError(
                    f"view {view.name} moved past position {expected_position} meanwhile"
                )
            for start in range(0, len(replaced), 500):
                chunk = replaced[start : start + 500]
                cursor.execute(
                    self._sql(
                        f"DELETE FROM {generation.table} WHERE membership_id IN "
                        f"({', '.join(['%s'] * len(chunk))})"
                    ),
                    chunk,
                )
            self._insert(cursor, view, generation, rows)
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

    # --- reading -------------------------------------------------------------------------

    def dead_letters(self, view: View | None = None) -> list[dict[str, Any]]:
        where, params = ("", ()) if view is None else ("WHERE d.view = %s ", (view.name,))
        return self.query(
            "SELECT d.view, d.generation, d.position, d.membership_id, d.error, d.failed_at_us "
            "FROM projection_dead_letters d JOIN projection_generations g "
            "ON g.view = d.view AND g.generation = d.generation AND g.state = 'live' "
            f"{where}ORDER BY d.view, d.position",
            params,
        )

    def differences(
        self, view: View, old: Generation, new: Generation, *, sample: int = 5
    ) -> dict[str, Any]:
        """Which rows ``new`` would change compared with ``old``: counts and a sample."""
        old_columns = {row["name"] for row in self._columns(old.table)}
        common = [name for name in view.column_names if name in old_columns]
        keys = [name for name in view.primary_key if name in common]
        shared = ", ".join(common)
        only_new = self.query(
            f"SELECT {shared} FROM {new.table} EXCEPT SELECT {shared} FROM {old.table}"
        )
        only_old = self.query(
            f"SELECT {shared} FROM {old.table} EXCEPT SELECT {shared} FROM {new.table}"
        )
        new_by_key = {tuple(r[k] for k in keys): r for r in only_new}
        old_by_key = {tuple(r[k] for k in keys): r for r in only_old}
        changed = sorted(new_by_key.keys() & old_by_key.keys())
        added = sorted(new_by_key.keys() - old_by_key.keys())
        removed = sorted(old_by_key.keys() - new_by_key.keys())
        return {
            "view": view.name,
            "from_generation": old.number,
            "to_generation": new.number,
            "changed": len(changed),
            "added": len(added),
            "removed": len(removed),
            "columns_added": [c for c in view.column_names if c not in old_columns],
            "columns_removed": sorted(old_columns - set(view.column_names)),
            "sample": [
                {"key": list(key), "before": old_by_key[key], "after": new_by_key[key]}
                for key in changed[:sample]
            ]
            + [
                {"key": list(key), "before": None, "after": new_by_key[key]}
                for key in added[:sample]
            ]
            + [
                {"key": list(key), "before": old_by_key[key], "after": None}
                for key in removed[:sample]
            ],
        }


def _rowcount(cursor: Cursor) -> int:
    # The library wraps SQLite cursors; the wrapper keeps the real one.
    real: object = getattr(cursor, "sqlite_cursor", cursor)
    return int(getattr(real, "rowcount"))  # noqa: B009 - not every cursor type declares it
