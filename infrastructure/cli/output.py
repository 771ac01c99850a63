"""How the command line prints: JSON lines, aligned fields, CSV cells."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from domain.ledger import Outcome, iso


def csv_value(value: Any) -> Any:
    """CSV cells read like the JSON export: empty for null, true/false for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {k: v for k, v in vars(outcome).items() if v is not None}


def quarantine_json(row: dict[str, Any]) -> dict[str, Any]:
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


def print_json(value: Any, stream: TextIO | None = None) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str), file=stream or sys.stdout)


def print_fields(record: dict[str, Any]) -> None:
    width = max(len(k) for k in record)
    for key, value in record.items():
        print(f"{key:<{width}}  {'-' if value is None else value}")


def history_line(entry: dict[str, Any]) -> str:
    changes = ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in entry["changes"].items())
    flags = [*entry["anomalies"], *(["LATE"] if entry["late"] else [])]
    return (
        f"#{entry['position']} v{entry['version']} recorded {entry['recorded_at']} "
        f"occurred {entry['occurred_at']} {entry['event']}"
        + (f" {entry['update_type']}" if entry["update_type"] else "")
        + (f": {changes}" if changes else ": no change")
        + (f" [{' '.join(flags)}]" if flags else "")
    )


def print_view_status(views: list[dict[str, Any]]) -> None:
    for view in views:
        age = view["oldest_unprocessed_age_seconds"]
        print(
            f"{view['view']}: generation {view['generation']} (schema "
            f"{view['schema_version']}, code {view['code_schema_version']}) position "
            f"{view['position']} of {view['head']}, lag {view['lag_events']} events"
            + (f", oldest unprocessed {age} s old" if age is not None else "")
            + f", {view['dead_letters']} dead letters"
        )
