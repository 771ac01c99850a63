"""Capillary payload bytes become one validated `Notification`, or a quarantine reason.

Payloads are built by the small helpers below (`data`, `payload`, `with_data`, `padded`), so
each case names only what differs from a plain, valid notification about one membership.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import InvalidNotificationError, Reason
from domain.notifications import Kind, Notification, Shape, parse_notification, parse_object

SEED: Final = Path(__file__).resolve().parents[1] / "fixtures" / "seed"

ORG: Final = 151197
CUSTOMER: Final = 6809254
PROGRAM: Final = 45
LOYALTY_PROGRAM: Final = 1115
CREATED_AT: Final = 1_683_871_605_603  # 2023-05-12T06:06:45.603Z
EVENT_ID: Final = "1b049b7f-9363-464c-beaf-0c7c2f1f8a12"
REF_ID: Final = "151197_C3zPfmvsZL"
API_REQUEST_ID: Final = "5ba71b8f-5557-4a68-86b9-8e597722ce16"

LINKED: Final = "partnerProgramLinked"
UPDATED: Final = "partnerProgramUpdated"
DELINKED: Final = "partnerProgramDelinked"
REMINDER: Final = "supplementaryMembershipExpiryReminder"
RENEWAL_JOB: Final = "PP_EXPIRY_JOB"

CPD: Final = "data.customerPartnerProgramDetails"
CUSTOMER_ID: Final = "data.customerIdentifiers.customerId"


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


ABSENT: Final = _Marker("ABSENT")  # the payload does not carry the key at all (not even null)
_DEFAULT: Final = _Marker("DEFAULT")


# --- payload builders --------------------------------------------------------------------


def _present(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not ABSENT}


def data(
    *,
    customer_id: Any = CUSTOMER,
    partner_program_id: Any = PROGRAM,
    loyalty_program_id: Any = LOYALTY_PROGRAM,
    name: Any = "Drivers",
    program_type: Any = "SUPPLEMENTARY",
    update_type: Any = ABSENT,
    details: Any = ABSENT,
    scheduled_expiry_date: Any = ABSENT,
    mobile: Any = "6590688093",
    instore: Any = _DEFAULT,
    customer_identifiers: Any = _DEFAULT,
) -> dict[str, Any]:
    """The ``data`` object of a notification about (ORG, CUSTOMER, PROGRAM)."""
    if instore is _DEFAULT:
        instore = _present({"mobile": mobile, "email": "prestoul@yahoo.com.sg"})
    if customer_identifiers is _DEFAULT:
        customer_identifiers = _present({"customerId": customer_id, "instore": instore})
    return _present(
        {
            "customerIdentifiers": customer_identifiers,
            "entityInformation": _present({"entityType": "USER", "entityId": customer_id}),
            "loyaltyProgramId": loyalty_program_id,
            "partnerProgramId": partner_program_id,
            "partnerProgramName": name,
            "partnerProgramType": program_type,
            "updateType": update_type,
            "customerPartnerProgramDetails": details,
            "scheduledExpiryDate": scheduled_expiry_date,
        }
    )


def payload(
    shape: Shape = Shape.B,
    *,
    event: Any = LINKED,
    org_id: Any = ORG,
    created_at: Any = CREATED_AT,
    body: Any = _DEFAULT,
    ref_id: Any = REF_ID,
    api_request_id: Any = API_REQUEST_ID,
    event_id: Any = _DEFAULT,
    event_type: Any = _DEFAULT,
    time_stamp: Any = CREATED_AT + 20,
    **extra: Any,
) -> dict[str, Any]:
    """One notification in ``shape``; ``extra`` keys land beside ``orgId`` and ``data``."""
    body = data() if body is _DEFAULT else body
    if event_id is _DEFAULT:
        event_id = ABSENT if shape is Shape.C else EVENT_ID
    inner = {
        "eventName": event,
        "orgId": org_id,
        "refId": ref_id,
        "apiRequestId": api_request_id,
        "createdAt": created_at,
        "data": body,
        **extra,
    }
    if shape is Shape.A:
        return _present(
            {
                "eventId": event_id,
                "eventType": event if event_type is _DEFAULT else event_type,
                "consumerGroupId": None,
                "actionType": "START",
                "timeStamp": time_stamp,
                "attributes": _present(inner),
            }
        )
    flat = {"eventId": event_id, "loyaltyEventId": None, **inner}
    if shape is Shape.C:
        flat["eventSearchKey"] = f"{ORG}_{CUSTOMER}"
    if shape is Shape.R:
        flat |= {"eventLogId": 1356, "loyaltyEventId": "VKUXGJE", "traceAttributes": {"t": "x"}}
    return _present(flat)


def with_data(shape: Shape = Shape.B, *, event: Any = LINKED, **changes: Any) -> dict[str, Any]:
    """A notification whose ``data`` differs from the plain one by ``changes``."""
    return payload(shape, event=event, body=data(**changes))


def with_details(**details: Any) -> dict[str, Any]:
    """A link carrying exactly these ``customerPartnerProgramDetails``."""
    return with_data(details=details)


def padded(value: Any, pad: str = " \t") -> Any:
    """``value`` with every key and every string value wrapped in ``pad``, at every depth."""
    if isinstance(value, dict):
        return {f"{pad}{key}{pad}": padded(item, pad) for key, item in value.items()}
    if isinstance(value, list):
        return [padded(item, pad) for item in value]
    if isinstance(value, str):
        return f"{pad}{value}{pad}"
    return value


def replaced(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the value at ``path`` replaced (parents made objects if need be)."""
    copy: dict[str, Any] = json.loads(json.dumps(body))
    parent = copy
    for key in path[:-1]:
        if not isinstance(parent.get(key), dict):
            parent[key] = {}
        parent = parent[key]
    parent[path[-1]] = value
    return copy


def encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


def parsed(body: Any) -> Notification:
    return parse_notification(encoded(body))


def rejection(raw: Any) -> InvalidNotificationError:
    """The error parsing ``raw`` raises (bytes as sent, anything else encoded as JSON first)."""
    with pytest.raises(InvalidNotificationError) as caught:
        parse_notification(raw if isinstance(raw, bytes) else encoded(raw))
    return caught.value


def cases(table: dict[str, Any]) -> list[Any]:
    """A parametrize table: each row's name is its test id, a tuple row is several arguments."""
    return [
        pytest.param(*(row if isinstance(row, tuple) else (row,)), id=name)
        for name, row in table.items()
    ]


