"""The fast path agrees with the full path on every payload, or declines it.

For each payload, either the fast path builds a notification identical to the full path's
(every field, the type of every value, the fields set of every model, the anomalies and the
fingerprint), or it declines and the decode stage answers the full path's exact result: the
same notification, or the same reason and sentence.
"""

from __future__ import annotations

import codecs
import copy
import json
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from domain.decode import parse_all
from domain.errors import InvalidNotificationError
from domain.notifications import Notification, fast_notification, parse_notification
from tests.conftest import generated, seed_payloads
from tests.hostile import hostile_payloads

ROOT: Final = Path(__file__).resolve().parents[2]
SEEDS: Final = seed_payloads()
LINKED: Final = json.loads(SEEDS["partnerProgramLinked.enriched.json"])
UPDATED: Final = json.loads(SEEDS["partnerProgramUpdated.enriched.json"])


def full_outcome(raw: bytes) -> Notification | tuple[str, str]:
    """What the full path makes of ``raw``: a notification, or (reason, sentence)."""
    try:
        notification = parse_notification(raw)
    except InvalidNotificationError as error:
        return (error.reason, error.detail)
    notification.fingerprint  # noqa: B018 - computed as the decode stage does
    return notification


def model_state(model: BaseModel) -> dict[str, Any]:
    """Everything a model holds: each field's value and type (nested models by their own
    state), and the fields set."""
    fields: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        fields[name] = model_state(value) if isinstance(value, BaseModel) else (value, type(value))
    return {"fields": fields, "set": model.model_fields_set, "type": type(model)}


def assert_identical(fast: Notification, full: Notification) -> None:
    assert fast == full
    assert model_state(fast) == model_state(full)
    assert fast.__pydantic_extra__ == full.__pydantic_extra__
    assert fast.__pydantic_private__ == full.__pydantic_private__
    assert fast.fingerprint == full.fingerprint
    assert fast.details.present() == full.details.present()
    assert fast.expiry_instants.present() == full.expiry_instants.present()


def assert_agrees(raw: bytes) -> bool:
    """The fast path agrees with the full path on ``raw``; True when it took the payload."""
    full = full_outcome(raw)
    fast = fast_notification(raw)
    if fast is not None:
        assert isinstance(full, Notification), full
        assert_identical(fast, full)
    (decoded,) = parse_all([raw])
    if isinstance(full, Notification):
        assert isinstance(decoded, Notification)
        assert_identical(decoded, full)
    else:
        assert isinstance(decoded, InvalidNotificationError)
        assert (decoded.reason, decoded.detail) == full
    return fast is not None


# --- the corpora -------------------------------------------------------------------------


def corpus_lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_sample_agrees(name: str) -> None:
    assert_agrees(SEEDS[name])


def test_the_enriched_seed_samples_take_the_fast_path() -> None:
    taken = [name for name, raw in SEEDS.items() if fast_notification(raw) is not None]
    assert sorted(taken) == sorted(name for name in SEEDS if ".enriched." in name)


@pytest.mark.parametrize(
    "path",
    [ROOT / "examples" / "notifications.jsonl", ROOT / "tests/fixtures/ledger-v2/input.jsonl"],
    ids=lambda path: path.parent.name,
)
def test_every_line_of_the_example_and_fixture_inputs_agrees(path: Path) -> None:
    lines = corpus_lines(path)
    taken = sum(assert_agrees(line) for line in lines)
    assert taken > len(lines) // 2


def test_a_generated_stream_with_its_messy_and_malformed_lines_agrees() -> None:
    lines = generated(3_000, seed=12)
    taken = sum(assert_agrees(line) for line in lines)
    # Floats (createdAt as 1.6e12-style numbers) and malformed lines decline; the rest is fast.
    assert len(lines) * 0.85 < taken < len(lines)


@settings(max_examples=1_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=hostile_payloads())
def test_a_hostile_payload_agrees(raw: bytes) -> None:
    assert_agrees(raw)


