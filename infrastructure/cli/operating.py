"""Commands that run the ledger: projections, rebuilds, status, verification, forgetting."""

from __future__ import annotations

import argparse
import select
import signal
import sys
import threading
from typing import Any

from domain import services
from domain.errors import LedgerError
from domain.integrity import parse_anchor
from domain.ledger import Ledger
from infrastructure.cli.output import (
    note,
    plural,
    print_fields,
    print_json,
    print_view_status,
)
from infrastructure.cli.table import human, print_table
from infrastructure.progress import Progress
from projections.runner import Projector
from projections.views import VIEWS


def project(args: argparse.Namespace, ledger: Ledger) -> int:
    projector = Projector(ledger, batch_size=args.batch_size)
    if args.status:
        status = {"views": projector.status(), "dead_letters": projector.store.dead_letters()}
        if args.json:
            print_json(status)
        else:
            print_view_status(status["views"])
            if status["dead_letters"]:
                print_table(
                    ("dead letter of", "position", "membership", "error"),
                    (
                        [d["view"], d["position"], d["membership_id"], d["error"]]
                        for d in status["dead_letters"]
                    ),
                )
        return 0
    if not args.follow:
        processed = projector.catch_up()
        if args.json:
            print_json({"processed": processed, "views": projector.status()})
        else:
            print(
                ", ".join(f"{name}: {plural(count, 'event')}" for name, count in processed.items())
            )
        return 0
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print("following the log; Ctrl-C to stop", file=sys.stderr)
    projector.follow(stop, on_error=lambda e: print(f"partner-ledger: {e}", file=sys.stderr))
    return 0


def rebuild(args: argparse.Namespace, ledger: Ledger) -> int:
    unknown = [name for name in args.views if name not in VIEWS]
    if unknown:
        raise LedgerError(f"no view named {', '.join(unknown)}; views: {', '.join(VIEWS)}")
    projector = Projector(ledger)
    names = list(dict.fromkeys(args.views)) or list(VIEWS)
    # One pass over the log for all the named views.
    with Progress(
        total=projector.last_position(),
        unit="ev",
        quiet=args.json,
        label=f"rebuild {', '.join(names)}",
    ) as progress:
        built = projector.rebuild_views(
            [VIEWS[name] for name in names], diff_only=args.diff, progress=progress.advance
        )
    reports = [built[name] for name in names]
    if args.json:
        print_json(reports)
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
                print(f"  {'/'.join(map(str, item['key']))}: {sample_text(item)}")
    return 0


def sample_text(item: dict[str, Any]) -> str:
    """One row a rebuild would change, as the fields that differ."""
    before, after = item["before"], item["after"]
    if before is None:
        return "added"
    if after is None:
        return "removed"
    return "; ".join(
        f"{name.replace('_', ' ')}: {human(before.get(name))} → {human(value)}"
        for name, value in after.items()
        if before.get(name) != value
    )


def status(args: argparse.Namespace, ledger: Ledger) -> int:
    counts = services.counts(ledger)
    status: dict[str, Any] = {
        "recorded": counts["recorded"],
        "quarantined_open": counts["quarantined"],
        "head_position": services.last_position(ledger),
        "views": Projector(ledger).status(),
    }
    if args.json:
        print_json(status)
    else:
        print_fields(
            {
                "recorded events": status["recorded"],
                "open quarantine entries": status["quarantined_open"],
                "head position": status["head_position"],
            }
        )
        print_view_status(status["views"])
    return 0


def verify(args: argparse.Namespace, ledger: Ledger) -> int:
    auditor = services.auditor(ledger)
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
        print_json(report)
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
            differs = item.expected and item.expected != item.found
            print(
                f"{item.kind}: {where}: {item.detail}"
                + (f" (expected {item.expected}, found {item.found})" if differs else "")
            )
        print(
            f"{'verified' if not breaks else 'BROKEN'}: {plural(events, 'event')}, "
            f"{plural(len(breaks), 'break')}, digest {digest}@{position}"
        )
    return 0 if not breaks else 3


def digest(args: argparse.Namespace, ledger: Ledger) -> int:
    auditor = services.auditor(ledger)
    auditor.checkpoint()
    digest, position, events = auditor.digest()
    if args.json:
        print_json(
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


CONFIRM_SECONDS = 300  # how long a terminal prompt waits for its answer


def forget(args: argparse.Namespace, ledger: Ledger) -> int:
    if not args.force:
        from infrastructure.cli.reading import views

        _, queries = views(ledger)
        if not queries.customer_memberships(args.org, args.customer):
            raise LedgerError(
                f"the ledger has never seen customer {args.customer} of org {args.org} "
                "(check the ids, or pass --force to forget them before they arrive)"
            )
    if not args.yes:
        confirm(
            f"Forget customer {args.customer} of org {args.org}? Their identifiers become "
            "unreadable for good; this cannot be undone. [y/N] "
        )
    had_key = ledger.forget(org_id=args.org, customer_id=args.customer)
    result = {
        "org_id": args.org,
        "customer_id": args.customer,
        "forgotten": True,
        "had_identifiers": had_key,
    }
    if args.json:
        print_json(result)
    else:
        print(
            f"org {args.org} customer {args.customer}: identifiers are now unreadable"
            + ("" if had_key else " (none were held; later ones will not be stored)")
        )
    return 0


def confirm(question: str) -> None:
    """Ask on the terminal; anything but yes (or no answer in time) stops the command."""
    if not sys.stdin.isatty():
        raise LedgerError("forget cannot be undone: pass --yes to confirm it off a terminal")
    print(question, end="", file=sys.stderr, flush=True)
    ready, _, _ = select.select([sys.stdin], [], [], CONFIRM_SECONDS)
    if not ready:
        note("")  # end the prompt's line
    answer = sys.stdin.readline() if ready else ""
    if answer.strip().lower() not in ("y", "yes"):
        raise LedgerError("not confirmed: nothing was forgotten")