# --- the seed samples --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_name", "expected"),
    cases(
        {
            "linked_envelope_with_stray_spaces": (
                LINKED,
                {
                    "kind": Kind.LINKED,
                    "shape": Shape.A,
                    "key": (151197, 6809254, 45),
                    "loyalty_program_id": 1115,
                    "occurred_at_ms": 1683871605603,
                    "event_id": "1b049b7f-9363-464c-beaf-0c7c2f1f8a12",
                    "ref_id": "151197_C3zPfmvsZL",
                    "partner_program_name": "Drivers",
                    "partner_program_type": "SUPPLEMENTARY",
                    "update_type": None,
                    "details": {"membership_expiry_date": date(2123, 5, 12)},
                    "mobile": "6590688093",
                    "anomalies": (),
                },
            ),
            "delinked_envelope_with_spaced_org_key": (
                DELINKED,
                {
                    "kind": Kind.DELINKED,
                    "shape": Shape.A,
                    "key": (151197, 6529619, 46),
                    "loyalty_program_id": 1115,
                    "occurred_at_ms": 1683872179035,
                    "api_request_id": "cd49688e-2bb6-4ca5-bfd4-5ec8acb10678",
                    "partner_program_name": "Riders",
                    "partner_program_type": "SUPPLEMENTARY",
                    "details": {},
                    "mobile": "6587506024",
                    "anomalies": (),
                },
            ),
            "updated_flat_upgrade": (
                UPDATED,
                {
                    "kind": Kind.UPDATED,
                    "shape": Shape.B,
                    "key": (50191, 354971193, 25),
                    "loyalty_program_id": 855,
                    "occurred_at_ms": 1622457292026,
                    "event_id": "caff89da-4c1c-4a5c-a27d-8f4f6f74f541",
                    "ref_id": "50191_esJyjQ23RQ",
                    "partner_program_type": "EXTERNAL",
                    "update_type": "UPGRADE",
                    "details": {
                        "membership_number": "123-asa3",
                        "tier_expiry_date": date(2021, 6, 29),
                        "tier_number": 2,
                    },
                    "mobile": "919666308709",
                    "anomalies": (),
                },
            ),
            "reminder_flat": (
                REMINDER,
                {
                    "kind": Kind.REMINDED,
                    "shape": Shape.B,
                    "key": (50191, 354971186, 22),
                    "loyalty_program_id": 855,
                    "occurred_at_ms": 1622518207403,
                    "scheduled_expiry_date": date(2021, 6, 1),
                    "partner_program_name": "SPprogram1",
                    "partner_program_type": None,
                    "details": {},
                    "anomalies": (),
                },
            ),
        }
    ),
)
def test_enriched_seed_sample_parses_to_its_normalized_values(
    event_name: str, expected: dict[str, Any]
) -> None:
    notification = parse_notification((SEED / f"{event_name}.enriched.json").read_bytes())

    actual = {
        **notification.model_dump(exclude={"details", "identifiers"}),
        "key": notification.key,
        "details": notification.details.present(),
        "mobile": notification.identifiers.mobile,
    }
    assert notification.event_name == event_name
    assert {name: actual[name] for name in expected} == expected


@pytest.mark.parametrize(
    ("event_name", "created_at"),
    cases({"linked": (LINKED, 3563), "updated": (UPDATED, 6844), "delinked": (DELINKED, 2485),
           "reminder": (REMINDER, 2544)}),
)  # fmt: skip
def test_placeholder_raw_seed_sample_is_quarantined_for_its_tiny_created_at(
    event_name: str, created_at: int
) -> None:
    error = rejection((SEED / f"{event_name}.raw.json").read_bytes())

    assert error.reason is Reason.BAD_TIMESTAMP
    assert f"createdAt: {created_at} is not a plausible" in error.detail


# --- shapes ------------------------------------------------------------------------------

_R_WITHOUT_TRACE = {k: v for k, v in payload(Shape.R).items() if k != "traceAttributes"}


@pytest.mark.parametrize(
    ("body", "shape", "event_id"),
    cases({
        "A_envelope": (payload(Shape.A), Shape.A, EVENT_ID),
        "B_flat": (payload(Shape.B), Shape.B, EVENT_ID),
        "C_flat_without_event_id": (payload(Shape.C), Shape.C, None),
        "C_flat_with_event_id": (payload(Shape.C, event_id="c-1"), Shape.C, "c-1"),
        "C_with_padded_keys": (padded(payload(Shape.C)), Shape.C, None),
        "R_raw_event_log": (payload(Shape.R), Shape.R, EVENT_ID),
        "R_with_event_log_id_only": (_R_WITHOUT_TRACE, Shape.R, EVENT_ID),
        "A_wins_over_R_keys": (payload(Shape.A, eventLogId=1), Shape.A, EVENT_ID),
    }),
)  # fmt: skip
def test_each_shape_is_detected_and_read_to_the_same_membership(
    body: dict[str, Any], shape: Shape, event_id: str | None
) -> None:
    notification = parsed(body)

    assert notification.shape is shape
    assert notification.event_id == event_id
    assert notification.kind is Kind.LINKED
    assert notification.key == (ORG, CUSTOMER, PROGRAM)
    assert notification.loyalty_program_id == LOYALTY_PROGRAM
    assert notification.occurred_at_ms == CREATED_AT
    assert (notification.ref_id, notification.api_request_id) == (REF_ID, API_REQUEST_ID)


@pytest.mark.parametrize(
    ("event_type", "event_name"),
    cases({
        "org_prefixed_linked": ("151197_partnerProgramLinked", LINKED),
        "org_prefixed_delinked": ("50191_partnerProgramDelinked", DELINKED),
        "unprefixed_updated": ("partnerProgramUpdated", UPDATED),
        "padded_org_prefixed_renewal_job": (" 151197_PP_EXPIRY_JOB ", RENEWAL_JOB),
    }),
)  # fmt: skip
def test_envelope_without_attributes_event_name_takes_the_event_from_event_type(
    event_type: str, event_name: str
) -> None:
    notification = parsed(payload(Shape.A, event=ABSENT, event_type=event_type))

    assert notification.event_name == event_name
    assert notification.shape is Shape.A


def test_envelope_attributes_event_name_wins_over_event_type() -> None:
    notification = parsed(payload(Shape.A, event=DELINKED, event_type=f"{ORG}_{LINKED}"))

    assert notification.kind is Kind.DELINKED


@pytest.mark.parametrize(
    "time_stamp",
    cases({"delivered_a_day_later": CREATED_AT + 86_400_000, "no_time_stamp": ABSENT,
           "garbage_time_stamp": "not a time"}),
)  # fmt: skip
def test_envelope_occurrence_time_is_attributes_created_at_not_time_stamp(time_stamp: Any) -> None:
    notification = parsed(payload(Shape.A, time_stamp=time_stamp))

    assert notification.occurred_at_ms == CREATED_AT
    assert notification.occurred_at == datetime(2023, 5, 12, 6, 6, 45, 603000, tzinfo=UTC)


def test_envelope_with_only_a_time_stamp_is_missing_attributes_created_at() -> None:
    error = rejection(payload(Shape.A, created_at=ABSENT))

    assert error.reason is Reason.MISSING_FIELD
    assert error.detail == "attributes.createdAt is absent or empty"


# --- normalization -----------------------------------------------------------------------


