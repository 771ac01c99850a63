"""``history``: of one membership, or the changes recorded across an org's memberships in a
period; and how a history entry reads in a table and in CSV."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from domain.errors import LedgerError
from domain.history import Chronicle
from domain.keys import MembershipKey
from domain.ledger import Ledger, iso
from infrastructure.cli.arguments import check_window
from infrastructure.cli.output import note, print_json, write_csv
from infrastructure.cli.table import human, print_table
from infrastructure.progress import Progress

MEMBERSHIP_KEY = ("org_id", "customer_id", "partner_program_id")


def history(args: argparse.Namespace, ledger: Ledger) -> int:
    chronicle = Chronicle(ledger)
    if args.org is None:
        return changes(args, chronicle)
    if args.program is None or args.period_org is not None:
        raise LedgerError("history takes ORG CUSTOMER PROGRAM, or --org N --from T --to T")
    entries = chronicle.history(MembershipKey(args.org, args.customer, args.program))
    if args.json:
        for entry in entries:
            print_json(entry)
    elif args.format == "csv":
        write_csv((history_csv_record(e) for e in entries), HISTORY_CSV)
    else:
        print_table(
            HISTORY_HEADERS,
            (history_cells(e) for e in entries),
            title=f"org {args.org}, customer {args.customer}, program {args.program}",
        )
    return 0


def changes(args: argparse.Namespace, chronicle: Chronicle) -> int:
    if args.period_org is None or args.start is None or args.end is None:
        raise LedgerError("history takes ORG CUSTOMER PROGRAM, or --org N --from T --to T")
    check_window(args.start, args.end)
    window = {
        "org_id": args.period_org,
        "partner_program_id": args.period_program,
        "start": args.start,
        "end": args.end,
    }
    total = chronicle.count_changed(**window)
    quiet = args.json or args.format == "csv"
    rows: list[list[Any]] = []
    with Progress(total=total, unit="memberships", quiet=quiet, label="history") as progress:
        if args.format == "csv":
            write_csv(
                (history_csv_record(e) for e in chronicle.changes(**window)),
                (*MEMBERSHIP_KEY, *HISTORY_CSV),
            )
            return 0
        current = None
        for entry in chronicle.changes(**window):
            if args.json:
                print_json(entry)
            else:
                key = entry["membership"]
                rows.append([f"{key['customer_id']}/{key['partner_program_id']}"])
                rows[-1].extend(history_cells(entry))
            if entry["membership"] != current:
                current = entry["membership"]
                progress.advance(1)
    if args.json:
        return 0
    if not rows:
        note(
            f"nothing was recorded for org {args.period_org} "
            f"from {iso(args.start)} to {iso(args.end)}"
        )
        return 0
    print_table(
        ("customer/program", *HISTORY_HEADERS),
        rows,
        title=f"org {args.period_org}: recorded from {iso(args.start)} to {iso(args.end)}",
    )
    return 0


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
