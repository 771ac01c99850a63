"""The commands that read the views and the log: export, membership, memberships, history,
expiring, tiers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infrastructure.cli import arguments

if TYPE_CHECKING:
    from infrastructure.cli.parser import Command


def views(command: Command) -> None:
    """export, membership, memberships."""
    export = command(
        "export", "infrastructure.cli.reading:export", "write a view as JSON Lines or CSV"
    )
    export.add_argument(
        "view",
        choices=["memberships", "expiry"],
        help="memberships: one line per membership; expiry: one line per expiry date",
    )
    arguments.output_format(export, ("jsonl", "csv", "table"), default="jsonl")
    arguments.time_travel(export)

    membership = command(
        "membership", "infrastructure.cli.reading:membership", "one membership's state"
    )
    arguments.key_arguments(membership)
    arguments.time_travel(membership)
    arguments.json_flag(membership)

    memberships = command(
        "memberships", "infrastructure.cli.reading:memberships", "every program of one customer"
    )
    arguments.key_arguments(memberships, program=False)
    arguments.json_flag(memberships, "print JSON Lines")


def history(command: Command) -> None:
    """history: of one membership, or of a period."""
    history = command(
        "history",
        "infrastructure.cli.history:history",
        "every recorded event of one membership, or (--org --from --to) the changes "
        "recorded across memberships in a period",
    )
    arguments.key_arguments(history, optional=True)
    arguments.org_and_program(
        history,
        org_help="a period's history: the org whose memberships changed",
        program_help="a period's history: only this partner program",
        dest_prefix="period_",
    )
    arguments.window(
        history,
        types=(arguments.moment_start, arguments.moment_end),
        metavar="T",
        helps=(
            "a period's history: recorded from T (a date: its start)",
            "a period's history: recorded up to T (a date: its end)",
        ),
    )
    arguments.json_flag(history, "print JSON Lines, one per event")
    arguments.output_format(history, ("table", "csv"))


def expiring(command: Command) -> None:
    """expiring: a window of expiry dates, page by page."""
    expiring = command(
        "expiring", "infrastructure.cli.reading:expiring", "expiry dates in a window, by date"
    )
    arguments.org_and_program(expiring, org_help="only memberships of this org")
    expiring.add_argument(
        "--kind", choices=["membership", "tier", "scheduled"], help="only this kind of date"
    )
    end = expiring.add_mutually_exclusive_group()
    arguments.window(
        expiring,
        types=(arguments.calendar_date, arguments.calendar_date),
        metavar="DATE",
        helps=(
            "first day of the window (default today, UTC)",
            "last day of the window (default: no end)",
        ),
        end_in=end,
    )
    end.add_argument(
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
    arguments.json_flag(expiring, "print one JSON array")
    arguments.output_format(expiring, ("table", "csv"))


def tiers(command: Command) -> None:
    """tiers."""
    tiers = command(
        "tiers", "infrastructure.cli.reading:tiers", "LINKED memberships per org, program and tier"
    )
    arguments.org_and_program(tiers, org_help="only this org")
    arguments.json_flag(tiers, "print one JSON array")
    arguments.output_format(tiers, ("table", "csv"))