def test_stray_spaces_around_keys_at_every_depth_are_ignored() -> None:
    body = {
        " eventName": LINKED,
        "orgId ": ORG,
        "\tcreatedAt\n": CREATED_AT,
        " data ": {
            "customerIdentifiers ": {" customerId": CUSTOMER, " instore ": {"mobile ": "65 1"}},
            " loyaltyProgramId": LOYALTY_PROGRAM,
            "partnerProgramId  ": PROGRAM,
            " customerPartnerProgramDetails ": {" partnerTierNumber ": 3},
        },
    }

    notification = parsed(body)

    assert notification.key == (ORG, CUSTOMER, PROGRAM)
    assert notification.occurred_at_ms == CREATED_AT
    assert notification.details.present() == {"tier_number": 3}
    assert notification.identifiers.mobile == "651"


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    cases({
        "program_name": (with_data(name=" Drivers "), "partner_program_name", "Drivers"),
        "empty_program_name_is_null": (with_data(name=""), "partner_program_name", None),
        "numeric_program_name": (with_data(name=7), "partner_program_name", "7"),
        "program_type": (with_data(program_type=" supplementary\t"), "partner_program_type",
                         "SUPPLEMENTARY"),
        "update_type": (with_data(event=UPDATED, update_type=" upgrade "), "update_type",
                        "UPGRADE"),
        "ref_id": (payload(ref_id="151197_C3zPfmvsZL "), "ref_id", REF_ID),
        "event_name": (payload(event=f" {DELINKED}\n"), "kind", Kind.DELINKED),
        "digit_string_id": (payload(org_id=" 151197 "), "org_id", ORG),
        "leading_zero_id": (payload(org_id="00151197"), "org_id", ORG),
        "integral_float_id": (with_data(customer_id=6809254.0), "customer_id", CUSTOMER),
        "largest_id": (payload(org_id=2**63 - 1), "org_id", 2**63 - 1),
        "largest_id_as_digits": (payload(org_id=str(2**63 - 1)), "org_id", 2**63 - 1),
        "digit_string_created_at": (payload(created_at=f" {CREATED_AT} "), "occurred_at_ms",
                                    CREATED_AT),
        "integral_float_created_at": (payload(created_at=float(CREATED_AT)), "occurred_at_ms",
                                      CREATED_AT),
        "first_ms_of_2000": (payload(created_at=946_684_800_000), "occurred_at_ms",
                             946_684_800_000),
        "last_ms_before_2100": (payload(created_at=4_102_444_799_999), "occurred_at_ms",
                                4_102_444_799_999),
        "date": (with_data(scheduled_expiry_date=" 2021-06-01 "), "scheduled_expiry_date",
                 date(2021, 6, 1)),
    }),
)  # fmt: skip
def test_values_are_trimmed_and_numbers_read_as_integers(
    body: dict[str, Any], field: str, expected: Any
) -> None:
    assert getattr(parsed(body), field) == expected


@pytest.mark.parametrize(
    ("mobile", "expected"),
    cases({
        "inner_space": ("658750602 4", "6587506024"),
        "spaces_tabs_and_newlines": (" +65 9068\t8093\n", "+6590688093"),
        "no_break_space": ("65\u00a09068 8093", "6590688093"),
        "number": (6590688093, "6590688093"),
        "empty": ("", None),
        "absent": (ABSENT, None),
    }),
)  # fmt: skip
def test_mobile_numbers_lose_all_whitespace(mobile: Any, expected: str | None) -> None:
    assert parsed(with_data(mobile=mobile)).identifiers.mobile == expected


def test_two_keys_differing_only_in_spaces_keep_the_first_and_note_a_collision() -> None:
    raw = encoded(payload())[:-1] + b', "orgId ": 7}'

    notification = parse_notification(raw)

    assert notification.org_id == ORG
    assert notification.anomalies == ("KEY_COLLISION",)


def test_utf8_byte_order_mark_is_accepted() -> None:
    assert parse_notification(b"\xef\xbb\xbf" + encoded(payload())) == parsed(payload())


def test_text_body_parses_like_its_bytes() -> None:
    assert parse_notification(json.dumps(payload())) == parsed(payload())


@pytest.mark.parametrize(
    ("entity_id", "anomalies"),
    cases({
        "same_number": (CUSTOMER, ()),
        "integral_float": (float(CUSTOMER), ()),
        "digit_string": (str(CUSTOMER), ()),
        "null": (None, ()),
        "another_customer": (CUSTOMER + 1, ("ENTITY_ID_MISMATCH",)),
    }),
)  # fmt: skip
def test_entity_id_other_than_the_customer_id_is_an_anomaly(
    entity_id: Any, anomalies: tuple[str, ...]
) -> None:
    body = replaced(payload(), ("data", "entityInformation", "entityId"), entity_id)

    assert parsed(body).anomalies == anomalies


# --- renewal job and open sets -----------------------------------------------------------


@pytest.mark.parametrize(
    ("details", "expected"),
    cases({
        "membership_expiry_with_time": ({"membershipExpiryDate": "2027-10-05 00:00:00"},
                                        {"membership_expiry_date": date(2027, 10, 5)}),
        "tier_expiry_with_time": ({"partnerTierExpiryDate": "2027-10-05 00:00:00",
                                   "partnerTierNumber": "2"},
                                  {"tier_expiry_date": date(2027, 10, 5), "tier_number": 2}),
        "iso_t_with_fraction": ({"membershipExpiryDate": "2027-10-05T23:59:59.123"},
                                {"membership_expiry_date": date(2027, 10, 5)}),
        "plain_date": ({"membershipExpiryDate": "2027-10-05"},
                       {"membership_expiry_date": date(2027, 10, 5)}),
    }),
)  # fmt: skip
def test_renewal_job_is_a_renew_update_keeping_the_date(
    details: dict[str, Any], expected: dict[str, Any]
) -> None:
    notification = parsed(with_data(event=RENEWAL_JOB, details=details))

    assert notification.event_name == RENEWAL_JOB
    assert notification.kind is Kind.UPDATED
    assert notification.update_type == "RENEW"
    assert notification.details.present() == expected
    assert notification.anomalies == ()


@pytest.mark.parametrize(
    ("sent", "anomalies"),
    cases({
        "absent": (ABSENT, ()),
        "null": (None, ()),
        "lower_case_renew": ("renew", ()),
        "another_type": ("UPGRADE", ("RENEWAL_JOB_UPDATE_TYPE_OVERRIDDEN",)),
    }),
)  # fmt: skip
def test_renewal_job_update_type_is_always_renew(sent: Any, anomalies: tuple[str, ...]) -> None:
    notification = parsed(with_data(event=RENEWAL_JOB, update_type=sent))

    assert notification.update_type == "RENEW"
    assert notification.anomalies == anomalies


@pytest.mark.parametrize(
    ("body", "field", "kept", "anomaly"),
    cases({
        "unknown_program_type": (with_data(program_type=" coalition "), "partner_program_type",
                                 "COALITION", "UNKNOWN_PROGRAM_TYPE"),
        "placeholder_program_type": (with_data(program_type="JASXHIUM"), "partner_program_type",
                                     "JASXHIUM", "UNKNOWN_PROGRAM_TYPE"),
        "unknown_update_type": (with_data(event=UPDATED, update_type="tier_swap "), "update_type",
                                "TIER_SWAP", "UNKNOWN_UPDATE_TYPE"),
        "placeholder_update_type": (with_data(event=UPDATED, update_type="Gnfdpt"), "update_type",
                                    "GNFDPT", "UNKNOWN_UPDATE_TYPE"),
        "update_on_a_link": (with_data(update_type="mystery"), "update_type", "MYSTERY",
                             "UNKNOWN_UPDATE_TYPE"),
        "update_without_update_type": (payload(event=UPDATED), "update_type", None,
                                       "UPDATE_TYPE_ABSENT"),
    }),
)  # fmt: skip
def test_open_set_values_are_kept_upper_cased_and_noted_never_rejected(
    body: dict[str, Any], field: str, kept: str | None, anomaly: str
) -> None:
    notification = parsed(body)

    assert getattr(notification, field) == kept
    assert anomaly in notification.anomalies


