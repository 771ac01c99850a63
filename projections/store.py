"""Where views live, as the projections see it: generations, dead letters, and the port
(`ViewStore`) that keeps them. The SQL behind the port is in `infrastructure.views`.

Each view has *generations*: physical tables ``view_<name>_g<N>``. The registry
(``projection_generations``) holds, per generation, its schema version, its state
(``building``, ``live``, ``retired``) and its **position**: the notification id of the last
event folded into its rows. Rows and position change in one transaction, guarded by the
position read before the batch (optimistic), so a batch is applied exactly once even when two
processes catch up at the same time.

Readers never name a generation: they read the SQL view ``view_<name>``, which the switch of a
blue/green rebuild re-points in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from projections.views import View

Row = tuple[Any, ...]  # one row of a view, in the order of its columns


@dataclass(frozen=True)
class Generation:
    view: str
    number: int
    schema_version: int
    state: str
    position: int

    @property
    def table(self) -> str:
        return f"view_{self.view}_g{self.number}"


@dataclass(frozen=True)
class DeadLetter:
    position: int
    membership_id: str
    error: str


def reader_name(view: View) -> str:
    """The stable name queries read: an SQL view over the live generation."""
    return f"view_{view.name}"


class ViewStore(Protocol):
    """The generations of the views, their rows and positions, and their dead letters."""

    def query(self, text: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only statement written with ``%s`` placeholders."""
        ...

    def generations(self, view: View) -> list[Generation]: ...

    def live(self, view: View) -> Generation | None: ...

    def create_generation(self, view: View) -> Generation:
        """A new, empty generation in state ``building`` at position 0."""
        ...

    def switch(self, view: View, generation: Generation) -> Generation | None:
        """Make ``generation`` the live one, atomically for readers. Returns the retired one."""
        ...

    def drop(self, generation: Generation) -> None: ...

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
        ...

    def bulk_load(self, view: View, generation: Generation, rows: Sequence[Row]) -> None:
        """Append rows to a generation that is being built (set-based)."""
        ...

    def set_position(self, generation: Generation, position: int) -> None: ...

    def dead_letters(self, view: View | None = None) -> list[dict[str, Any]]: ...

    def differences(
        self, view: View, old: Generation, new: Generation, *, sample: int = 5
    ) -> dict[str, Any]:
        """Which rows ``new`` would change compared with ``old``: counts and a sample."""
        ...