# --- payloads built around the cases the fast path must tell apart -------------------------

NUMBERS = st.one_of(
    st.integers(min_value=-(2**66), max_value=2**66),
    st.integers(min_value=1, max_value=2**63 - 1).map(str),
    st.integers(min_value=1, max_value=2**63 - 1).map(lambda n: f"{n}.0"),
    st.integers(min_value=1, max_value=10**6).map(lambda n: f"{n}e3"),
    st.sampled_from(["1683871605603.0", "9007199254740993.0", "1.5", "-0", "0", "1E400"]),
    st.sampled_from([" 45 ", "045", "+45", "4 5", "", "null", "true", "[45]", '{"v":45}']),
)
TEXTS = st.one_of(
    st.sampled_from([" Drivers ", "EXTERNAL", "supplementary", "UPGRADE", " renew", "x" * 300]),
    st.sampled_from(["", " ", "null", "12", "1.5", "[]", "2024-02-30", "2023-05-12 10:00:00"]),
    st.text(max_size=8),
)
NUMBER_FIELDS = [
    ("attributes", "orgId"),
    ("attributes", "createdAt"),
    ("timeStamp",),
    ("attributes", "data", "partnerProgramId"),
    ("attributes", "data", "loyaltyProgramId"),
    ("attributes", "data", "customerIdentifiers", "customerId"),
    ("attributes", "data", "entityInformation", "entityId"),
    ("attributes", "data", "customerPartnerProgramDetails", "partnerTierNumber"),
    ("attributes", "data", "customerPartnerProgramDetails", "membershipExpiryDateInMillis"),
    ("attributes", "data", "customerIdentifiers", "instore", "mobile"),
]
TEXT_FIELDS = [
    ("attributes", "data", "partnerProgramName"),
    ("attributes", "data", "partnerProgramType"),
    ("attributes", "data", "updateType"),
    ("attributes", "data", "customerPartnerProgramDetails", "membershipExpiryDate"),
    ("attributes", "data", "customerPartnerProgramDetails", "membershipNumber"),
    ("attributes", "refId"),
    ("eventId",),
    ("attributes", "eventName"),
]