@pytest.mark.parametrize(
    ("program_type", "update_type"),
    cases({
        "external_upgrade": ("EXTERNAL", "UPGRADE"),
        "supplementary_downgrade": ("SUPPLEMENTARY", "DOWNGRADE"),
        "lower_case_renew": ("external", "renew"),
        "renewal_initiation": (None, "MEMBERSHIP_RENEWAL_INITIATION"),
        "relinking_cancelled": (ABSENT, "MEMBERSHIP_RELINKING_CANCELLED"),
    }),
)  # fmt: skip
def test_known_program_and_update_types_are_no_anomaly(program_type: Any, update_type: str) -> None:
    notification = parsed(with_data(event=UPDATED, program_type=program_type,
                                    update_type=update_type))  # fmt: skip

    assert notification.update_type == update_type.upper()
    assert notification.anomalies == ()


@pytest.mark.parametrize("update_type", cases({"absent": ABSENT, "null": None, "empty": " "}))
def test_update_type_is_optional_and_its_absence_is_noted(update_type: Any) -> None:
    notification = parsed(with_data(event=UPDATED, update_type=update_type))

    assert notification.update_type is None
    assert notification.anomalies == ("UPDATE_TYPE_ABSENT",)


# --- absent versus null details ----------------------------------------------------------


@pytest.mark.parametrize(
    ("details", "present"),
    cases({
        "no_details_object": (ABSENT, {}),
        "null_details_object": (None, {}),
        "empty_details_object": ({}, {}),
        "explicit_null_number": ({"membershipNumber": None}, {"membership_number": None}),
        "explicit_null_tier": ({"partnerTierNumber": None, "partnerTierExpiryDate": None},
                               {"tier_number": None, "tier_expiry_date": None}),
        "tier_zero": ({"partnerTierNumber": 0}, {"tier_number": 0}),
        "numeric_membership_number": ({"membershipNumber": 12345},
                                      {"membership_number": "12345"}),
        "all_four_and_an_unknown_key": (
            {"partnerTierNumber": "3", "partnerTierExpiryDate": "2024-01-31",
             "membershipNumber": " M-1 ", "membershipExpiryDate": "2025-01-31", "other": 1},
            {"tier_number": 3, "tier_expiry_date": date(2024, 1, 31), "membership_number": "M-1",
             "membership_expiry_date": date(2025, 1, 31)},
        ),
    }),
)  # fmt: skip
def test_details_hold_exactly_the_fields_the_payload_named(
    details: Any, present: dict[str, Any]
) -> None:
    notification = parsed(with_data(details=details))

    assert notification.details.present() == present
    assert notification.details.model_fields_set == set(present)


def test_explicit_null_detail_is_not_the_same_content_as_an_absent_one() -> None:
    absent = parsed(with_details())
    null = parsed(with_details(membershipExpiryDate=None))

    assert absent.details.membership_expiry_date is null.details.membership_expiry_date is None
    assert absent.fingerprint != null.fingerprint


# --- quarantine reasons ------------------------------------------------------------------

_VALID: Final = encoded(payload())


@pytest.mark.parametrize(
    "raw",
    cases({
        "empty_body": b"",
        "whitespace_body": b"   \n",
        "invalid_utf8_start": b"\xff\xfe{}",
        "invalid_utf8_inside_a_string": b'{"eventName": "\xc3\x28"}',
        "latin1_byte_in_a_valid_payload": _VALID.replace(b'"Drivers"', b'"Dr\xe9vers"'),
        "utf16_body": "\ufeff{}".encode("utf-16"),
        "nan": b"NaN",
        "nan_created_at": _VALID.replace(str(CREATED_AT).encode(), b"NaN"),
        "infinity_org": _VALID.replace(str(ORG).encode() + b",", b"Infinity,", 1),
        "minus_infinity": b'{"createdAt": -Infinity}',
        "truncated": b"{",
        "truncated_valid_payload": _VALID[:-1],
        "single_quotes": b"{'eventName': 'partnerProgramLinked'}",
        "trailing_comma": b'{"orgId": 1,}',
        "two_documents": _VALID + _VALID,
        "nested_too_deeply": b"[" * 100_000 + b"]" * 100_000,
    }),
)  # fmt: skip
def test_a_body_that_is_not_utf8_json_is_not_json(raw: bytes) -> None:
    assert rejection(raw).reason is Reason.NOT_JSON


@pytest.mark.parametrize(
    ("raw", "said"),
    cases({
        "bad_utf8": (b"\xff{}", "not UTF-8 (invalid start byte at byte 0)"),
        "nan": (b'{"createdAt": NaN}', "NaN is not a JSON value"),
        "deep": (b"[" * 100_000, "nested too deeply"),
    }),
)  # fmt: skip
def test_not_json_detail_says_what_is_wrong(raw: bytes, said: str) -> None:
    assert said in rejection(raw).detail


@pytest.mark.parametrize(
    ("raw", "json_type"),
    cases({
        "empty_array": (b"[]", "array"),
        "array_of_a_valid_payload": (b"[" + _VALID + b"]", "array"),
        "string": (b'"partnerProgramLinked"', "string"),
        "double_encoded_payload": (json.dumps(_VALID.decode()).encode(), "string"),
        "integer": (b"42", "number"),
        "float": (b"1.5", "number"),
        "null": (b"null", "null"),
        "boolean": (b"true", "boolean"),
    }),
)  # fmt: skip
def test_json_that_is_not_an_object_is_not_an_object(raw: bytes, json_type: str) -> None:
    error = rejection(raw)

    assert error.reason is Reason.NOT_AN_OBJECT
    assert error.detail == f"the body is a JSON {json_type}, not an object"


@pytest.mark.parametrize(
    ("body", "shown"),
    cases({
        "other_event": (payload(event="partnerProgramCreated"),
                        "eventName 'partnerProgramCreated'"),
        "wrong_case": (payload(event="partnerprogramlinked"), "eventName 'partnerprogramlinked'"),
        "org_prefix_on_event_name": (payload(event=f"{ORG}_{LINKED}"),
                                     "eventName '151197_partnerProgramLinked'"),
        "number": (payload(event=42), "eventName 42 "),
        "list": (payload(event=[LINKED]), "eventName ['partnerProgramLinked']"),
        "object": (payload(event={"name": LINKED}), "eventName {'name'"),
        "envelope_event_type": (payload(Shape.A, event=ABSENT, event_type="151197_pointsAwarded"),
                                "attributes.eventName 'pointsAwarded'"),
        "envelope_event_name": (payload(Shape.A, event="transactionAdded"),
                                "attributes.eventName 'transactionAdded'"),
    }),
)  # fmt: skip
def test_an_event_that_is_not_a_partner_program_notification_is_unknown(
    body: dict[str, Any], shown: str
) -> None:
    error = rejection(body)

    assert error.reason is Reason.UNKNOWN_EVENT
    assert shown in error.detail


