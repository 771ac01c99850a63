"""The views' SQL that both databases share (`projections.store.ViewStore`, implemented):
the registry of generations, their tables, the switch, dead letters and differences; the row
writers are in `infrastructure.views.rows`. Each database's module adds its transactions, its
bulk insert, its savepoints and its catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from infrastructure.retrying import now_us
from infrastructure.views.differences import differences
from infrastructure.views.rows import C, SQLRows
from projections.store import Generation, reader_name
from projections.views import View


class SQLViewStore(SQLRows[C]):
    """The SQL both databases share, over the ledger's own connection pool; each database's
    module (`infrastructure.views.postgres`, `.sqlite`) supplies its transactions, its bulk
    insert (COPY on PostgreSQL) and its catalogue."""

    def __init__(self) -> None:
        self._ensure_registry()

    # --- plumbing ------------------------------------------------------------------------

    def _reading(self) -> AbstractContextManager[C]:
        """A cursor for one read."""
        raise NotImplementedError

    def _lock_schema(self, cursor: C) -> None:
        """Serialize with other processes creating tables (nothing to do on SQLite)."""

    def _analyze(self, generation: Generation) -> None:
        """Give a freshly filled table its planner statistics (nothing to do on SQLite)."""

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
        return differences(self.query, view, old, new, old_columns=old_columns, sample=sample)
