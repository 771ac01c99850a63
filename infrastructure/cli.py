"""The ``partner-ledger`` command line: a thin door onto the Ledger application.

Every error a user can cause (bad URL, unreachable database, unreadable file, unknown
membership) is one sentence on stderr and exit status 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from domain.audit import Auditor
from domain.errors import LedgerError, MembershipNotFoundError
from domain.history import Chronicle
from domain.integrity import parse_anchor
from domain.ledger import EXPORT_FIELDS, Ledger, Outcome, iso, membership_record
from infrastructure.http.serve import add_serve_command
from infrastructure.moments import parse_moment
from infrastructure.progress import Progress
from infrastructure.settings import Settings
from infrastructure.sources import open_source, payloads
from infrastructure.wiring import open_ledger
from projections.queries import Queries
from projections.runner import Projector
from projections.views import EXPIRY_FIELDS, VIEWS

Handler = Callable[[argparse.Namespace, Ledger], int]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler") and not hasattr(args, "serve"):
        parser.print_help(sys.stderr)
        return 2
    try:
        settings = Settings(db=args.db) if args.db else Settings()
        if hasattr(args, "serve"):  # the HTTP service opens one ledger per worker process
            return int(args.serve(args, settings))
        with open_ledger(settings) as ledger:
            return int(args.handler(args, ledger))
    except LedgerError as error:
        print(f"partner-ledger: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("partner-ledger: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="partner-ledger",
        description="An auditable ledger of Capillary partner-program memberships.",
    )
    parser.add_argument(
        "--db",
        help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
        "(default: $PARTNER_LEDGER_DB, else sqlite:///ledger.db)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    ingest = commands.add_parser("ingest", help="record notifications from a file or stdin")
    ingest.add_argument("path", metavar="PATH|-", help="JSON Lines file, .json file, or -")
    ingest.add_argument("--json", action="store_true", help="print one JSON summary object")
    ingest.add_argument(
        "--batch-size", type=_positive, default=None, help="payloads per transaction"
    )
    ingest.set_defaults(handler=_ingest)

    export = commands.add_parser("export", help="write a view as JSON Lines or CSV")
    export.add_argument("view", choices=["memberships", "expiry"])
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    _time_travel(export)
    export.set_defaults(handler=_export)

    membership = commands.add_parser("membership", help="one membership's state")
    _key_arguments(membership)
    _time_travel(membership)
    membership.add_argument("--json", action="store_true")
    membership.set_defaults(handler=_membership)

    history = commands.add_parser(
        "history",
        help="every recorded event of one membership, or (--org --from --to) the changes "
        "recorded across memberships in a period",
    )
    _key_arguments(history, optional=True)
    history.add_argument("--org", type=_identifier, dest="period_org", metavar="N")
    history.add_argument("--program", type=_identifier, dest="period_program", metavar="N")
    history.add_argument("--from", dest="start", type=_moment_start, metavar="T")
    history.add_argument("--to", dest="end", type=_moment_end, metavar="T")
    history.add_argument("--json", action="store_true")
    history.set_defaults(handler=_history)

    expiring = commands.add_parser("expiring", help="expiry dates in a window, by date")
    expiring.add_argument("--org", type=_identifier)
    expiring.add_argument("--program", type=_identifier)
    expiring.add_argument("--kind", choices=["membership", "tier", "scheduled"])
    expiring.add_argument("--from", dest="start", type=_date, metavar="DATE")
    window = expiring.add_mutually_exclusive_group()
    window.add_argument("--to", dest="end", type=_date, metavar="DATE")
    window.add_argument("--within", type=_days, metavar="Nd", help="from --from (default today)")
    expiring.add_argument("--limit", type=_positive, default=100)
    expiring.add_argument("--json", action="store_true")
    expiring.set_defaults(handler=_expiring)

    tiers = commands.add_parser("tiers", help="LINKED memberships per org, program and tier")
    tiers.add_argument("--org", type=_identifier)
    tiers.add_argument("--program", type=_identifier)
    tiers.add_argument("--json", action="store_true")
    tiers.set_defaults(handler=_tiers)

    project = commands.add_parser("project", help="catch every view up (--follow: keep going)")
    project.add_argument("--follow", action="store_true")
    project.add_argument("--status", action="store_true", help="views, lag and dead letters")
    project.add_argument(
        "--batch-size", type=_positive, default=2000, help="events per transaction"
    )
    project.add_argument("--json", action="store_true")
    project.set_defaults(handler=_project)

    rebuild = commands.add_parser("rebuild", help="rebuild views blue/green from the log")
    rebuild.add_argument(
        "views", nargs="*", metavar="VIEW", help=f"default: all ({', '.join(VIEWS)})"
    )
    rebuild.add_argument(
        "--diff", action="store_true", help="report what would change, and do not switch"
    )
    rebuild.add_argument("--json", action="store_true")
    rebuild.set_defaults(handler=_rebuild)

    forget = commands.add_parser(
        "forget", help="make a customer's identifiers unreadable for good (crypto-shredding)"
    )
    forget.add_argument("org", type=_identifier, metavar="ORG")
    forget.add_argument("customer", type=_identifier, metavar="CUSTOMER")
    forget.add_argument("--json", action="store_true")
    forget.set_defaults(handler=_forget)

    verify = commands.add_parser("verify", help="recompute hash chains and the log digest")
    verify.add_argument(
        "--against",
        metavar="DIGEST@POSITION",
        help="also check a digest published earlier with 'digest'",
    )
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=_verify)

    digest = commands.add_parser("digest", help="print the log digest as DIGEST@POSITION")
    digest.add_argument("--json", action="store_true")
    digest.set_defaults(handler=_digest)

    quarantine = commands.add_parser("quarantine", help="payloads that could not be recorded")
    actions = quarantine.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="open entries (--all: also resolved)")
    listing.add_argument("--all", action="store_true")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_quarantine_list)
    show = actions.add_parser("show", help="one entry with its raw bytes")
    show.add_argument("id", metavar="ID", help="an id or a unique prefix")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_quarantine_show)
    replay = actions.add_parser("replay", help="parse entries again and record what now passes")
    replay.add_argument("ids", nargs="*", metavar="ID", help="default: every open entry")
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(handler=_quarantine_replay)

    status = commands.add_parser("status", help="what the ledger holds")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)

    add_serve_command(commands)
    return parser


# --- ingest ------------------------------------------------------------------------------


def _ingest(args: argparse.Namespace, ledger: Ledger) -> int:
    stream, size = open_source(args.path)
    batch_size = args.batch_size or 500
    tally: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    started = time.perf_counter()
    name = "stdin" if args.path == "-" else args.path
    with stream, Progress(total=size, unit="B", quiet=args.json, label="ingest") as progress:
        for batch, consumed in _batches(payloads(stream, name=name), batch_size):
            for outcome in ledger.receive(batch):
                tally[outcome.status] += 1
                if outcome.reason:
                    reasons[outcome.reason] += 1
            progress.advance(
                consumed,
                recorded=tally["recorded"],
                duplicates=tally["duplicate"],
                quarantined=tally["quarantined"],
            )
    # Catch the views up inline, so queries and exports reflect what was just recorded, and
    # extend the log digest's checkpoints over the new events.
    projected = time.perf_counter()
    Projector(ledger).catch_up()
    Auditor(ledger.store).checkpoint()
    summary: dict[str, Any] = {
        "received": sum(tally.values()),
        "recorded": tally["recorded"],
        "duplicates": tally["duplicate"],
        "quarantined": tally["quarantined"],
        "quarantined_by_reason": dict(sorted(reasons.items())),
        "conflicts_retried": ledger.conflicts,
        "seconds": round(time.perf_counter() - started, 3),
        "projection_seconds": round(time.perf_counter() - projected, 3),
    }
    if args.json:
        _print_json(summary)
    else:
        by_reason = ", ".join(f"{k} {v}" for k, v in summary["quarantined_by_reason"].items())
        print(
            f"received {summary['received']}: recorded {summary['recorded']}, duplicates "
            f"{summary['duplicates']}, quarantined {summary['quarantined']}"
            + (f" ({by_reason})" if by_reason else "")
        )
    return 0


def _batches(items: Iterator[tuple[bytes, int]], size: int) -> Iterator[tuple[list[bytes], int]]:
    batch: list[bytes] = []
    consumed = 0
    for payload, length in items:
        batch.append(payload)
        consumed += length
        if len(batch) >= size:
            yield batch, consumed
            batch, consumed = [], 0
    if batch:
        yield batch, consumed


# --- queries -----------------------------------------------------------------------------


def _views(ledger: Ledger) -> tuple[Projector, Queries]:
    """The views, caught up: after this, queries reflect everything recorded."""
    projector = Projector(ledger)
    projector.catch_up()
    return projector, Queries(projector.store)


def _export(args: argparse.Namespace, ledger: Ledger) -> int:
    fields: tuple[str, ...] = EXPORT_FIELDS if args.view == "memberships" else EXPIRY_FIELDS
    records: Iterator[dict[str, Any]]
    if args.as_of or args.as_known_at:
        if args.view != "memberships":
            raise LedgerError("--as-of and --as-known-at apply to 'export memberships'")
        states = Chronicle(ledger).states_at(as_of=args.as_of, as_known_at=args.as_known_at)
        records = (membership_record(state) for state in states)
    else:
        _, queries = _views(ledger)
        records = queries.memberships() if args.view == "memberships" else queries.expiry()
    if args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow({k: _csv_value(v) for k, v in record.items()})
    else:
        for record in records:
            _print_json(record)
    return 0


def _membership(args: argparse.Namespace, ledger: Ledger) -> int:
    if args.as_of or args.as_known_at:
        state = Chronicle(ledger).state_at(
            args.org, args.customer, args.program, as_of=args.as_of, as_known_at=args.as_known_at
        )
        record: dict[str, Any] | None = membership_record(state)
    else:
        _, queries = _views(ledger)
        record = queries.membership(args.org, args.customer, args.program)
    if record is None:
        raise MembershipNotFoundError(
            f"no membership for org {args.org}, customer {args.customer}, "
            f"partner program {args.program}"
        )
    if args.json:
        _print_json(record)
    else:
        _print_fields(record)
    return 0


def _expiring(args: argparse.Namespace, ledger: Ledger) -> int:
    _, queries = _views(ledger)
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
        _print_json(rows)
    else:
        for row in rows:
            print(
                f"{row['date']}  {row['kind']:<10} org {row['org_id']} customer "
                f"{row['customer_id']} program {row['partner_program_id']}"
            )
    return 0


def _tiers(args: argparse.Namespace, ledger: Ledger) -> int:
    _, queries = _views(ledger)
    rows = queries.tiers(org_id=args.org, partner_program_id=args.program)
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            tier = "-" if row["tier_number"] is None else row["tier_number"]
            print(
                f"org {row['org_id']} program {row['partner_program_id']} tier {tier}: "
                f"{row['memberships']}"
            )
    return 0


def _project(args: argparse.Namespace, ledger: Ledger) -> int:
    projector = Projector(ledger, batch_size=args.batch_size)
    if args.status:
        status = {"views": projector.status(), "dead_letters": projector.store.dead_letters()}
        if args.json:
            _print_json(status)
        else:
            _print_view_status(status["views"])
            for letter in status["dead_letters"]:
                print(
                    f"dead letter: {letter['view']} position {letter['position']} "
                    f"membership {letter['membership_id']}: {letter['error']}"
                )
        return 0
    if not args.follow:
        processed = projector.catch_up()
        if args.json:
            _print_json({"processed": processed, "views": projector.status()})
        else:
            print(", ".join(f"{name}: {count} events" for name, count in processed.items()))
        return 0
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print("following the log; Ctrl-C to stop", file=sys.stderr)
    projector.follow(stop, on_error=lambda e: print(f"partner-ledger: {e}", file=sys.stderr))
    return 0


def _rebuild(args: argparse.Namespace, ledger: Ledger) -> int:
    unknown = [name for name in args.views if name not in VIEWS]
    if unknown:
        raise LedgerError(f"no view named {', '.join(unknown)}; views: {', '.join(VIEWS)}")
    projector = Projector(ledger)
    reports = []
    for name in args.views or list(VIEWS):
        with Progress(
            total=projector.head(), unit="ev", quiet=args.json, label=f"rebuild {name}"
        ) as progress:
            reports.append(
                projector.rebuild(VIEWS[name], diff_only=args.diff, progress=progress.advance)
            )
    if args.json:
        _print_json(reports)
        return 0
    for report in reports:
        verb = "switched to" if report["switched"] else "built (not switched)"
        print(
            f"{report['view']}: {verb} generation {report['to_generation']} at position "
            f"{report['position']}, {report['events']} events in {report['seconds']} s"
        )
        if report.get("from_generation") is not None:
            print(
                f"  compared with generation {report['from_generation']}: "
                f"{report['changed']} changed, {report['added']} added, "
                f"{report['removed']} removed"
            )
            for item in report["sample"]:
                print(f"  {item['key']}: {item['before']} -> {item['after']}")
    return 0


def _forget(args: argparse.Namespace, ledger: Ledger) -> int:
    had_key = ledger.forget(args.org, args.customer)
    result = {
        "org_id": args.org,
        "customer_id": args.customer,
        "forgotten": True,
        "had_identifiers": had_key,
    }
    if args.json:
        _print_json(result)
    else:
        print(
            f"org {args.org} customer {args.customer}: identifiers are now unreadable"
            + ("" if had_key else " (none were held; later ones will not be stored)")
        )
    return 0


def _verify(args: argparse.Namespace, ledger: Ledger) -> int:
    auditor = Auditor(ledger.store)
    breaks = auditor.verify()
    if args.against:
        breaks += auditor.verify_against(*parse_anchor(args.against))
    digest, position, events = auditor.digest()
    report = {
        "ok": not breaks,
        "events": events,
        "position": position,
        "digest": f"{digest}@{position}",
        "breaks": [{k: v for k, v in vars(b).items() if v is not None} for b in breaks],
    }
    if args.json:
        _print_json(report)
    else:
        for item in breaks:
            where = " ".join(
                f"{name} {value}"
                for name, value in (
                    ("membership", item.membership or item.membership_id),
                    ("version", item.version),
                    ("position", item.position),
                )
                if value is not None
            )
            print(
                f"{item.kind}: {where}: {item.detail}"
                + (f" (expected {item.expected}, found {item.found})" if item.expected else "")
            )
        print(
            f"{'verified' if not breaks else 'BROKEN'}: {events} events, "
            f"{len(breaks)} breaks, digest {digest}@{position}"
        )
    return 0 if not breaks else 3


def _digest(args: argparse.Namespace, ledger: Ledger) -> int:
    auditor = Auditor(ledger.store)
    auditor.checkpoint()
    digest, position, events = auditor.digest()
    if args.json:
        _print_json(
            {
                "digest": digest,
                "position": position,
                "events": events,
                "anchor": f"{digest}@{position}",
            }
        )
    else:
        print(f"{digest}@{position}")
    return 0


def _print_view_status(views: list[dict[str, Any]]) -> None:
    for view in views:
        age = view["oldest_unprocessed_age_seconds"]
        print(
            f"{view['view']}: generation {view['generation']} (schema "
            f"{view['schema_version']}, code {view['code_schema_version']}) position "
            f"{view['position']} of {view['head']}, lag {view['lag_events']} events"
            + (f", oldest unprocessed {age} s old" if age is not None else "")
            + f", {view['dead_letters']} dead letters"
        )


def _history(args: argparse.Namespace, ledger: Ledger) -> int:
    chronicle = Chronicle(ledger)
    if args.org is None:
        return _changes(args, chronicle)
    if args.program is None or args.period_org is not None:
        raise LedgerError("history takes ORG CUSTOMER PROGRAM, or --org N --from T --to T")
    entries = chronicle.history(args.org, args.customer, args.program)
    if args.json:
        _print_json(entries)
        return 0
    for entry in entries:
        print(_history_line(entry))
    return 0


def _changes(args: argparse.Namespace, chronicle: Chronicle) -> int:
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
                _print_json(entry)
            else:
                print(f"{tuple(entry['membership'].values())} {_history_line(entry)}")
            if entry["membership"] != current:
                current = entry["membership"]
                progress.advance(1)
    return 0


def _history_line(entry: dict[str, Any]) -> str:
    changes = ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in entry["changes"].items())
    flags = [*entry["anomalies"], *(["LATE"] if entry["late"] else [])]
    return (
        f"#{entry['position']} v{entry['version']} recorded {entry['recorded_at']} "
        f"occurred {entry['occurred_at']} {entry['event']}"
        + (f" {entry['update_type']}" if entry["update_type"] else "")
        + (f": {changes}" if changes else ": no change")
        + (f" [{' '.join(flags)}]" if flags else "")
    )


def _quarantine_list(args: argparse.Namespace, ledger: Ledger) -> int:
    rows = ledger.store.quarantined(include_resolved=args.all)
    if args.json:
        _print_json([_quarantine_json(row) for row in rows])
        return 0
    for row in rows:
        entry = _quarantine_json(row)
        state = f" resolved: {entry['resolution']}" if entry["resolution"] else ""
        print(
            f"{entry['id']} {entry['reason']} x{entry['times_received']} "
            f"{entry['received_at']}{state}: {entry['detail']}"
        )
    if not rows:
        print("quarantine is empty", file=sys.stderr)
    return 0


def _quarantine_show(args: argparse.Namespace, ledger: Ledger) -> int:
    row = ledger.quarantine_entry(args.id)
    entry = _quarantine_json(row) | {"raw": row["raw"].decode("utf-8", errors="replace")}
    if args.json:
        _print_json(entry)
    else:
        _print_fields({k: v for k, v in entry.items() if k != "raw"})
        print("raw:")
        print(entry["raw"])
    return 0


def _quarantine_replay(args: argparse.Namespace, ledger: Ledger) -> int:
    results = ledger.replay_quarantined(args.ids or None)
    if args.json:
        _print_json([{"id": qid, **_outcome_json(outcome)} for qid, outcome in results])
    else:
        for qid, outcome in results:
            print(f"{qid} {outcome.status}" + (f" {outcome.reason}" if outcome.reason else ""))
        if not results:
            print("nothing to replay", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace, ledger: Ledger) -> int:
    counts = ledger.store.counts()
    status: dict[str, Any] = {
        "recorded": counts["recorded"],
        "quarantined_open": counts["quarantined"],
        "head_position": ledger.recorder.max_notification_id() or 0,
        "views": Projector(ledger).status(),
    }
    if args.json:
        _print_json(status)
    else:
        _print_fields({k: v for k, v in status.items() if k != "views"})
        _print_view_status(status["views"])
    return 0


def _key_arguments(command: argparse.ArgumentParser, *, optional: bool = False) -> None:
    nargs = "?" if optional else None
    command.add_argument("org", type=_identifier, metavar="ORG", nargs=nargs)
    command.add_argument("customer", type=_identifier, metavar="CUSTOMER", nargs=nargs)
    command.add_argument("program", type=_identifier, metavar="PROGRAM", nargs=nargs)


def _time_travel(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--as-of",
        type=_moment_end,
        metavar="T",
        help="the state true at T (events that occurred by T), as known now",
    )
    command.add_argument(
        "--as-known-at",
        type=_moment_end,
        metavar="K",
        help="what the ledger said at K (events recorded by K)",
    )


def _moment(text: str, *, end_of_day: bool) -> datetime:
    try:
        return parse_moment(text, end_of_day=end_of_day)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _moment_start(text: str) -> datetime:
    return _moment(text, end_of_day=False)


def _moment_end(text: str) -> datetime:
    return _moment(text, end_of_day=True)


def _identifier(text: str) -> int:
    """An org, customer or program id: what the ledger can store (1 to 2^63-1)."""
    if not text.isdigit() or not 1 <= int(text) <= 2**63 - 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an id (an integer from 1 to 2^63-1)")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a YYYY-MM-DD date") from None


def _days(text: str) -> timedelta:
    number = text.removesuffix("d")
    if not number.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days such as 30d")
    return timedelta(days=int(number))


# --- output ------------------------------------------------------------------------------


def _csv_value(value: Any) -> Any:
    """CSV cells read like the JSON export: empty for null, true/false for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {k: v for k, v in vars(outcome).items() if v is not None}


def _quarantine_json(row: dict[str, Any]) -> dict[str, Any]:
    def moment(us: int | None) -> str | None:
        return None if us is None else iso(datetime.fromtimestamp(us / 1e6, tz=UTC))

    return {
        "id": row["id"],
        "reason": row["reason"],
        "detail": row["detail"],
        "received_at": moment(row["received_at_us"]),
        "last_received_at": moment(row["last_received_at_us"]),
        "times_received": row["times_received"],
        "resolved_at": moment(row["resolved_at_us"]),
        "resolution": row["resolution"],
    }


def _print_json(value: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str), file=stream or sys.stdout)


def _print_fields(record: dict[str, Any]) -> None:
    width = max(len(k) for k in record)
    for key, value in record.items():
        print(f"{key:<{width}}  {'-' if value is None else value}")


if __name__ == "__main__":
    raise SystemExit(main())
