"""What a rebuilt generation would change in a view (``rebuild --diff``): rows only in one
generation or the other, by primary key, in SQL both databases share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from projections.store import Generation
from projections.views import View

Query = Callable[[str, Sequence[Any]], list[dict[str, Any]]]


def differences(
    query: Query,
    view: View,
    old: Generation,
    new: Generation,
    *,
    old_columns: set[str],
    sample: int = 5,
) -> dict[str, Any]:
    """Which rows ``new`` would change compared with ``old``: counts and a sample."""
    common = [name for name in view.column_names if name in old_columns]
    keys = [name for name in view.primary_key if name in common]
    shared = ", ".join(common)
    only_new = _except(query, shared, new, old)
    only_old = _except(query, shared, old, new)
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
        + [{"key": list(key), "before": None, "after": new_by_key[key]} for key in added[:sample]]
        + [
            {"key": list(key), "before": old_by_key[key], "after": None} for key in removed[:sample]
        ],
    }


def _except(query: Query, columns: str, one: Generation, other: Generation) -> list[dict[str, Any]]:
    """The rows of ``one`` that ``other`` does not have."""
    return query(
        f"SELECT {columns} FROM {one.table} EXCEPT SELECT {columns} FROM {other.table}", ()
    )
