"""Commands that read: the views (caught up first), history and time travel."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from domain.errors import LedgerError, MembershipNotFoundError
from domain.history import Chronicle
from domain.keys import MembershipKey
from domain.ledger import EXPORT_FIELDS, Ledger, membership_record
from infrastructure.cli.arguments import check_window
from infrastructure.cli.output import (
    membership_fields,
    note,
    plural,
    print_fields,
    print_json,
    program,
    write_csv,
)
from infrastructure.cli.table import print_table
from infrastructure.cursors import CursorError, decode_cursor, encode_cursor
from infrastructure.views.queries import Queries
from projections.runner import Projector
from projections.views import EXPIRY_FIELDS


def views(ledger: Ledger) -> tuple[Projector, Queries]:
    """The views, caught up: after this, queries reflect everything recorded."""
    projector = Projector(ledger)
    projector.catch_up()
    return projector, Queries(projector.store)


def export(args: argparse.Namespace, ledger: Ledger) -> int:
    fields: tuple[str, ...] = EXPORT_FIELDS if args.view == "memberships" else EXPIRY_FIELDS
    records: Iterator[dict[str, Any]]
    if args.as_of or args.as_known_at:
        if args.view != "memberships":
            raise LedgerError("--as-of and --as-known-at apply to 'export memberships'")
        states = Chronicle(ledger).states_at(as_of=args.as_of, as_known_at=args.as_known_at)
        records = (membership_record(state) for state in states)
    else:
        _, queries = views(ledger)
        records = queries.memberships() if args.view == "memberships" else queries.expiry()
    if args.format == "csv":
        write_csv(records, fields)
        return 0
    if args.format == "table":
        return _export_table(args.view, list(records))
    count = 0
    for record in records:
        print_json(record)
        count += 1
    if count == 0 and sys.stdout.isatty():
        note(f"no {args.view} to export: the ledger holds none")
    return 0


def _export_table(view: str, records: list[dict[str, Any]]) -> int:
    if not records:
        note(f"no {view} to export: the ledger holds none")
        return 0
    if view == "expiry":
        print_table(EXPIRY_FIELDS, ([r[k] for k in EXPIRY_FIELDS] for r in records))
        return 0
    print_table(
        ("org", "customer", *MEMBERSHIP_HEADERS, "linked (UTC)", "events"),
        ([r["org_id"], r["customer_id"], *_membership_cells(r)] for r in records),
    )
    print(f"{plural(len(records), 'membership')}")
    return 0


MEMBERSHIP_HEADERS = ("program", "status", "tier", "tier expires", "membership expires")


def _membership_cells(r: dict[str, Any]) -> list[Any]:
    """A membership's row: `MEMBERSHIP_HEADERS`, then when it was linked and its events."""
    return [
        program(r["org_id"], r["partner_program_id"], {}, r["partner_program_name"]),
        r["status"],
        r["tier_number"],
        r["tier_expiry_date"],
        r["membership_expiry_date"],
        _minutes(r["linked_at"]),
        r["event_count"],
    ]


def _minutes(moment: str | None) -> str | None:
    """``2023-05-12T06:06:45.603Z`` as ``2023-05-12 06:06``: a table for people needs no more
    (the JSON export keeps the milliseconds)."""
    return None if moment is None else moment[:16].replace("T", " ")


def membership(args: argparse.Namespace, ledger: Ledger) -> int:
    if args.as_of or args.as_known_at:
        state = Chronicle(ledger).state_at(
            MembershipKey(args.org, args.customer, args.program),
            as_of=args.as_of,
            as_known_at=args.as_known_at,
        )
        record: dict[str, Any] | None = membership_record(state)
    else:
        _, queries = views(ledger)
        record = queries.membership(args.org, args.customer, args.program)
    if record is None:
        raise MembershipNotFoundError(
            f"no membership for org {args.org}, customer {args.customer}, "
            f"partner program {args.program}"
        )
    if args.json:
        print_json(record)
    else:
        print_fields(membership_fields(record))
    return 0


def memberships(args: argparse.Namespace, ledger: Ledger) -> int:
    """Every partner program of one customer."""
    _, queries = views(ledger)
    records = queries.customer_memberships(args.org, args.customer)
    if not records:
        raise MembershipNotFoundError(
            f"the ledger holds no membership of customer {args.customer} in org {args.org}"
        )
    if args.json:
        for record in records:
            print_json(record)
        return 0
    print_table(
        (*MEMBERSHIP_HEADERS, "linked", "events"),
        (_membership_cells(r) for r in records),
        title=f"org {args.org}, customer {args.customer}",
    )
    return 0


def expiring(args: argparse.Namespace, ledger: Ledger) -> int:
    start, end = args.start, args.end
    if start is None:
        start = datetime.now(UTC).date()
    if args.within is not None:
        end = start + args.within
    check_window(start, end)
    try:
        after = decode_cursor(args.cursor) if args.cursor else None
    except CursorError as error:
        raise LedgerError(str(error)) from None
    _, queries = views(ledger)
    window: dict[str, Any] = {
        "org_id": args.org,
        "partner_program_id": args.program,
        "kind": args.kind,
        "start": start,
        "end": end,
    }
    rows = queries.expiring(**window, limit=args.limit, after=after)
    if args.json:
        print_json(rows)
        return 0
    if args.format == "csv":
        write_csv(rows, EXPIRY_FIELDS)
        return 0
    if not rows:
        note(f"nothing expires {_window_text(start, end)}")
        return 0
    names = queries.program_names()
    print_table(
        ("date", "kind", "org", "customer", "program"),
        (
            [
                r["date"],
                r["kind"],
                r["org_id"],
                r["customer_id"],
                program(r["org_id"], r["partner_program_id"], names),
            ]
            for r in rows
        ),
    )
    if len(rows) == args.limit:
        cursor = encode_cursor(rows[-1])
        more = queries.count_expiring(**window, after=tuple(rows[-1][k] for k in _ORDER))
        if more:
            note(f"{plural(more, 'more row')}: add --cursor {cursor} for the next page")
    return 0


_ORDER = ("date", "org_id", "customer_id", "partner_program_id", "kind")


def _window_text(start: date, end: date | None) -> str:
    return f"from {start} to {end}" if end else f"from {start} on"


def tiers(args: argparse.Namespace, ledger: Ledger) -> int:
    _, queries = views(ledger)
    rows = queries.tiers(org_id=args.org, partner_program_id=args.program)
    if args.json:
        print_json(rows)
        return 0
    if args.format == "csv":
        write_csv(rows, ("org_id", "partner_program_id", "tier_number", "memberships"))
        return 0
    if not rows:
        note("no LINKED memberships" + _filter_text(args.org, args.program))
        return 0
    names = queries.program_names()
    print_table(
        ("org", "program", "tier", "memberships"),
        (
            [
                r["org_id"],
                program(r["org_id"], r["partner_program_id"], names),
                "none" if r["tier_number"] is None else r["tier_number"],
                r["memberships"],
            ]
            for r in rows
        ),
    )
    return 0


def _filter_text(org: int | None, partner_program: int | None) -> str:
    parts = [f"org {org}" if org else "", f"program {partner_program}" if partner_program else ""]
    text = " and ".join(p for p in parts if p)
    return f" for {text}" if text else ""
