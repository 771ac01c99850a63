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
from collections.abc import Callable, Iterator
from typing import Any

from infrastructure.cli import arguments
from infrastructure.cli.parser import build_parser

__all__ = ["build_parser", "main"]


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
    # Before opening anything.
    arguments.check_window(getattr(args, "start", None), getattr(args, "end", None))
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


def _handler(name: str) -> Callable[..., Any]:
    module, _, function = name.partition(":")
    handler: Callable[..., Any] = getattr(importlib.import_module(module), function)
    return handler


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[None]:
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
