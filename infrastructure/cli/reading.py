"""Commands that read: the views (caught up first), history and time travel."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from domain.errors import LedgerError, MembershipNotFoundError
from domain.history import Chronicle
from domain.ledger import EXPORT_FIELDS, Ledger, membership_record
from infrastructure.cli.output import csv_value, history_line, print_fields, print_json
from infrastructure.progress import Progress
from projections.queries import Queries
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
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow({k: csv_value(v) for k, v in record.items()})
    else:
        for record in records:
            print_json(record)
    return 0


def membership(args: argparse.Namespace, ledger: Ledger) -> int:
    if args.as_of or args.as_known_at:
        state = Chronicle(ledger).state_at(
            args.org, args.customer, args.program, as_of=args.as_of, as_known_at=args.as_known_at
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
        print_fields(record)
    return 0


def expiring(args: argparse.Namespace, ledger: Ledger) -> int:
    _, queries = views(ledger)
    start, end = args.start, args.end
    if args.within is not None:
        start = start or datetime.now(UTC).date()
        end = start + args.within
    rows = queries.expiring(
        org_id=args.org,
        partner_program_id=args.program,
        kind=args.kind,
        start=start,
        end=end,
        limit=args.limit,
    )
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(
                f"{row['date']}  {row['kind']:<10} org {row['org_id']} customer "
                f"{row['customer_id']} program {row['partner_program_id']}"
            )
    return 0


def tiers(args: argparse.Namespace, ledger: Ledger) -> int:
    _, queries = views(ledger)
    rows = queries.tiers(org_id=args.org, partner_program_id=args.program)
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            tier = "-" if row["tier_number"] is None else row["tier_number"]
            print(
                f"org {row['org_id']} program {row['partner_program_id']} tier {tier}: "
                f"{row['memberships']}"
            )
    return 0


def history(args: argparse.Namespace, ledger: Ledger) -> int:
    chronicle = Chronicle(ledger)
    if args.org is None:
        return changes(args, chronicle)
    if args.program is None or args.period_org is not None:
        raise LedgerError("history takes ORG CUSTOMER PROGRAM, or --org N --from T --to T")
    entries = chronicle.history(args.org, args.customer, args.program)
    if args.json:
        print_json(entries)
        return 0
    for entry in entries:
        print(history_line(entry))
    return 0


def changes(args: argparse.Namespace, chronicle: Chronicle) -> int:
    if args.period_org is None or args.start is None or args.end is None:
        raise LedgerError("history takes ORG CUSTOMER PROGRAM, or --org N --from T --to T")
    window = {
        "org_id": args.period_org,
        "partner_program_id": args.period_program,
        "start": args.start,
        "end": args.end,
    }
    total = chronicle.count_changed(**window)
    with Progress(total=total, unit="memberships", quiet=args.json, label="history") as progress:
        current = None
        for entry in chronicle.changes(**window):
            if args.json:
                print_json(entry)
            else:
                print(f"{tuple(entry['membership'].values())} {history_line(entry)}")
            if entry["membership"] != current:
                current = entry["membership"]
                progress.advance(1)
    return 0