def _put(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        body = body.setdefault(key, {})
    body[path[-1]] = value


def _text_of(value: Any) -> str:
    """A JSON value as text; a number given as text here is written as that JSON number."""
    return value if isinstance(value, str) else json.dumps(value)


@st.composite
def near_miss_payloads(draw: st.DrawFn) -> bytes:
    """The linked seed sample with a few numbers and texts changed, keys padded or repeated,
    and now and then a BOM or an escape: payloads on both sides of every decline rule."""
    body = copy.deepcopy(LINKED)
    raw_numbers: dict[str, str] = {}
    for path in draw(st.lists(st.sampled_from(NUMBER_FIELDS), max_size=3, unique=True)):
        marker = f"@number{len(raw_numbers)}@"
        number = draw(NUMBERS)
        raw_numbers[json.dumps(marker)] = number if isinstance(number, str) else str(number)
        as_text = draw(st.booleans()) and isinstance(number, int)
        _put(body, path, str(number) if as_text else marker)
    for path in draw(st.lists(st.sampled_from(TEXT_FIELDS), max_size=3, unique=True)):
        _put(body, path, draw(TEXTS))
    if draw(st.booleans()):
        attributes = body["attributes"]
        key = draw(st.sampled_from(sorted(attributes)))
        attributes[draw(st.sampled_from([f" {key}", f"{key} ", f" {key} "]))] = attributes[key]
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    for marker, number in raw_numbers.items():
        text = text.replace(marker, number)
    if draw(st.integers(0, 9)) == 0:  # a key sent twice: the second value wins in both parsers
        text = text.replace('"refId":', '"refId": "first", "refId":', 1)
    if draw(st.integers(0, 9)) == 0:
        text = text.replace("Drivers", "Dr\\u0069vers", 1)
    raw = text.encode("utf-8", "surrogatepass")
    return codecs.BOM_UTF8 + raw if draw(st.integers(0, 9)) == 0 else raw


@settings(max_examples=1_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=near_miss_payloads())
def test_a_near_miss_of_a_valid_payload_agrees(raw: bytes) -> None:
    assert_agrees(raw)


# --- what the fast path must leave to the full path --------------------------------------


def _linked(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(LINKED)
    for dotted, value in changes.items():
        _put(body, tuple(dotted.split("__")), value)
    return body


PLAIN: Final = json.dumps(LINKED).encode()


def swap(old: bytes, new: bytes) -> bytes:
    """The linked seed sample with one piece of its JSON text replaced."""
    assert old in PLAIN
    return PLAIN.replace(old, new, 1)


def encoded(**changes: Any) -> bytes:
    return json.dumps(_linked(**changes)).encode()


ORG: Final = b'"orgId": 151197'
NAME: Final = b"Drivers"
UNREAD: Final = b'"consumerGroupId": null'
DECLINED: Final = {
    "byte_order_mark": codecs.BOM_UTF8 + PLAIN,
    "float_created_at": swap(b"1683871605603,", b"1683871605603.0,"),
    "exponent_org_id": swap(ORG, b'"orgId": 1.51197e5'),
    "float_in_an_unread_field": swap(UNREAD, b'"consumerGroupId": 1.5'),
    "integer_beyond_64_bits": swap(ORG, b'"orgId": 18446744073709551616'),
    "a_longer_integer": swap(b'"partnerProgramId": 45', b'"partnerProgramId": ' + b"9" * 70),
    "unicode_escape": swap(NAME, b"Dr\\u0069vers"),
    "escaped_nul": swap(NAME, b"Dr\\u0000vers"),
    "lone_surrogate": swap(NAME, b"Dr\\ud800vers"),
    "nan": swap(ORG, b'"orgId": NaN'),
    "not_utf8": swap(NAME, b"Dr\xffvers"),
    "truncated": PLAIN[:-5],
    "an_array": b"[" + PLAIN + b"]",
    "a_string": json.dumps(PLAIN.decode()).encode(),
    "deep_nesting": swap(UNREAD, b'"consumerGroupId": ' + b"[" * 300 + b"]" * 300),
    "keys_differing_in_spaces": swap(b'"refId":', b'"refId ": "x", "refId":'),
    "missing_customer": encoded(attributes__data__customerIdentifiers={}),
    "unknown_event": encoded(attributes__eventName="pointsIssued"),
    "bad_date": encoded(
        attributes__data__customerPartnerProgramDetails={"membershipExpiryDate": "2023-02-30"}
    ),
    "org_id_too_large": encoded(attributes__orgId=2**63),
    "name_too_long": encoded(attributes__data__partnerProgramName="x" * 257),
}


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_the_fast_path_declines_what_only_the_full_path_reads_exactly(name: str) -> None:
    raw = DECLINED[name]
    assert fast_notification(raw) is None
    assert_agrees(raw)


def test_a_fractional_integer_declined_by_the_fast_path_stays_exact() -> None:
    # 9007199254740993.0 is no float (a float would read 9007199254740992).
    raw = swap(b'"customerId": 6809254', b'"customerId": 9007199254740993.0')
    assert fast_notification(raw) is None
    (decoded,) = parse_all([raw])
    assert isinstance(decoded, Notification)
    assert decoded.customer_id == 9007199254740993


def test_the_fast_path_takes_a_plain_payload_with_stray_spaces_and_digit_strings() -> None:
    body = _linked(attributes__orgId="151197", attributes__data__partnerProgramName=" Drivers ")
    body["attributes"]["refId "] = body["attributes"].pop("refId")
    raw = json.dumps(body).encode()
    assert assert_agrees(raw)