@pytest.mark.parametrize(
    ("body", "detail"),
    cases({
        "no_event_name": (payload(event=ABSENT), "eventName is absent"),
        "empty_event_name": (payload(event=""), "eventName is absent"),
        "blank_event_name": (payload(Shape.C, event="   "), "eventName is absent"),
        "envelope_without_any_event": (payload(Shape.A, event=ABSENT, event_type=ABSENT),
                                       "attributes.eventName is absent"),
        "no_org": (payload(org_id=ABSENT), "orgId is absent or empty"),
        "null_org": (payload(org_id=None), "orgId is absent or empty"),
        "empty_envelope_org": (payload(Shape.A, org_id=""), "attributes.orgId is absent or empty"),
        "no_created_at": (payload(created_at=ABSENT), "createdAt is absent or empty"),
        "blank_created_at": (payload(Shape.R, created_at=" \t"), "createdAt is absent or empty"),
        "no_customer": (with_data(customer_id=ABSENT), f"{CUSTOMER_ID} is absent or empty"),
        "no_customer_identifiers": (with_data(customer_identifiers=ABSENT),
                                    f"{CUSTOMER_ID} is absent or empty"),
        "null_partner_program": (with_data(partner_program_id=None),
                                 "data.partnerProgramId is absent or empty"),
        "blank_loyalty_program": (with_data(loyalty_program_id="  "),
                                  "data.loyaltyProgramId is absent or empty"),
        "envelope_partner_program": (with_data(Shape.A, partner_program_id=ABSENT),
                                     "attributes.data.partnerProgramId is absent or empty"),
        "reminder_without_scheduled_expiry": (payload(event=REMINDER),
                                              "data.scheduledExpiryDate is absent or empty"),
        "reminder_with_empty_scheduled_expiry": (
            with_data(event=REMINDER, scheduled_expiry_date=""),
            "data.scheduledExpiryDate is absent or empty",
        ),
        "null_data": (payload(body=None), f"{CUSTOMER_ID} and data.partnerProgramId and "
                                          "data.loyaltyProgramId are absent or empty"),
        "only_an_event_name": ({"eventName": LINKED},
                               f"orgId and createdAt and {CUSTOMER_ID} and data.partnerProgramId "
                               "and data.loyaltyProgramId are absent or empty"),
    }),
)  # fmt: skip
def test_a_required_field_absent_or_empty_is_missing(body: dict[str, Any], detail: str) -> None:
    error = rejection(body)

    assert error.reason is Reason.MISSING_FIELD
    assert error.detail == detail


@pytest.mark.parametrize(
    ("body", "path", "shown"),
    cases({
        "bool_org": (payload(org_id=True), "orgId", "True"),
        "bool_customer": (with_data(customer_id=False), CUSTOMER_ID, "False"),
        "fractional_float": (with_data(partner_program_id=45.5), "data.partnerProgramId", "45.5"),
        "float_string": (with_data(loyalty_program_id="1115.0"), "data.loyaltyProgramId",
                         "'1115.0'"),
        "letters": (payload(org_id="151197a"), "orgId", "'151197a'"),
        "exponent_string": (payload(org_id="1e5"), "orgId", "'1e5'"),
        "inner_space": (payload(org_id="15 1197"), "orgId", "'15 1197'"),
        "huge_integer": (payload(org_id=2**63), "orgId", str(2**63)),
        "huge_digit_string": (payload(org_id=str(2**64)), "orgId", f"'{2**64}'"),
        "21_digit_string": (payload(org_id="1" * 21), "orgId", "1" * 21),
        "huge_float": (with_data(customer_id=1e19), CUSTOMER_ID, "1e+19"),
        "enormous_float": (with_data(customer_id=1e300), CUSTOMER_ID, "1e+300"),
        "zero_id": (payload(org_id=0), "orgId", "0 is out of range"),
        "negative_id": (payload(org_id=-151197), "orgId", "-151197"),
        "list_envelope_org": (payload(Shape.A, org_id=[ORG]), "attributes.orgId", "[151197]"),
        "object_org": (payload(org_id={"id": ORG}), "orgId", "{'id': 151197}"),
        "negative_tier": (with_details(partnerTierNumber=-1), f"{CPD}.partnerTierNumber", "-1"),
        "bool_tier": (with_details(partnerTierNumber=True), f"{CPD}.partnerTierNumber", "True"),
        "word_tier": (with_details(partnerTierNumber="two"), f"{CPD}.partnerTierNumber", "'two'"),
        # "١٥١١٩٧" is 151197 in Arabic-Indic digits: a Unicode digit string, not an ASCII one.
        "non_ascii_digits": (payload(org_id="\u0661\u0665\u0661\u0661\u0669\u0667"), "orgId",
                             "\u0661\u0665\u0661"),
    }),
)  # fmt: skip
def test_an_id_that_is_not_a_positive_63_bit_integer_is_a_bad_number(
    body: dict[str, Any], path: str, shown: str
) -> None:
    error = rejection(body)

    assert error.reason is Reason.BAD_NUMBER
    assert f"{path}: " in error.detail
    assert shown in error.detail


def test_a_number_too_long_for_python_is_a_bad_number_naming_the_field() -> None:
    raw = encoded(payload(org_id=0)).replace(b'"orgId": 0', b'"orgId": ' + b"9" * 5000)

    error = rejection(raw)

    assert error.reason is Reason.BAD_NUMBER
    assert "orgId" in error.detail


@pytest.mark.parametrize(
    ("body", "path", "shown"),
    cases({
        "placeholder": (payload(created_at=3563), "createdAt", "3563"),
        "epoch_seconds": (payload(created_at=1_683_871_605), "createdAt", "1683871605"),
        "epoch_microseconds": (payload(created_at=CREATED_AT * 1000), "createdAt",
                               str(CREATED_AT * 1000)),
        "just_before_2000": (payload(created_at=946_684_799_999), "createdAt", "946684799999"),
        "start_of_2100": (payload(created_at=4_102_444_800_000), "createdAt", "4102444800000"),
        "negative": (payload(created_at=-1), "createdAt", "-1"),
        "bool": (payload(created_at=True), "createdAt", "True"),
        "fractional_float": (payload(created_at=CREATED_AT + 0.5), "createdAt",
                             "1683871605603.5"),
        "iso_string": (payload(created_at="2023-05-12T06:06:45Z"), "createdAt",
                       "'2023-05-12T06:06:45Z'"),
        "exponent_string": (payload(created_at="1.683871605603e12"), "createdAt",
                            "'1.683871605603e12'"),
        "huge": (payload(created_at=2**70), "createdAt", str(2**70)),
        "object": (payload(created_at={"ms": CREATED_AT}), "createdAt", "{'ms'"),
        "envelope_with_good_time_stamp": (payload(Shape.A, created_at=3563, time_stamp=CREATED_AT),
                                          "attributes.createdAt", "3563"),
    }),
)  # fmt: skip
def test_a_created_at_that_is_not_a_plausible_epoch_ms_time_is_a_bad_timestamp(
    body: dict[str, Any], path: str, shown: str
) -> None:
    error = rejection(body)

    assert error.reason is Reason.BAD_TIMESTAMP
    assert f"{path}: " in error.detail
    assert shown in error.detail


@pytest.mark.parametrize(
    "raw",
    cases({
        "overflowing_float": _VALID.replace(str(CREATED_AT).encode(), b"1e400"),
        "negative_zero": _VALID.replace(str(CREATED_AT).encode(), b"-0.0"),
    }),
)  # fmt: skip
def test_created_at_json_numbers_outside_the_range_are_bad_timestamps(raw: bytes) -> None:
    assert rejection(raw).reason is Reason.BAD_TIMESTAMP


