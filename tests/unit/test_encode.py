"""Stored events encoded directly: the library mapper's bytes, or a refusal to start."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from uuid import uuid4

import pytest
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)

from domain.encode import EVENT_CLASSES, EventEncoder
from domain.errors import ConfigurationError
from domain.library_settings import DateAsISO
from domain.notifications import Kind


def ledger_mapper(**options: object) -> Mapper:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder, **options)  # type: ignore[arg-type]


def test_an_encoder_refuses_a_compressing_mapper() -> None:
    with pytest.raises(ConfigurationError, match="cannot compress or encrypt"):
        EventEncoder(ledger_mapper(compressor=ZlibCompressor()))


@pytest.mark.parametrize("kind", list(Kind))
def test_encoded_events_are_the_mappers_bytes(kind: Kind) -> None:
    # Given the values of an event of each kind...
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    values = {
        "timestamp": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "org_id": 1,
        "customer_id": 2,
        "partner_program_id": 3,
        "occurred_at": at,
        "loyalty_program_id": 4,
        "partner_program_name": "Riders é",
        "partner_program_type": None,
        "details": {"tier_number": 2, "tier_expiry_date": date(2025, 1, 31)},
        "fingerprint": "f" * 64,
        "source": {"event_name": "x", "event_id": None, "shape": "A"},
        "identifiers": None,
        "anomalies": ["UPDATE_WITHOUT_LINK"],
        "delivered_at": None,
        "expiry_instants": {"tier_expiry_at": at},
        "update_type": "UPGRADE",
        "scheduled_expiry_date": date(2025, 2, 1),
    }
    cls = EVENT_CLASSES[kind]
    skipped = ("originator_id", "originator_version")
    names = [f.name for f in dataclasses.fields(cls) if f.name not in skipped]
    membership, mapper = uuid4(), ledger_mapper()
    # ...the encoder's stored event is the one the library's mapper makes of the event object.
    event = cls(originator_id=membership, originator_version=7, **{n: values[n] for n in names})
    expected = mapper.to_stored_event(event)
    assert EventEncoder(mapper).encode(kind, membership, 7, values) == expected
