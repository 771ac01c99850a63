"""The ``partner-ledger`` command line: a thin door onto the Ledger application.

Every error a user can cause (bad URL, unreachable database, unreadable file, unknown
membership) is one sentence on stderr and exit status 1; usage errors exit 2; ``verify``
exits 3 when the stored history does not verify.

Building the parser imports nothing heavy (no database driver, no eventsourcing, no pydantic,
no web framework): ``--help``, ``--version`` and usage errors answer at interpreter speed.
Each command names its handler as ``module:function``, imported only when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from infrastructure.cli import arguments
from infrastructure.moments import FORMS

VIEW_NAMES = "memberships, expiry"  # projections.views.VIEWS, without importing it
JSON_HELP = "print JSON instead of a table"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(full="serve" in argv or "completion" in argv)
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    from domain.errors import LedgerError

    try:
        with _output(getattr(args, "output", None)):
            return _run(args)
    except LedgerError as error:
        print(f"partner-ledger: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("partner-ledger: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _run(args: argparse.Namespace) -> int:
    _check_window(args)
    handler = _handler(args.handler)
    if args.command == "completion":
        return int(handler(args, build_parser(full=True)))
    from infrastructure.settings import Settings

    settings = Settings(db=args.db) if args.db else Settings()
    if args.command == "serve":  # the HTTP service opens one ledger per worker process
        return int(handler(args, settings))
    from infrastructure.wiring import open_ledger

    # Only the commands that record may make a new ledger; the others need one.
    with open_ledger(settings, create=getattr(args, "creates_ledger", False)) as ledger:
        return int(handler(args, ledger))


def _check_window(args: argparse.Namespace) -> None:
    """A window that ends before it starts can match nothing: say so before opening anything."""
    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if start is not None and end is not None and end < start:
        from domain.errors import LedgerError

        raise LedgerError(f"--to {_shown(end)} is before --from {_shown(start)}: nothing can match")


def _shown(value: Any) -> str:
    if hasattr(value, "hour"):
        return str(value.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    return str(value)


def _handler(name: str) -> Callable[..., Any]:
    module, _, function = name.partition(":")
    handler: Callable[..., Any] = getattr(importlib.import_module(module), function)
    return handler


@contextlib.contextmanager
def _output(path: str | None) -> Any:
    """stdout, or the file ``--output`` names (written as the command prints)."""
    if path is None or path == "-":
        yield
        return
    from domain.errors import LedgerError

    try:
        stream = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as error:
        raise LedgerError(f"cannot write {path}: {error.strerror or error}") from None
    with stream, contextlib.redirect_stdout(stream):
        yield


class _Version(argparse.Action):
    """``--version``, read from the installed package only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib.metadata import version

        print(f"partner-ledger {version('partner-ledger')}")
        parser.exit()