@pytest.mark.parametrize(
    ("body", "path", "shown"),
    cases({
        "month_13_day_45": (with_details(membershipExpiryDate="2024-13-45"),
                            f"{CPD}.membershipExpiryDate", "'2024-13-45'"),
        "not_a_leap_year": (with_details(partnerTierExpiryDate="2023-02-29"),
                            f"{CPD}.partnerTierExpiryDate", "'2023-02-29'"),
        "placeholder": (with_details(partnerTierExpiryDate="GJXKZF"),
                        f"{CPD}.partnerTierExpiryDate", "'GJXKZF'"),
        "day_month_year": (with_details(membershipExpiryDate="12/05/2123"),
                           f"{CPD}.membershipExpiryDate", "'12/05/2123'"),
        "unpadded": (with_details(membershipExpiryDate="2123-5-12"),
                     f"{CPD}.membershipExpiryDate", "'2123-5-12'"),
        "number": (with_details(membershipExpiryDate=21230512), f"{CPD}.membershipExpiryDate",
                   "21230512"),
        "reminder_placeholder": (with_data(event=REMINDER, scheduled_expiry_date="KJIS"),
                                 "data.scheduledExpiryDate", "'KJIS'"),
        "envelope_partial_time": (with_data(Shape.A, event=REMINDER,
                                            scheduled_expiry_date="2021-06-01 25:61"),
                                  "attributes.data.scheduledExpiryDate", "'2021-06-01 25:61'"),
    }),
)  # fmt: skip
def test_a_date_that_is_not_yyyy_mm_dd_is_a_bad_date(
    body: dict[str, Any], path: str, shown: str
) -> None:
    error = rejection(body)

    assert error.reason is Reason.BAD_DATE
    assert f"{path}: " in error.detail
    assert shown in error.detail


@pytest.mark.parametrize(
    ("body", "path"),
    cases({
        "array_data": (payload(body=[data()]), "data"),
        "string_data": (payload(body="customer 6809254"), "data"),
        "number_data": (payload(body=42), "data"),
        "boolean_data": (payload(body=True), "data"),
        "array_envelope_data": (payload(Shape.A, body=[]), "attributes.data"),
        "array_customer_identifiers": (with_data(customer_identifiers=[CUSTOMER]),
                                       "data.customerIdentifiers"),
        "string_instore": (with_data(instore="6590688093"), "data.customerIdentifiers.instore"),
        "array_details": (with_data(details=["M-1"]), CPD),
        "array_program_name": (with_data(name=["Drivers"]), "data.partnerProgramName"),
        "object_program_type": (with_data(program_type={"t": 1}), "data.partnerProgramType"),
        "boolean_update_type": (with_data(event=UPDATED, update_type=True), "data.updateType"),
        "object_membership_number": (with_details(membershipNumber={"n": 1}),
                                     f"{CPD}.membershipNumber"),
        "object_ref_id": (payload(ref_id={"ref": 1}), "refId"),
        "array_envelope_api_request_id": (payload(Shape.A, api_request_id=[1]),
                                          "attributes.apiRequestId"),
        "array_event_id": (payload(event_id=[EVENT_ID]), "eventId"),
    }),
)  # fmt: skip
def test_the_wrong_json_type_where_text_or_an_object_belongs_is_a_bad_value(
    body: dict[str, Any], path: str
) -> None:
    error = rejection(body)

    assert error.reason is Reason.BAD_VALUE
    assert error.detail.startswith(f"{path} is a JSON ") or f"{path}: " in error.detail


def test_every_offending_field_is_named_in_one_detail() -> None:
    details = {"membershipExpiryDate": "2024-13-45", "partnerTierNumber": 1.5}
    error = rejection(payload(org_id=True, created_at=5, body=data(details=details)))

    assert error.reason is Reason.BAD_NUMBER
    assert error.detail.split("; ") == [
        "orgId: True is not an integer",
        "createdAt: 5 is not a plausible epoch-milliseconds time (2000 to 2100)",
        f"{CPD}.partnerTierNumber: 1.5 is not an integer",
        f"{CPD}.membershipExpiryDate: '2024-13-45' is not a YYYY-MM-DD date",
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    cases({
        "unknown_event_before_missing": (payload(event="pointsAwarded", org_id=ABSENT),
                                         Reason.UNKNOWN_EVENT),
        "non_object_data_before_missing_org": (payload(body=[], org_id=ABSENT), Reason.BAD_VALUE),
        "missing_before_bad_number": (payload(org_id=True, body=data(loyalty_program_id=None)),
                                      Reason.MISSING_FIELD),
        "bad_value_before_bad_number": (payload(org_id=True, body=data(name=[1])),
                                        Reason.BAD_VALUE),
        "bad_number_before_bad_timestamp": (payload(org_id=True, created_at=5), Reason.BAD_NUMBER),
        "bad_timestamp_before_bad_date": (
            payload(created_at=5, body=data(details={"membershipExpiryDate": "x"})),
            Reason.BAD_TIMESTAMP,
        ),
    }),
)  # fmt: skip
def test_the_reason_is_the_most_fundamental_problem(body: dict[str, Any], reason: Reason) -> None:
    assert rejection(body).reason is reason


# --- fingerprint -------------------------------------------------------------------------


def renewal(expiry: str) -> dict[str, Any]:
    return with_data(event=RENEWAL_JOB, details={"membershipExpiryDate": expiry})


def reminder(scheduled: str) -> dict[str, Any]:
    return with_data(event=REMINDER, scheduled_expiry_date=scheduled)


