"""The ``partner-ledger`` command line: a thin door onto the Ledger application.

Every error a user can cause (bad URL, unreachable database, unreadable file, unknown
membership) is one sentence on stderr and exit status 1; usage errors exit 2; ``verify``
exits 3 when the stored history does not verify.
"""

from __future__ import annotations

import argparse
import sys

from domain.errors import LedgerError
from infrastructure.cli import arguments, operating, reading, recording
from infrastructure.http.serve import add_serve_command
from infrastructure.settings import Settings
from infrastructure.wiring import open_ledger
from projections.views import VIEWS


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler") and not hasattr(args, "serve"):
        parser.print_help(sys.stderr)
        return 2
    try:
        settings = Settings(db=args.db) if args.db else Settings()
        if hasattr(args, "serve"):  # the HTTP service opens one ledger per worker process
            return int(args.serve(args, settings))
        # Only the commands that record may make a new ledger; the others need one.
        with open_ledger(settings, create=getattr(args, "creates_ledger", False)) as ledger:
            return int(args.handler(args, ledger))
    except LedgerError as error:
        print(f"partner-ledger: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("partner-ledger: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def build_parser() -> argparse.ArgumentParser:
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
        "--batch-size", type=arguments.positive, default=None, help="payloads per transaction"
    )
    ingest.set_defaults(handler=recording.ingest, creates_ledger=True)

    export = commands.add_parser("export", help="write a view as JSON Lines or CSV")
    export.add_argument("view", choices=["memberships", "expiry"])
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    arguments.time_travel(export)
    export.set_defaults(handler=reading.export)

    membership = commands.add_parser("membership", help="one membership's state")
    arguments.key_arguments(membership)
    arguments.time_travel(membership)
    membership.add_argument("--json", action="store_true")
    membership.set_defaults(handler=reading.membership)

    history = commands.add_parser(
        "history",
        help="every recorded event of one membership, or (--org --from --to) the changes "
        "recorded across memberships in a period",
    )
    arguments.key_arguments(history, optional=True)
    history.add_argument("--org", type=arguments.identifier, dest="period_org", metavar="N")
    history.add_argument("--program", type=arguments.identifier, dest="period_program", metavar="N")
    history.add_argument("--from", dest="start", type=arguments.moment_start, metavar="T")
    history.add_argument("--to", dest="end", type=arguments.moment_end, metavar="T")
    history.add_argument("--json", action="store_true")
    history.set_defaults(handler=reading.history)

    expiring = commands.add_parser("expiring", help="expiry dates in a window, by date")
    expiring.add_argument("--org", type=arguments.identifier)
    expiring.add_argument("--program", type=arguments.identifier)
    expiring.add_argument("--kind", choices=["membership", "tier", "scheduled"])
    expiring.add_argument("--from", dest="start", type=arguments.calendar_date, metavar="DATE")
    window = expiring.add_mutually_exclusive_group()
    window.add_argument("--to", dest="end", type=arguments.calendar_date, metavar="DATE")
    window.add_argument(
        "--within", type=arguments.days, metavar="Nd", help="from --from (default today)"
    )
    expiring.add_argument("--limit", type=arguments.positive, default=100)
    expiring.add_argument("--json", action="store_true")
    expiring.set_defaults(handler=reading.expiring)

    tiers = commands.add_parser("tiers", help="LINKED memberships per org, program and tier")
    tiers.add_argument("--org", type=arguments.identifier)
    tiers.add_argument("--program", type=arguments.identifier)
    tiers.add_argument("--json", action="store_true")
    tiers.set_defaults(handler=reading.tiers)

    project = commands.add_parser("project", help="catch every view up (--follow: keep going)")
    project.add_argument("--follow", action="store_true")
    project.add_argument("--status", action="store_true", help="views, lag and dead letters")
    project.add_argument(
        "--batch-size", type=arguments.positive, default=2000, help="events per transaction"
    )
    project.add_argument("--json", action="store_true")
    project.set_defaults(handler=operating.project, creates_ledger=True)

    rebuild = commands.add_parser("rebuild", help="rebuild views blue/green from the log")
    rebuild.add_argument(
        "views", nargs="*", metavar="VIEW", help=f"default: all ({', '.join(VIEWS)})"
    )
    rebuild.add_argument(
        "--diff", action="store_true", help="report what would change, and do not switch"
    )
    rebuild.add_argument("--json", action="store_true")
    rebuild.set_defaults(handler=operating.rebuild)

    forget = commands.add_parser(
        "forget", help="make a customer's identifiers unreadable for good (crypto-shredding)"
    )
    forget.add_argument("org", type=arguments.identifier, metavar="ORG")
    forget.add_argument("customer", type=arguments.identifier, metavar="CUSTOMER")
    forget.add_argument("--json", action="store_true")
    forget.set_defaults(handler=operating.forget)

    verify = commands.add_parser("verify", help="recompute hash chains and the log digest")
    verify.add_argument(
        "--against",
        metavar="DIGEST@POSITION",
        help="also check a digest published earlier with 'digest'",
    )
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=operating.verify)

    digest = commands.add_parser("digest", help="print the log digest as DIGEST@POSITION")
    digest.add_argument("--json", action="store_true")
    digest.set_defaults(handler=operating.digest)

    quarantine = commands.add_parser("quarantine", help="payloads that could not be recorded")
    actions = quarantine.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="open entries (--all: also resolved)")
    listing.add_argument("--all", action="store_true")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=recording.quarantine_list)
    show = actions.add_parser("show", help="one entry with its raw bytes")
    show.add_argument("id", metavar="ID", help="an id or a unique prefix")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=recording.quarantine_show)
    replay = actions.add_parser("replay", help="parse entries again and record what now passes")
    replay.add_argument("ids", nargs="*", metavar="ID", help="default: every open entry")
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(handler=recording.quarantine_replay)

    status = commands.add_parser("status", help="what the ledger holds")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=operating.status)

    add_serve_command(commands)
    return parser
