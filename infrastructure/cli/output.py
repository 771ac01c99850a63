"""How the command line prints: tables for people (`infrastructure.cli.table`), JSON lines
and CSV for programs.

People get headers, program names beside their ids, ``-`` for unknown values, yes/no for flags,
and lines that wrap to the terminal's width (``COLUMNS`` when stdout is not a terminal).
``--json`` and ``--format csv`` print exactly the documented fields and nothing else.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from infrastructure.cli.table import print_table

Names = Mapping[tuple[int, int], str | None]


def csv_value(value: Any) -> Any:
    """CSV cells read like the JSON export: empty for null, true/false for booleans, JSON for
    lists and objects."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def write_csv(records: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> None:
    writer = csv.DictWriter(
        sys.stdout, fieldnames=list(fields), lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    for record in records:
        writer.writerow({k: csv_value(record.get(k)) for k in fields})


def print_json(value: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str), file=stream or sys.stdout)


def note(text: str) -> None:
    """A sentence for the person at the terminal (empty results, paging hints): on stderr, so
    that stdout holds only data."""
    print(text, file=sys.stderr)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def program(org_id: int, program_id: int, names: Names, name: str | None = None) -> str:
    """A partner program's id with its name beside it, when the ledger knows one."""
    name = name or names.get((org_id, program_id))
    return f"{program_id} {name}" if name else str(program_id)


def print_fields(record: Mapping[str, Any], *, title: str | None = None) -> None:
    """One record as a two-column table: field, value."""
    print_table(
        ("field", "value"),
        ((key.replace("_", " "), value) for key, value in record.items()),
        title=title,
    )


def membership_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """A membership for people: the program name beside its id."""
    fields = dict(record)
    name = fields.pop("partner_program_name", None)
    fields["partner_program_id"] = program(record["org_id"], record["partner_program_id"], {}, name)
    return fields


def view_status_rows(views: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    rows = []
    for view in views:
        generation = view["generation"]
        rows.append(
            [
                view["view"],
                "not built yet" if generation is None else generation,
                view["schema_version"],
                view["code_schema_version"],
                view["position"],
                view["head"],
                plural(view["lag_events"], "event"),
                None
                if view["oldest_unprocessed_age_seconds"] is None
                else f"{view['oldest_unprocessed_age_seconds']} s",
                view["dead_letters"],
            ]
        )
    return rows


def print_view_status(views: Sequence[Mapping[str, Any]]) -> None:
    print_table(
        (
            "view",
            "generation",
            "schema",
            "code schema",
            "position",
            "head",
            "lag",
            "oldest unprocessed",
            "dead letters",
        ),
        view_status_rows(views),
    )


def outcome_json(outcome: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(outcome).items() if v is not None}


def quarantine_json(row: Mapping[str, Any]) -> dict[str, Any]:
    from domain.export import quarantine_record

    return quarantine_record(row)