@pytest.mark.parametrize(
    ("first", "second"),
    cases({
        "shape_A_and_B": (payload(Shape.A), payload(Shape.B)),
        "shape_B_and_C": (payload(Shape.B), payload(Shape.C)),
        "shape_C_and_R": (payload(Shape.C), payload(Shape.R)),
        "shape_A_and_R": (payload(Shape.A), payload(Shape.R)),
        "ref_id": (payload(), payload(ref_id="151197_other")),
        "api_request_id": (payload(), payload(api_request_id="another-request")),
        "event_id": (payload(), payload(event_id="another-event")),
        "event_id_absent": (payload(), payload(event_id=ABSENT)),
        "time_stamp": (payload(Shape.A), payload(Shape.A, time_stamp=CREATED_AT + 999)),
        "loyalty_event_id": (payload(), payload(loyaltyEventId="L-2")),
        "org_prefixed_event_type": (payload(Shape.A),
                                    payload(Shape.A, event=ABSENT, event_type=f"{ORG}_{LINKED}")),
        "padded_keys_and_values": (payload(), padded(payload())),
        "newline_padded_envelope": (payload(Shape.A), padded(payload(Shape.A), "\n")),
        "numbers_as_digit_strings_and_floats": (
            payload(),
            payload(org_id=str(ORG), created_at=str(CREATED_AT),
                    body=data(customer_id=float(CUSTOMER), partner_program_id=f" {PROGRAM} ")),
        ),
        "update_type_case": (with_data(event=UPDATED, update_type="UPGRADE"),
                             with_data(event=UPDATED, update_type=" upgrade")),
        "details_normalized": (with_details(partnerTierNumber=2, membershipNumber="M"),
                               with_details(partnerTierNumber="2", membershipNumber=" M")),
        "renewal_date_with_time": (renewal("2027-10-05"), renewal("2027-10-05 00:00:00")),
    }),
)  # fmt: skip
def test_redelivery_differing_only_in_delivery_metadata_has_the_same_fingerprint(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    assert parsed(first).fingerprint == parsed(second).fingerprint


def test_redelivery_with_stray_key_spaces_has_the_same_fingerprint() -> None:
    original = (SEED / "partnerProgramDelinked.enriched.json").read_bytes()
    respaced = json.loads(original)
    respaced["attributes"]["orgId"] = respaced["attributes"].pop("orgId ")
    respaced["attributes"]["data"]["partnerProgramName"] = "Riders"

    assert parsed(respaced).fingerprint == parse_notification(original).fingerprint


@pytest.mark.parametrize(
    ("first", "second"),
    cases({
        "event": (payload(), payload(event=DELINKED)),
        "event_with_the_same_update_type": (with_data(event=UPDATED, update_type="RENEW"),
                                            with_data(event=DELINKED, update_type="RENEW")),
        "org": (payload(), payload(org_id=ORG + 1)),
        "customer": (payload(), with_data(customer_id=CUSTOMER + 1)),
        "program": (payload(), with_data(partner_program_id=PROGRAM + 1)),
        "occurrence_time_by_1ms": (payload(), payload(created_at=CREATED_AT + 1)),
        "envelope_occurrence_time": (payload(Shape.A), payload(Shape.A, created_at=CREATED_AT + 1)),
        "update_type": (with_data(event=UPDATED, update_type="UPGRADE"),
                        with_data(event=UPDATED, update_type="DOWNGRADE")),
        "update_type_absent_or_sent": (payload(event=UPDATED),
                                       with_data(event=UPDATED, update_type="RENEW")),
        "tier_number": (with_details(partnerTierNumber=2), with_details(partnerTierNumber=3)),
        "tier_expiry_date": (with_details(partnerTierExpiryDate="2024-01-31"),
                             with_details(partnerTierExpiryDate="2024-02-01")),
        "membership_number": (with_details(membershipNumber="M-1"),
                              with_details(membershipNumber="M-2")),
        "membership_expiry_date": (with_details(membershipExpiryDate="2123-05-12"),
                                   with_details(membershipExpiryDate="2123-05-13")),
        "detail_absent_or_null": (with_details(), with_details(membershipNumber=None)),
        "tier_zero_or_null": (with_details(partnerTierNumber=0),
                              with_details(partnerTierNumber=None)),
        "scheduled_expiry_date": (reminder("2021-06-01"), reminder("2021-06-02")),
    }),
)  # fmt: skip
def test_a_change_to_any_business_field_changes_the_fingerprint(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    assert parsed(first).fingerprint != parsed(second).fingerprint


def test_fingerprint_is_a_sha256_hex_digest() -> None:
    fingerprint = parsed(payload()).fingerprint

    assert len(fingerprint) == 64
    assert set(fingerprint) <= set("0123456789abcdef")


# --- properties --------------------------------------------------------------------------

VALID_PAYLOADS: Final = [
    payload(Shape.A, event=ABSENT, event_type=f"{ORG}_{LINKED}",
            body=data(details={"membershipExpiryDate": "2123-05-12"})),
    payload(Shape.B, event=UPDATED, org_id=str(ORG), created_at=str(CREATED_AT),
            body=data(update_type="upgrade",
                      details={"partnerTierNumber": "2", "membershipNumber": "123-asa3"})),
    with_data(Shape.C, event=DELINKED, mobile="658750602 4"),
    with_data(Shape.R, event=REMINDER, scheduled_expiry_date="2021-06-01"),
    renewal("2027-10-05 00:00:00"),
]  # fmt: skip
WHITESPACE: Final = st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=3)


@st.composite
def randomly_padded(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with random whitespace around its keys and string values, at every depth."""
    if isinstance(value, dict):
        return {
            draw(WHITESPACE) + key + draw(WHITESPACE): draw(randomly_padded(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [draw(randomly_padded(item)) for item in value]
    if isinstance(value, str):
        return draw(WHITESPACE) + value + draw(WHITESPACE)
    return value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_whitespace_around_keys_and_string_values_never_changes_the_fingerprint(
    drawn: st.DataObject,
) -> None:
    original = drawn.draw(st.sampled_from(VALID_PAYLOADS))
    respaced = parsed(drawn.draw(randomly_padded(original)))

    assert respaced.fingerprint == parsed(original).fingerprint
    assert respaced == parsed(original)


KEYS: Final = st.sampled_from(
    ["eventName", "eventType", "attributes", "orgId", "createdAt", "data", "customerIdentifiers",
     "customerId", "instore", "mobile", "partnerProgramId", "loyaltyProgramId", "updateType",
     "partnerProgramType", "customerPartnerProgramDetails", "partnerTierNumber",
     "membershipExpiryDate", "scheduledExpiryDate", "entityInformation", "entityId", "eventLogId",
     "eventSearchKey", "refId", " orgId "]
) | st.text(max_size=8)  # fmt: skip
SCALARS: Final = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from([LINKED, UPDATED, REMINDER, RENEWAL_JOB, f"{ORG}_{LINKED}", str(CREATED_AT),
                       "2024-13-45", "2027-10-05 00:00:00", " 45 "])
    | st.text(max_size=12)
)  # fmt: skip
JSON_VALUES: Final = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=25,
)


def _notification_or_invalid(parse: Any, value: Any) -> Notification | InvalidNotificationError:
    try:
        notification: Notification = parse(value)
    except InvalidNotificationError as error:
        return error
    assert len(notification.fingerprint) == 64
    return notification


@settings(max_examples=150, deadline=None)
@given(JSON_VALUES)
def test_any_json_value_is_a_notification_or_an_invalid_notification(body: Any) -> None:
    outcome = _notification_or_invalid(parse_object, body)

    assert isinstance(outcome, Notification) or outcome.reason in set(Reason)


FIELD_PATHS: Final = [
    ("eventName",), ("orgId",), ("createdAt",), ("refId",), ("eventId",), ("data",),
    ("data", "customerIdentifiers"), ("data", "customerIdentifiers", "customerId"),
    ("data", "customerIdentifiers", "instore"),
    ("data", "customerIdentifiers", "instore", "mobile"),
    ("data", "entityInformation"), ("data", "entityInformation", "entityId"),
    ("data", "partnerProgramId"), ("data", "loyaltyProgramId"), ("data", "partnerProgramName"),
    ("data", "partnerProgramType"), ("data", "updateType"), ("data", "scheduledExpiryDate"),
    ("data", "customerPartnerProgramDetails"),
    ("data", "customerPartnerProgramDetails", "partnerTierNumber"),
    ("data", "customerPartnerProgramDetails", "membershipExpiryDate"),
]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([with_details(), payload(Shape.R), payload(Shape.A)]),
    st.sampled_from(FIELD_PATHS),
    JSON_VALUES,
)
def test_any_json_value_in_any_field_is_a_notification_or_an_invalid_notification(
    body: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    if "attributes" in body:
        path = ("attributes", *path)

    outcome = _notification_or_invalid(parse_object, replaced(body, path, value))

    assert isinstance(outcome, Notification) or outcome.detail


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64) | st.builds(lambda cut: _VALID[:cut], st.integers(0, len(_VALID))))
def test_any_bytes_are_a_notification_or_an_invalid_notification(raw: bytes) -> None:
    outcome = _notification_or_invalid(parse_notification, raw)

    assert isinstance(outcome, Notification) or outcome.reason in set(Reason)


# Python refuses to turn an int of more than 4300 digits into text (sys.int_info); a caller
# that decoded JSON with that limit lifted can still hand such a value to parse_object.
HUGE: Final = 10**5000


@pytest.mark.parametrize(
    "body",
    cases({
        "5000_digit_event_name": payload(event=HUGE),
        "5000_digit_org_id": payload(org_id=HUGE),
        "5000_digit_created_at": payload(created_at=HUGE),
        "5000_digit_program_name": with_data(name=HUGE),
    }),
)  # fmt: skip
def test_parse_object_raises_only_invalid_notification_even_for_huge_integers(
    body: dict[str, Any],
) -> None:
    with pytest.raises(InvalidNotificationError):
        parse_object(body)


def test_a_huge_entity_id_is_noted_as_a_mismatch_not_a_crash() -> None:
    body = replaced(payload(), ("data", "entityInformation", "entityId"), HUGE)
    assert "ENTITY_ID_MISMATCH" in parse_object(body).anomalies


def test_an_empty_optional_date_counts_as_null_like_empty_text() -> None:
    details = parse_object(with_details(membershipExpiryDate="", membershipNumber="")).details
    assert details.present() == {"membership_expiry_date": None, "membership_number": None}


def test_an_unpaired_surrogate_escape_is_a_bad_value() -> None:
    with pytest.raises(InvalidNotificationError) as raised:
        parse_notification(encoded(payload())[:-1] + b', "refId": "\\ud800"}')
    assert raised.value.reason is Reason.BAD_VALUE


@pytest.mark.parametrize(
    "body", cases({"list": [payload()], "text": "{}", "none": None, "number": 7})
)
def test_parse_object_of_a_non_object_is_not_an_object(body: Any) -> None:
    with pytest.raises(InvalidNotificationError) as caught:
        parse_object(body)

    assert caught.value.reason is Reason.NOT_AN_OBJECT


# --- JSON numbers are read exactly (issue 11, item 2) ------------------------------------


def _with_number(field: str, number: str) -> bytes:
    """The valid payload with one id written as the JSON number ``number``, as sent."""
    key = {"customer": "customerId", "created_at": "createdAt", "org": "orgId"}[field]
    value = {"customer": CUSTOMER, "created_at": CREATED_AT, "org": ORG}[field]
    sent = f'"{key}": {value}'.encode()
    assert _VALID.count(sent) == 1
    return _VALID.replace(sent, f'"{key}": {number}'.encode())


@pytest.mark.parametrize(
    ("field", "number", "attribute", "expected"),
    cases({
        # A float parse rounds 2^53 + 1 to 2^53 before anyone checks it is an integer.
        "beyond_2_53_with_a_fraction": ("customer", "9007199254740993.0", "customer_id",
                                        9007199254740993),
        "beyond_2_53_with_an_exponent": ("customer", "9.007199254740993e15", "customer_id",
                                         9007199254740993),
        "largest_id_with_a_fraction": ("org", "9223372036854775807.000", "org_id", 2**63 - 1),
        "exponent": ("org", "1.51197E5", "org_id", ORG),
        "trailing_zeros_beyond_the_point": ("org", "151197.000000000000000000000", "org_id", ORG),
        "created_at_with_an_exponent": ("created_at", "1.683871605603e12", "occurred_at_ms",
                                        CREATED_AT),
    }),
)  # fmt: skip
def test_a_json_number_with_a_fraction_or_exponent_is_its_exact_integer(
    field: str, number: str, attribute: str, expected: int
) -> None:
    assert getattr(parse_notification(_with_number(field, number)), attribute) == expected


@pytest.mark.parametrize(
    ("field", "number"),
    cases({
        "not_integral_beyond_2_53": ("customer", "9007199254740993.5"),
        "a_tiny_fraction": ("customer", "6809254.0000000000000000000001"),
        "one_past_the_largest_id": ("org", "9223372036854775808.0"),
        "a_billion_digit_exponent": ("customer", "1e999999999"),
        "a_negative_billion_digit_exponent": ("customer", "1e-999999999"),
        "a_huge_negative": ("org", "-1e999999999"),
    }),
)  # fmt: skip
def test_a_json_number_that_is_not_exactly_an_id_is_a_bad_number(field: str, number: str) -> None:
    error = rejection(_with_number(field, number))

    assert error.reason is Reason.BAD_NUMBER
    assert number in error.detail


# --- the ...InMillis expiry instants (issue 14, item 17) ---------------------------------


@pytest.mark.parametrize(
    ("details", "instants", "anomalies"),
    cases({
        # The reference document's samples: not midnight UTC, yet on the date in some zone.
        "tier_at_01_33_utc": ({"partnerTierExpiryDate": "2025-10-31",
                               "partnerTierExpiryDateInMillis": 1761874400000},
                              {"tier_expiry_at": 1761874400000}, ()),
        "tier_the_evening_before_utc": ({"partnerTierExpiryDate": "2025-10-31",
                                         "partnerTierExpiryDateInMillis": 1761863600000},
                                        {"tier_expiry_at": 1761863600000}, ()),
        "membership_with_a_time": ({"membershipExpiryDate": "2027-10-05 00:00:00",
                                    "membershipExpiryDateInMillis": 1822759200000},
                                   {"membership_expiry_at": 1822759200000}, ()),
        # 2025-10-31 at 00:00 UTC+14 is 2025-10-30T10:00Z; at 24:00 UTC-12, 2025-11-01T12:00Z.
        "earliest_agreeing": ({"partnerTierExpiryDate": "2025-10-31",
                               "partnerTierExpiryDateInMillis": 1761818400000},
                              {"tier_expiry_at": 1761818400000}, ()),
        "just_before_the_earliest": ({"partnerTierExpiryDate": "2025-10-31",
                                      "partnerTierExpiryDateInMillis": 1761818399999},
                                     {"tier_expiry_at": 1761818399999}, ("DATE_MILLIS_MISMATCH",)),
        "latest_agreeing": ({"partnerTierExpiryDate": "2025-10-31",
                             "partnerTierExpiryDateInMillis": 1761998399999},
                            {"tier_expiry_at": 1761998399999}, ()),
        "a_day_later": ({"membershipExpiryDate": "2027-10-05",
                         "membershipExpiryDateInMillis": 1822759200000 + 86_400_000},
                        {"membership_expiry_at": 1822845600000}, ("DATE_MILLIS_MISMATCH",)),
        "instant_without_its_date": ({"membershipExpiryDateInMillis": 1822759200000},
                                     {"membership_expiry_at": 1822759200000}, ()),
        "digit_string": ({"partnerTierExpiryDateInMillis": "1761874400000"},
                         {"tier_expiry_at": 1761874400000}, ()),
        "explicit_null": ({"partnerTierExpiryDateInMillis": None}, {"tier_expiry_at": None}, ()),
        "unreadable": ({"partnerTierExpiryDate": "2025-10-31",
                        "partnerTierExpiryDateInMillis": "soon"}, {}, ("BAD_EXPIRY_MILLIS",)),
        "beyond_year_9999": ({"partnerTierExpiryDateInMillis": 253402300800000}, {},
                             ("BAD_EXPIRY_MILLIS",)),
    }),
)  # fmt: skip
def test_expiry_instants_are_kept_and_checked_against_their_dates(
    details: dict[str, Any], instants: dict[str, int | None], anomalies: tuple[str, ...]
) -> None:
    notification = parsed(with_details(**details))

    assert notification.expiry_instants.present() == instants
    assert notification.anomalies == anomalies


def test_expiry_instants_are_not_part_of_the_fingerprint() -> None:
    dates = {"partnerTierExpiryDate": "2025-10-31", "membershipExpiryDate": "2027-10-05"}
    without = parsed(with_details(**dates))
    with_instants = parsed(
        with_details(
            **dates,
            partnerTierExpiryDateInMillis=1761874400000,
            membershipExpiryDateInMillis=1822759200000,
        )
    )

    assert with_instants.expiry_instants.present() != {}
    assert with_instants.fingerprint == without.fingerprint
