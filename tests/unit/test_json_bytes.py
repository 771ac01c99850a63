"""The cheaper JSON writers give the json module's bytes exactly, or its error: a table of the
cases where orjson and json could differ, and properties over values drawn like real events',
snapshots' and sealed identifiers'."""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.json_bytes import LibraryJSON, ascii_json
from domain.library_settings import DateAsISO
from domain.state import Status


def ledger_transcoder() -> JSONTranscoder:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()):
        transcoder.register(transcoding)
    return transcoder


TRANSCODER = ledger_transcoder()
FAST = LibraryJSON(TRANSCODER)


class Colour(Enum):
    RED = "red"


class Level(IntEnum):
    ONE = 1


class Shape(StrEnum):
    A = "A"


class Text(str):
    pass


class Number(int):
    pass


def outcome(write: Any, value: Any) -> tuple[str, Any]:
    """What ``write`` makes of ``value``: its text, or the type of its error."""
    try:
        return "text", write(value)
    except Exception as error:  # its type is what is compared
        return "error", type(error)


EVERY_CHARACTER = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
TRICKY: list[Any] = [
    EVERY_CHARACTER,
    *(chr(c) for c in range(0x20)),
    "\x7f",
    "\u2028\u2029",
    '"\\/',
    "é 😀 \ufeff",
    "\ud800",
    "lone \udfff surrogate",
    "",
    0,
    -1,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    -(2**63),
    -(2**63) - 1,
    10**40,
    -(10**40),
    True,
    False,
    None,
    0.1,
    1e16,
    1e-7,
    -0.0,
    100.0,
    float("nan"),
    float("inf"),
    Decimal("1.10"),
    UUID(int=7),
    Colour.RED,
    Level.ONE,
    Shape.A,
    Status.LINKED,
    Text("sub"),
    Number(3),
    b"bytes",
    datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    datetime(2024, 5, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2024, 5, 1, 12, 0, tzinfo=timezone(-timedelta(hours=3, seconds=7, microseconds=9))),
    datetime(2024, 5, 1, 12, 0),
    date(2025, 1, 31),
    (1, "two", None),
    (date(2025, 1, 31),),
    [],
    {},
    [[1, [2, [date(2020, 2, 29)]]]],
    {"a": {"b": [1, {"c": datetime(2024, 1, 1, tzinfo=UTC)}]}},
    OrderedDict(a=1),
    {1: "int key"},
    {None: "null key", True: "bool key", 1.5: "float key"},
    {Text("k"): 1},
    {Shape.A: 1},
    {"z": 1, "a": 2, "m": [3, "é"]},
]


@pytest.mark.parametrize("value", TRICKY, ids=lambda v: repr(v)[:40])
def test_event_json_is_the_library_transcoders(value: Any) -> None:
    # Bare, and as a field among plain ones like an event's.
    assert outcome(FAST.encode, value) == outcome(TRANSCODER.encode, value)
    wrapped = {"org_id": 1, "details": {"x": value}, "anomalies": [value], "v": value}
    assert outcome(FAST.encode, wrapped) == outcome(TRANSCODER.encode, wrapped)


def test_a_value_that_holds_itself_fails_as_the_json_module_fails() -> None:
    # A list inside itself (beside a datetime, so the fast path walks into it).
    looped: list[Any] = [datetime(2024, 1, 1, tzinfo=UTC)]
    looped.append(looped)
    assert (
        outcome(FAST.encode, looped) == outcome(TRANSCODER.encode, looped) == ("error", ValueError)
    )
    document = {"state": {"v": 1}}
    document["state"]["self"] = document
    assert outcome(ascii_json, document) == outcome(compact_json, document) == ("error", ValueError)


def test_the_values_of_events_take_the_fast_path() -> None:
    # An event's values as the pipeline folds them are written by orjson, not the fallback...
    at = datetime(2023, 1, 1, 18, 57, 30, 851000, tzinfo=UTC)
    values = {
        "timestamp": at,
        "org_id": 151197,
        "occurred_at": at,
        "partner_program_name": "JetSetters é",
        "partner_program_type": None,
        "details": {"membership_number": "178-74xb", "tier_expiry_date": date(2024, 9, 30)},
        "source": {"event_name": "partnerProgramUpdated", "event_id": None, "shape": "A"},
        "anomalies": ["UPDATE_WITHOUT_LINK"],
        "expiry_instants": {"tier_expiry_at": at, "membership_expiry_at": None},
        "scheduled_expiry_date": date(2024, 9, 30),
        "class_version": 3,
    }
    assert FAST.fast_bytes(values) == TRANSCODER.encode(values)
    # ...and what orjson would write its own way is left to the library's transcoder.
    for value in (UUID(int=7), 1e16, Shape.A, 2**64, {1: "a"}, "\ud800", Decimal("1.10")):
        assert FAST.fast_bytes({"v": value}) is None


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("value", TRICKY, ids=lambda v: repr(v)[:40])
def test_snapshot_json_is_the_json_modules(value: Any) -> None:
    document = {"format": 1, "latest": "2024-01-01T00:00:00+00:00", "state": {"v": value}}
    assert outcome(ascii_json, document) == outcome(compact_json, document)


