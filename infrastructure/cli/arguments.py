"""Argument types and shared flags of the command line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date, datetime, timedelta

from infrastructure.moments import FORMS, parse_day, parse_moment

JSON_HELP = "print JSON instead of a table"


def key_arguments(
    command: argparse.ArgumentParser, *, optional: bool = False, program: bool = True
) -> None:
    """ORG CUSTOMER [PROGRAM]: a membership's key (without ``program``, a customer's)."""
    nargs = "?" if optional else None
    command.add_argument("org", type=identifier, metavar="ORG", nargs=nargs, help="org id")
    command.add_argument(
        "customer", type=identifier, metavar="CUSTOMER", nargs=nargs, help="customer id"
    )
    if program:
        command.add_argument(
            "program", type=identifier, metavar="PROGRAM", nargs=nargs, help="partner program id"
        )


def org_and_program(
    command: argparse.ArgumentParser,
    *,
    org_help: str,
    program_help: str = "only this partner program",
    dest_prefix: str = "",
) -> None:
    """``--org N`` and ``--program N``: the filters of the reads over many memberships."""
    for flag, text in (("org", org_help), ("program", program_help)):
        command.add_argument(
            f"--{flag}", type=identifier, dest=f"{dest_prefix}{flag}", metavar="N", help=text
        )


def window(
    command: argparse.ArgumentParser,
    *,
    types: tuple[Callable[[str], object], Callable[[str], object]],
    metavar: str,
    helps: tuple[str, str],
    end_in: argparse._ActionsContainer | None = None,
) -> None:
    """``--from`` and ``--to`` (``start``, ``end``); ``--to`` in ``end_in`` when given (a group
    of flags that exclude each other)."""
    command.add_argument("--from", dest="start", type=types[0], metavar=metavar, help=helps[0])
    (end_in or command).add_argument(
        "--to", dest="end", type=types[1], metavar=metavar, help=helps[1]
    )


def json_flag(command: argparse.ArgumentParser, text: str = JSON_HELP) -> None:
    command.add_argument("--json", action="store_true", help=text)


def output_format(
    command: argparse.ArgumentParser, choices: tuple[str, ...], default: str = "table"
) -> None:
    command.add_argument(
        "--format",
        choices=list(choices),
        default=default,
        help=f"output format: {', '.join(choices)} (default {default})",
    )


def batch_size(command: argparse.ArgumentParser, *, default: int | None, text: str) -> None:
    command.add_argument("--batch-size", type=positive, default=default, metavar="N", help=text)


def time_travel(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--as-of",
        type=moment_end,
        metavar="T",
        help=f"the state true at T (events that occurred by T), as known now. T is {FORMS}; "
        "a date means the end of that day",
    )
    command.add_argument(
        "--as-known-at",
        type=moment_end,
        metavar="K",
        help="what the ledger said at K (events recorded by K); K takes the forms of T",
    )


def check_window(
    start: date | None, end: date | None, *, start_flag: str = "--from", end_flag: str = "--to"
) -> None:
    """A window that ends before it starts can match nothing: say so (dates, or moments)."""
    if start is not None and end is not None and end < start:
        from domain.errors import LedgerError

        raise LedgerError(
            f"{end_flag} {_shown(end)} is before {start_flag} {_shown(start)}: nothing can match"
        )


def _shown(value: date) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def moment(text: str, *, end_of_day: bool) -> datetime:
    try:
        return parse_moment(text, end_of_day=end_of_day)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def moment_start(text: str) -> datetime:
    return moment(text, end_of_day=False)


def moment_end(text: str) -> datetime:
    return moment(text, end_of_day=True)


def identifier(text: str) -> int:
    """An org, customer or program id: what the ledger can store (1 to 2^63-1)."""
    if not text.isdigit() or not 1 <= int(text) <= 2**63 - 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an id (an integer from 1 to 2^63-1)")
    return int(text)


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def calendar_date(text: str) -> date:
    try:
        return parse_day(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def days(text: str) -> timedelta:
    number = text.removesuffix("d")
    if not number.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days such as 30d")
    return timedelta(days=int(number))
