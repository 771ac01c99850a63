"""How the command line prints: tables for people (``rich``), JSON lines and CSV for programs.

People get headers, program names beside their ids, ``-`` for unknown values, yes/no for flags,
and lines that wrap to the terminal's width (``COLUMNS`` when stdout is not a terminal).
``--json`` and ``--format csv`` print exactly the documented fields and nothing else.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

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


def human(value: Any) -> str:
    """A value as a person reads it: ``-`` for unknown, yes/no, lists joined."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value) or "-"
    return str(value)


def program(org_id: int, program_id: int, names: Names, name: str | None = None) -> str:
    """A partner program's id with its name beside it, when the ledger knows one."""
    name = name or names.get((org_id, program_id))
    return f"{program_id} {name}" if name else str(program_id)


def print_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    """A table with a header row, wrapped to the terminal width."""
    from rich import box
    from rich.console import Console
    from rich.table import Column, Table

    cells = [[human(cell) for cell in row] for row in rows]
    width = shutil.get_terminal_size().columns
    widths = _column_widths(headers, cells, width)
    table = Table(
        *(
            Column(header, overflow="fold", width=column_width)
            for header, column_width in zip(headers, widths, strict=True)
        ),
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        title_justify="left",
    )
    for row in cells:
        table.add_row(*row)
    # Rendered to text first: no trailing padding, and the width of the terminal (or COLUMNS)
    # even when stdout is a file or a pipe.
    rendered = io.StringIO()
    Console(file=rendered, width=width, highlight=False, color_system=None).print(table)
    for line in rendered.getvalue().splitlines():
        print(line.rstrip())


ATOM_WIDTH = 24  # ids, dates, times and codes up to this long are never broken across lines


def _column_widths(
    headers: Sequence[str], cells: Sequence[Sequence[str]], width: int
) -> list[int | None]:
    """Column widths for a table wider than the terminal, or None for each column when it
    fits as it is. Tokens stay whole where the width allows (``2023-05-12`` folded into
    ``2023-0`` / ``5-12`` reads as two values, and so does an id cut in two): the widest
    columns give way first, each down to its longest token (a word of its header or cells,
    up to `ATOM_WIDTH`). Only when not even the tokens fit do they fold. Nothing is cut."""
    columns = [
        [header, *(row[index] for row in cells if index < len(row))]
        for index, header in enumerate(headers)
    ]
    natural = [
        max(len(line) for text in column for line in text.splitlines() or [""])
        for column in columns
    ]
    tokens = [
        min(max((len(word) for text in column for word in text.split()), default=1), ATOM_WIDTH)
        for column in columns
    ]
    budget = width - 2 * len(headers) + 1  # a space of padding and a rule between columns
    if sum(natural) <= budget:
        return [None] * len(headers)
    floors = [min(n, t) for n, t in zip(natural, tokens, strict=True)]
    widths = _narrowed(natural, floors, budget)
    if sum(widths) > budget:  # not even whole tokens fit: the widest tokens fold first
        widths = _narrowed(widths, [min(3, w) for w in widths], budget)
    return list(widths)


def _narrowed(widths: Sequence[int], floors: Sequence[int], budget: int) -> list[int]:
    """``widths`` narrowed to ``budget`` in total, the widest first, none below its floor."""
    narrowed = list(widths)
    for _ in range(max(sum(narrowed) - budget, 0)):
        shrinkable = [i for i in range(len(narrowed)) if narrowed[i] > floors[i]]
        if not shrinkable:
            break
        narrowed[max(shrinkable, key=narrowed.__getitem__)] -= 1
    return narrowed


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


def changes_text(changes: Mapping[str, Sequence[Any]]) -> str:
    if not changes:
        return "no change"
    return "\n".join(
        f"{name.replace('_', ' ')}: {human(before)} → {human(after)}"
        for name, (before, after) in changes.items()
    )


def source_text(source: Mapping[str, Any]) -> str:
    ids = [
        f"{label} {source[key]}"
        for key, label in (("event_id", "event"), ("ref_id", "ref"), ("api_request_id", "request"))
        if source.get(key)
    ]
    return "\n".join(ids) or "-"


def flags_text(entry: Mapping[str, Any]) -> str:
    return "\n".join([*entry["anomalies"], *(["LATE"] if entry["late"] else [])])


HISTORY_HEADERS = ("position", "when", "event and source ids", "changes", "flags")


def history_cells(entry: Mapping[str, Any]) -> list[Any]:
    when = [
        f"{label} {entry[key]}"
        for key, label in (
            ("occurred_at", "occurred"),
            ("recorded_at", "recorded"),
            ("delivered_at", "delivered"),
        )
        if entry.get(key)
    ]
    event = entry["event"] + (f" ({entry['update_type']})" if entry["update_type"] else "")
    return [
        entry["position"],
        "\n".join(when),
        f"{event}\n{source_text(entry['source'])}",
        changes_text(entry["changes"]),
        flags_text(entry),
    ]


HISTORY_CSV = (
    "position",
    "version",
    "recorded_at",
    "occurred_at",
    "delivered_at",
    "event",
    "kind",
    "update_type",
    "event_id",
    "ref_id",
    "api_request_id",
    "shape",
    "changes",
    "anomalies",
    "late",
)


def history_csv_record(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One history entry flattened for CSV: source ids as columns, changes as JSON."""
    flat = {**entry, **{k: entry["source"].get(k) for k in HISTORY_CSV[8:12]}}
    flat.update(entry.get("membership", {}))
    return flat


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