def sorted_compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def sorted_ascii_json(value: Any) -> str:
    return ascii_json(value, sort_keys=True)


@pytest.mark.parametrize("value", TRICKY, ids=lambda v: repr(v)[:40])
def test_sorted_identifiers_json_is_the_json_modules(value: Any) -> None:
    # Keys of every kind of character, sorted as Python sorts them; values of any kind.
    keys = ["mobile", "email", "é", "Z", "\x00", "😀", "\uffff", "\u2028", "", "external_id"]
    document = {key: value for key in keys}
    assert outcome(sorted_ascii_json, document) == outcome(sorted_compact_json, document)


def test_another_transcoder_is_used_as_it_is() -> None:
    # A transcoder whose datetimes are not the library's ISO strings writes them its own way.
    class Stamp(DatetimeAsISO):
        def encode(self, obj: datetime) -> str:
            return "stamp"

    transcoder = JSONTranscoder()
    transcoder.register(Stamp())
    at = {"at": datetime(2024, 5, 1, tzinfo=UTC), "n": 1}
    assert (
        LibraryJSON(transcoder).encode(at)
        == b'{"at":{"_type_":"datetime_iso","_data_":"stamp"},"n":1}'
    )


OFFSETS = st.builds(
    timezone,
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ),
)
TEXT = st.text(st.characters(exclude_categories=()))
SCALARS = (
    TEXT
    | st.integers()
    | st.none()
    | st.booleans()
    | st.datetimes(timezones=OFFSETS | st.just(UTC) | st.none())
    | st.dates()
    | st.uuids()
    | st.floats()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
AT = st.datetimes(timezones=st.just(UTC))
EVENT_VALUES = st.fixed_dictionaries(
    {
        "timestamp": AT,
        "org_id": st.integers(),
        "customer_id": st.integers(),
        "partner_program_id": st.integers(),
        "occurred_at": AT,
        "loyalty_program_id": st.integers(),
        "partner_program_name": TEXT | st.none(),
        "partner_program_type": TEXT | st.none(),
        "details": st.dictionaries(TEXT, TEXT | st.integers() | st.dates() | st.none(), max_size=4),
        "fingerprint": TEXT,
        "source": st.dictionaries(TEXT, TEXT | st.none(), max_size=5),
        "identifiers": TEXT | st.none(),
        "anomalies": st.lists(TEXT, max_size=3),
        "delivered_at": AT | st.none(),
        "expiry_instants": st.dictionaries(TEXT, AT | st.none(), max_size=2),
        "update_type": TEXT | st.none(),
        "scheduled_expiry_date": st.dates(),
        "extra": VALUES,
    }
)


@settings(max_examples=400)
@given(EVENT_VALUES)
def test_event_values_are_written_as_the_library_writes_them(values: dict[str, Any]) -> None:
    assert outcome(FAST.encode, values) == outcome(TRANSCODER.encode, values)


SNAPSHOT_STATE = st.dictionaries(
    TEXT,
    TEXT | st.integers() | st.booleans() | st.none() | st.sampled_from(Status) | st.floats(),
    max_size=8,
)


@settings(max_examples=400)
@given(SNAPSHOT_STATE)
def test_snapshot_states_are_written_as_json_dumps_writes_them(state: dict[str, Any]) -> None:
    document = {"format": 1, "latest": "2024-01-01T00:00:00+00:00", "state": state}
    assert outcome(ascii_json, document) == outcome(compact_json, document)


@settings(max_examples=400)
@given(st.dictionaries(TEXT, TEXT | st.none() | st.integers(), max_size=6))
def test_sealed_identifiers_are_written_as_json_dumps_sorts_them(
    identifiers: dict[str, Any],
) -> None:
    assert outcome(sorted_ascii_json, identifiers) == outcome(sorted_compact_json, identifiers)
