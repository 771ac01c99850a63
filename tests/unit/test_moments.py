"""Moments as people and Capillary write them: every form of a day means the same day."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from infrastructure.moments import parse_day, parse_moment

START = datetime(2023, 5, 12, tzinfo=UTC)
END = datetime(2023, 5, 12, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2023-05-12", "20230512", " 2023-05-12 ", "2023-W19-5"])
def test_every_form_of_a_day_is_its_start_or_its_end(text: str) -> None:
    assert parse_moment(text, end_of_day=False) == START
    assert parse_moment(text, end_of_day=True) == END
    assert parse_day(text) == date(2023, 5, 12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1683871605603", datetime(2023, 5, 12, 6, 6, 45, 603000, tzinfo=UTC)),
        ("2023-05-12T06:06:45.603Z", datetime(2023, 5, 12, 6, 6, 45, 603000, tzinfo=UTC)),
        ("2023-05-12 06:06", datetime(2023, 5, 12, 6, 6, tzinfo=UTC)),
        ("2023-05-12T08:06:45+02:00", datetime(2023, 5, 12, 6, 6, 45, tzinfo=UTC)),
    ],
)
def test_an_instant_is_taken_as_given_whatever_the_end(text: str, expected: datetime) -> None:
    assert parse_moment(text, end_of_day=True) == expected
    assert parse_moment(text, end_of_day=False) == expected


def test_the_day_of_an_instant_is_its_utc_day() -> None:
    assert parse_day("2023-05-12T23:30:00-02:00") == date(2023, 5, 13)
    assert parse_day("1683871605603") == date(2023, 5, 12)


@pytest.mark.parametrize(
    "text", ["12/05/2023", "1683871605", "202305", "", "yesterday", "99999999999999999999"]
)
def test_anything_else_is_one_sentence_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not|beyond") as raised:
        parse_moment(text, end_of_day=True)
    assert repr(text.strip()) in str(raised.value)
