"""The commands that keep the views and audit the ledger: project, rebuild, forget, verify,
digest, status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infrastructure.cli import arguments

if TYPE_CHECKING:
    from infrastructure.cli.parser import Command

VIEW_NAMES = "memberships, expiry"  # projections.views.VIEWS, without importing it


def maintenance(command: Command) -> None:
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
    arguments.batch_size(project, default=2000, text="events per transaction (default 2000)")
    arguments.json_flag(project)
    project.set_defaults(creates_ledger=True)

    rebuild = command(
        "rebuild", "infrastructure.cli.operating:rebuild", "rebuild views blue/green from the log"
    )
    rebuild.add_argument("views", nargs="*", metavar="VIEW", help=f"default: all ({VIEW_NAMES})")
    rebuild.add_argument(
        "--diff", action="store_true", help="report what would change, and do not switch"
    )
    arguments.json_flag(rebuild)


def audit(command: Command) -> None:
    """forget, verify, digest."""
    forget = command(
        "forget",
        "infrastructure.cli.operating:forget",
        "make a customer's identifiers unreadable for good (crypto-shredding)",
    )
    arguments.key_arguments(forget, program=False)
    forget.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation (needed off a terminal)"
    )
    forget.add_argument(
        "--force", action="store_true", help="also forget a customer the ledger has never seen"
    )
    arguments.json_flag(forget)

    verify = command(
        "verify", "infrastructure.cli.operating:verify", "recompute hash chains and the log digest"
    )
    verify.add_argument(
        "--against",
        metavar="DIGEST@POSITION",
        help="also check a digest published earlier with 'digest'",
    )
    arguments.json_flag(verify)

    digest = command(
        "digest", "infrastructure.cli.operating:digest", "print the log digest as DIGEST@POSITION"
    )
    arguments.json_flag(digest)


def status(command: Command) -> None:
    """status."""
    status = command("status", "infrastructure.cli.operating:status", "what the ledger holds")
    arguments.json_flag(status)
