"""The dashboard's pure parts: identifier masking, session cookies, SVG escaping."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from infrastructure.http.dashboard.charts import Bar, Group, bar_chart, grouped_columns
from infrastructure.http.dashboard.masking import MASK, masked_detail, masked_payload
from infrastructure.http.dashboard.sessions import csrf_matches, open_session, verify_session

MOBILE, EMAIL = "6590688093", "prestoul@yahoo.com.sg"


def test_identifier_fields_are_masked_at_any_depth_and_nothing_else() -> None:
    payload = {
        "eventName": "partnerProgramLinked",
        "attributes": {
            "data": {
                "customerIdentifiers": {
                    "customerId": 6809254,
                    "instore": {"mobile": MOBILE, "email": EMAIL, "externalId": "X-1"},
                    "cards": [{"cardNumber": "4111111111111111"}],
                },
                "firstName": "Ana",
                "partnerProgramName": "Drivers ",
            }
        },
    }
    shown = masked_payload(json.dumps(payload).encode())
    for secret in (MOBILE, EMAIL, "X-1", "4111111111111111", "Ana"):
        assert secret not in shown
    masked = json.loads(shown)["attributes"]["data"]
    assert masked["customerIdentifiers"]["instore"] == {
        "mobile": MASK,
        "email": MASK,
        "externalId": MASK,
    }
    assert masked["customerIdentifiers"]["customerId"] == 6809254
    assert masked["partnerProgramName"] == "Drivers "


@pytest.mark.parametrize(
    "raw",
    [
        b'{"data": {"mobile": "6590688093", "email": "prestoul@yahoo.com.sg"',  # truncated
        b"mobile=6590688093 contact prestoul@yahoo.com.sg",  # not JSON at all
        b'{"Mobile" : "6590688093",\n "EMAIL": "prestoul@yahoo.com.sg", }',  # trailing comma
        b'\xff\xfe{"mobile": "6590688093"} prestoul@yahoo.com.sg',  # not UTF-8
    ],
)
def test_a_payload_that_is_not_json_is_masked_by_pattern(raw: bytes) -> None:
    shown = masked_payload(raw)
    assert EMAIL not in shown
    if b'"mobile"' in raw.lower():
        assert MOBILE not in shown


def test_hostile_text_is_left_as_text_for_the_template_to_escape() -> None:
    raw = json.dumps({"eventName": "<script>alert(1)</script>"}).encode()
    assert "<script>alert(1)</script>" in masked_payload(raw)
    assert masked_detail(f"email {EMAIL} is not valid") == f"email {MASK} is not valid"


def test_a_session_verifies_only_under_a_configured_token_and_before_it_expires() -> None:
    cookie = open_session(b"old-token", lifetime_seconds=60)
    session = verify_session(cookie, [b"new-token", b"old-token"])
    assert session is not None
    assert verify_session(cookie, [b"new-token"]) is None  # rotated out
    assert verify_session(cookie, [b"old-token"], now=time.time() + 61) is None  # expired
    tampered = cookie.replace(".", ".9", 1)  # a later expiry, same signature
    assert verify_session(tampered, [b"old-token"]) is None
    assert csrf_matches(session, session.csrf_token)
    assert not csrf_matches(session, None)
    other = verify_session(open_session(b"old-token", lifetime_seconds=60), [b"old-token"])
    assert other is not None and other.csrf_token != session.csrf_token


def test_chart_labels_are_escaped_and_every_bar_carries_its_count() -> None:
    svg = bar_chart(
        [Bar("<script>alert(1)</script>", 3), Bar('" onmouseover="x', 0)],
        chart_id="c",
        title="t",
        kind="tier",
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'onmouseover="' not in svg
    assert svg.count('data-count="3"') == 1 and svg.count('data-count="0"') == 1
    columns = grouped_columns(
        [Group("2026-01", (4, 1)), Group("2026-02", (0, 2))],
        series=("link", "delink"),
        chart_id="m",
        title="t",
    )
    counts = [int(n) for n in re.findall(r'data-count="(\d+)"', columns)]
    assert counts == [4, 1, 0, 2]


def test_the_dashboard_and_its_json_hold_no_sql_of_their_own() -> None:
    root = Path(__file__).parents[2] / "infrastructure" / "http"
    doors = [*sorted((root / "dashboard").glob("*.py")), root / "overview.py"]
    sql = re.compile(
        r"\b(SELECT|INSERT|UPDATE|DELETE FROM)\s+\w"
    )  # the code base writes SQL uppercase
    assert len(doors) >= 8
    assert {path.name for path in doors if sql.search(path.read_text())} == set()
