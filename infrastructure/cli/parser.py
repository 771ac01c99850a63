"""The parser of the command line: global flags, the commands, and how each names its
handler (``module:function``, imported only when it runs). Its groups of commands are in
`parser_reads` (views, history, expiring, tiers) and `parser_operations` (views' upkeep,
audit, status); recording and the quarantine are here."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, Protocol

from infrastructure.cli import arguments, parser_operations, parser_reads
from infrastructure.moments import FORMS

DB_HELP = (
    "sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
    "(default: $PARTNER_LEDGER_DB, else sqlite:///ledger.db)"
)


class Command(Protocol):
    """Adds one command to the parser: its name, handler, help and parent parsers."""

    def __call__(
        self, name: str, handler: str, help: str, parents: Sequence[argparse.ArgumentParser] = ...
    ) -> argparse.ArgumentParser: ...


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

    def command(
        name: str, handler: str, help: str, parents: Sequence[argparse.ArgumentParser] = (data,)
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, parents=list(parents))
        sub.set_defaults(handler=handler)
        return sub

    groups = (
        _recording,
        parser_reads.views,
        parser_reads.history,
        parser_reads.expiring,
        parser_reads.tiers,
        parser_operations.maintenance,
        parser_operations.audit,
    )
    for group in groups:
        group(command)
    _quarantine(commands, data)
    parser_operations.status(command)

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
    arguments.json_flag(ingest, "print one JSON summary object")
    arguments.batch_size(ingest, default=None, text="payloads per transaction (default 500)")
    ingest.set_defaults(creates_ledger=True)


def _quarantine(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], data: argparse.ArgumentParser
) -> None:
    """quarantine list, show, replay, drop."""
    quarantine = commands.add_parser("quarantine", help="payloads that could not be recorded")
    actions = quarantine.add_subparsers(
        title="actions", metavar="ACTION", required=True, dest="action"
    )

    def action(name: str, handler: str, help: str) -> argparse.ArgumentParser:
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
    arguments.json_flag(listing, "print one JSON array")
    show = action(
        "show", "infrastructure.cli.recording:quarantine_show", "one entry with its raw bytes"
    )
    show.add_argument("id", metavar="ID", help="an id or a unique prefix")
    arguments.json_flag(show)
    replay = action(
        "replay",
        "infrastructure.cli.recording:quarantine_replay",
        "parse entries again and record what now passes",
    )
    replay.add_argument("ids", nargs="*", metavar="ID", help="default: every open entry")
    arguments.json_flag(replay, "print one JSON array")

    drop = action(
        "drop",
        "infrastructure.cli.recording:quarantine_drop",
        "close entries that are not Capillary's, keeping their bytes and why",
    )
    drop.add_argument("ids", nargs="+", metavar="ID", help="ids or unique prefixes")
    drop.add_argument(
        "--why", required=True, metavar="TEXT", help="the reason, kept with each entry"
    )
    arguments.json_flag(drop)