def build_parser(*, full: bool = True) -> argparse.ArgumentParser:
    """The command line. Without ``full``, ``serve``'s own flags are left out (they need the
    HTTP package, which is only imported when ``serve`` or ``completion`` is asked for)."""
    parser = argparse.ArgumentParser(
        prog="partner-ledger",
        description="An auditable ledger of Capillary partner-program memberships.",
        epilog=f"Times (T, K, DATE) are {FORMS}. Run 'partner-ledger COMMAND --help' for more.",
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument("--db", default=None, metavar="URL", help=DB_HELP)
    # --db is also accepted after the command; SUPPRESS keeps the one before it otherwise.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, metavar="URL", help=DB_HELP)
    data = argparse.ArgumentParser(add_help=False, parents=[common])
    data.add_argument(
        "--output", metavar="FILE", help="write to FILE instead of stdout (- is stdout)"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")

    def command(name: str, handler: str, help: str, parents: Any = (data,)) -> Any:
        sub = commands.add_parser(name, help=help, description=help, parents=list(parents))
        sub.set_defaults(handler=handler)
        return sub

    for group in (_recording, _views, _history, _expiring, _tiers, _maintenance, _audit):
        group(command)
    _quarantine(commands, data)
    status = command("status", "infrastructure.cli.operating:status", "what the ledger holds")
    status.add_argument("--json", action="store_true", help=JSON_HELP)

    serve = command(
        "serve",
        "infrastructure.http.serve:run",
        "receive webhooks and answer queries over HTTP",
        parents=(common,),
    )
    if full:
        from infrastructure.http.serve import add_arguments

        add_arguments(serve)

    completion = command(
        "completion",
        "infrastructure.cli.completion:completion",
        'print a shell completion script: eval "$(partner-ledger completion bash)"',
    )
    completion.add_argument("shell", choices=["bash"], help="the shell (bash)")
    return parser


Command = Callable[..., Any]  # adds one command: (name, handler, help[, parents])


def _recording(command: Command) -> None:
    """ingest."""
    ingest = command(
        "ingest", "infrastructure.cli.recording:ingest", "record notifications from files or stdin"
    )
    ingest.add_argument(
        "paths",
        nargs="+",
        metavar="PATH|-",
        help="JSON Lines files, .json files (one object or an array), either gzipped (.gz), "
        "or - for stdin",
    )
    ingest.add_argument("--json", action="store_true", help="print one JSON summary object")
    ingest.add_argument(
        "--batch-size",
        type=arguments.positive,
        default=None,
        metavar="N",
        help=f"payloads per transaction (default {arguments.INGEST_BATCH_SIZE})",
    )
    ingest.set_defaults(creates_ledger=True)


def _views(command: Command) -> None:
    """export, membership, memberships."""
    export = command(
        "export", "infrastructure.cli.reading:export", "write a view as JSON Lines or CSV"
    )
    export.add_argument(
        "view",
        choices=["memberships", "expiry"],
        help="memberships: one line per membership; expiry: one line per expiry date",
    )
    _format(export, ("jsonl", "csv", "table"), default="jsonl")
    arguments.time_travel(export)

    membership = command(
        "membership", "infrastructure.cli.reading:membership", "one membership's state"
    )
    arguments.key_arguments(membership)
    arguments.time_travel(membership)
    membership.add_argument("--json", action="store_true", help=JSON_HELP)

    memberships = command(
        "memberships", "infrastructure.cli.reading:memberships", "every program of one customer"
    )
    memberships.add_argument("org", type=arguments.identifier, metavar="ORG", help="org id")
    memberships.add_argument(
        "customer", type=arguments.identifier, metavar="CUSTOMER", help="customer id"
    )
    memberships.add_argument("--json", action="store_true", help="print JSON Lines")


def _history(command: Command) -> None:
    """history: of one membership, or of a period."""
    history = command(
        "history",
        "infrastructure.cli.reading:history",
        "every recorded event of one membership, or (--org --from --to) the changes "
        "recorded across memberships in a period",
    )
    arguments.key_arguments(history, optional=True)
    history.add_argument(
        "--org",
        type=arguments.identifier,
        dest="period_org",
        metavar="N",
        help="a period's history: the org whose memberships changed",
    )
    history.add_argument(
        "--program",
        type=arguments.identifier,
        dest="period_program",
        metavar="N",
        help="a period's history: only this partner program",
    )
    history.add_argument(
        "--from",
        dest="start",
        type=arguments.moment_start,
        metavar="T",
        help="a period's history: recorded from T (a date: its start)",
    )
    history.add_argument(
        "--to",
        dest="end",
        type=arguments.moment_end,
        metavar="T",
        help="a period's history: recorded up to T (a date: its end)",
    )
    history.add_argument("--json", action="store_true", help="print JSON Lines, one per event")
    _format(history, ("table", "csv"))


def _expiring(command: Command) -> None:
    """expiring: a window of expiry dates, page by page."""
    expiring = command(
        "expiring", "infrastructure.cli.reading:expiring", "expiry dates in a window, by date"
    )
    expiring.add_argument(
        "--org", type=arguments.identifier, metavar="N", help="only memberships of this org"
    )
    expiring.add_argument(
        "--program", type=arguments.identifier, metavar="N", help="only this partner program"
    )
    expiring.add_argument(
        "--kind", choices=["membership", "tier", "scheduled"], help="only this kind of date"
    )
    expiring.add_argument(
        "--from",
        dest="start",
        type=arguments.calendar_date,
        metavar="DATE",
        help="first day of the window (default today, UTC)",
    )
    window = expiring.add_mutually_exclusive_group()
    window.add_argument(
        "--to",
        dest="end",
        type=arguments.calendar_date,
        metavar="DATE",
        help="last day of the window (default: no end)",
    )
    window.add_argument(
        "--within", type=arguments.days, metavar="Nd", help="the N days from --from, e.g. 30d"
    )
    expiring.add_argument(
        "--limit",
        type=arguments.positive,
        default=100,
        metavar="N",
        help="at most N rows (default 100)",
    )
    expiring.add_argument(
        "--cursor", metavar="C", help="the next page: the cursor the previous page gave"
    )
    expiring.add_argument("--json", action="store_true", help="print one JSON array")
    _format(expiring, ("table", "csv"))


def _tiers(command: Command) -> None:
    """tiers."""
    tiers = command(
        "tiers", "infrastructure.cli.reading:tiers", "LINKED memberships per org, program and tier"
    )
    tiers.add_argument("--org", type=arguments.identifier, metavar="N", help="only this org")
    tiers.add_argument(
        "--program", type=arguments.identifier, metavar="N", help="only this partner program"
    )
    tiers.add_argument("--json", action="store_true", help="print one JSON array")
    _format(tiers, ("table", "csv"))


def _maintenance(command: Command) -> None:
    """project, rebuild."""
    project = command(
        "project",
        "infrastructure.cli.operating:project",
        "catch every view up (--follow: keep going)",
    )
    project.add_argument(
        "--follow", action="store_true", help="keep the views current until Ctrl-C or SIGTERM"
    )
    project.add_argument("--status", action="store_true", help="views, lag and dead letters")
    project.add_argument(
        "--batch-size",
        type=arguments.positive,
        default=2000,
        metavar="N",
        help="events per transaction (default 2000)",
    )
    project.add_argument("--json", action="store_true", help=JSON_HELP)
    project.set_defaults(creates_ledger=True)

    rebuild = command(
        "rebuild", "infrastructure.cli.operating:rebuild", "rebuild views blue/green from the log"
    )
    rebuild.add_argument("views", nargs="*", metavar="VIEW", help=f"default: all ({VIEW_NAMES})")
    rebuild.add_argument(
        "--diff", action="store_true", help="report what would change, and do not switch"
    )
    rebuild.add_argument("--json", action="store_true", help=JSON_HELP)


def _audit(command: Command) -> None:
    """forget, verify, digest."""
    forget = command(
        "forget",
        "infrastructure.cli.operating:forget",
        "make a customer's identifiers unreadable for good (crypto-shredding)",
    )
    forget.add_argument("org", type=arguments.identifier, metavar="ORG", help="org id")
    forget.add_argument(
        "customer", type=arguments.identifier, metavar="CUSTOMER", help="customer id"
    )
    forget.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation (needed off a terminal)"
    )
    forget.add_argument(
        "--force", action="store_true", help="also forget a customer the ledger has never seen"
    )
    forget.add_argument("--json", action="store_true", help=JSON_HELP)

    verify = command(
        "verify", "infrastructure.cli.operating:verify", "recompute hash chains and the log digest"
    )
    verify.add_argument(
        "--against",
        metavar="DIGEST@POSITION",
        help="also check a digest published earlier with 'digest'",
    )
    verify.add_argument("--json", action="store_true", help=JSON_HELP)

    digest = command(
        "digest", "infrastructure.cli.operating:digest", "print the log digest as DIGEST@POSITION"
    )
    digest.add_argument("--json", action="store_true", help=JSON_HELP)


def _quarantine(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], data: argparse.ArgumentParser
) -> None:
    """quarantine list, show, replay, drop."""
    quarantine = commands.add_parser("quarantine", help="payloads that could not be recorded")
    actions = quarantine.add_subparsers(
        title="actions", metavar="ACTION", required=True, dest="action"
    )

    def action(name: str, handler: str, help: str) -> Any:
        sub = actions.add_parser(name, help=help, description=help, parents=[data])
        sub.set_defaults(handler=handler, command="quarantine")
        return sub

    listing = action(
        "list", "infrastructure.cli.recording:quarantine_list", "open entries (--all: also closed)"
    )
    listing.add_argument(
        "--all", action="store_true", help="also entries replayed or dropped, with how"
    )
    listing.add_argument("--reason", metavar="CODE", help="only entries with this reason code")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    show = action(
        "show", "infrastructure.cli.recording:quarantine_show", "one entry with its raw bytes"
    )
    show.add_argument("id", metavar="ID", help="an id or a unique prefix")
    show.add_argument("--json", action="store_true", help=JSON_HELP)
    replay = action(
        "replay",
        "infrastructure.cli.recording:quarantine_replay",
        "parse entries again and record what now passes",
    )
    replay.add_argument("ids", nargs="*", metavar="ID", help="default: every open entry")
    replay.add_argument("--json", action="store_true", help="print one JSON array")

    drop = action(
        "drop",
        "infrastructure.cli.recording:quarantine_drop",
        "close entries that are not Capillary's, keeping their bytes and why",
    )
    drop.add_argument("ids", nargs="+", metavar="ID", help="ids or unique prefixes")
    drop.add_argument(
        "--why", required=True, metavar="TEXT", help="the reason, kept with each entry"
    )
    drop.add_argument("--json", action="store_true", help=JSON_HELP)


DB_HELP = (
    "sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
    "(default: $PARTNER_LEDGER_DB, else sqlite:///ledger.db)"
)


def _format(
    command: argparse.ArgumentParser, choices: Sequence[str], default: str = "table"
) -> None:
    command.add_argument(
        "--format",
        choices=list(choices),
        default=default,
        help=f"output format: {', '.join(choices)} (default {default})",
    )
