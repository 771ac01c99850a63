"""Generate a realistic, reproducible stream of Capillary partner-program notifications.

The output is JSON Lines (one notification per line, UTF-8) shaped like the webhooks Capillary
sends for partner-program memberships: ``partnerProgramLinked``, ``partnerProgramUpdated``,
``partnerProgramDelinked``, ``supplementaryMembershipExpiryReminder`` and the ``PP_EXPIRY_JOB``
renewal. It is meant for tests and benchmarks: it streams (it holds the next notification of
each membership in progress, never the output) and is byte-for-byte reproducible from ``--seed``.

Usage::

    python scripts/generate_notifications.py --count 10000 --seed 1 > notifications.jsonl
    python scripts/generate_notifications.py --count 1000000 --out big.jsonl --duplicate-rate 0.1
    python scripts/generate_notifications.py --count 500 --shuffle      # same lines, any order

or from Python::

    from scripts.generate_notifications import generate  # from the repository root
    for line in generate(1000, seed=7):  # exactly 1000 lines, without trailing newline
        ...

What the stream contains:

- Memberships keyed by ``(orgId, customerId, partnerProgramId)``, each with a plausible life in
  occurrence order: a link, 0 to 3 updates per link (UPGRADE/DOWNGRADE/RENEW consistent with the
  tier move on EXTERNAL programs, RENEW with a new expiry on SUPPLEMENTARY ones), expiry
  reminders and ``PP_EXPIRY_JOB`` renewals (SUPPLEMENTARY only), delinks and relinks. Now and
  then the link is never sent and the life starts with an update. Within one membership every
  notification has its own ``createdAt``, at least one second after the previous one.
- Three payload shapes picked per notification: A (``attributes`` envelope), B (flat legacy)
  and C (flat with ``eventSearchKey``, half of the time without ``eventId``).
- The feed's messiness: stray spaces around keys, padded program names, ``refId`` with a
  trailing space, mobiles with an embedded space, ``createdAt`` as a float or a digit string,
  ids as digit strings, an org prefix on ``eventType``.
- Redeliveries (``--duplicate-rate`` of the lines): an earlier notification sent again, either
  byte-identical or re-serialized (other whitespace, key spaces, ``refId``, ``apiRequestId``)
  with the same ``eventId`` and the same business content.
- Malformed lines (``--malformed-rate`` of the lines): truncated JSON, an array or a string
  instead of an object, an unknown ``eventName``, a missing ``customerId``, a non-numeric
  ``partnerProgramId``, an impossible date. They never reuse a valid notification's ``eventId``.
- Order: notifications are interleaved by occurrence time, then shuffled inside a sliding window
  of ``--reorder-window`` lines (no line moves by a window or more), so a membership's
  notifications sometimes arrive out of order. A redelivery always comes after its original.

``--count`` lines are written in total, redeliveries and malformed lines included.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import io
import itertools
import json
import math
import os
import random
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple, TextIO

# --- time -----------------------------------------------------------------------------------

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
BEGIN_MS = (date(2023, 1, 1).toordinal() - _EPOCH_ORDINAL) * DAY
END_MS = (date(2026, 7, 1).toordinal() - _EPOCH_ORDINAL) * DAY - 1  # 2026-06-30T23:59:59.999Z
MIN_GAP = SECOND  # between two notifications of one membership

# --- event vocabulary -----------------------------------------------------------------------

LINKED = "partnerProgramLinked"
UPDATED = "partnerProgramUpdated"
DELINKED = "partnerProgramDelinked"
REMINDER = "supplementaryMembershipExpiryReminder"
RENEWAL_JOB = "PP_EXPIRY_JOB"
EXTERNAL = "EXTERNAL"
SUPPLEMENTARY = "SUPPLEMENTARY"
MAX_TIER = 4
MAX_UPDATES_PER_LINK = 3
MAX_REMINDERS_PER_CYCLE = 2

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ALNUM_BYTES = bytes(ord(_ALNUM[byte % len(_ALNUM)]) for byte in range(256))  # byte -> alnum
_KNOWN_ORGS = ((151197, 1115, "65"), (50191, 855, "91"), (50583, 1377, "91"))
_COUNTRY_CODES = ("65", "91", "60", "62", "971")
_PROGRAM_NAMES = (
    "Drivers", "Riders", "Demo-p1", "SPprogram1", "sub program", "SkyMiles Connect",
    "FuelPlus", "CineClub", "Gold Circle", "StayRewards", "Wellness Pass", "JetSetters",
    "Dine Elite", "g", "Prime Partner", "Campus Club",
)  # fmt: skip
_MAIL_NAMES = ("prestoul", "romieshafiq", "anita.k", "weiming", "rahul_s", "siti", "jdoe")
_MAIL_DOMAINS = ("gmail.com", "yahoo.com.sg", "hotmail.com", "outlook.com")
_SUPPLEMENTARY_PERIODS = (30, 90, 180, 365)
_REMINDER_DAYS = (1, 3, 7, 14)
_UNKNOWN_EVENTS = ("pointsIssued", "customerAdded", "tierUpgraded", "partnerProgramLinkd")
_BAD_DATES = ("2024-13-45", "JAEKROMG", "2023-02-30", "31/12/2025")
_STRAY_KEYS = (
    "orgId", "refId", "apiRequestId", "createdAt", "timeStamp", "eventName", "loyaltyEventId",
    "partnerProgramName", "partnerProgramType", "loyaltyProgramId",
)  # fmt: skip

# Payloads are trees without cycles: skipping the circularity check is safe and faster.
_LINE_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False)
_REDELIVERY_ENCODERS = tuple(
    json.JSONEncoder(ensure_ascii=False, check_circular=False, **style)
    for style in (
        {"separators": (",", ":")},
        {"separators": (", ", ":")},
        {"separators": (" , ", " : ")},
        {"sort_keys": True, "separators": (",", ": ")},
    )
)
_MALFORMED_KINDS = (
    "truncated", "array", "string", "unknown_event", "missing_customer", "bad_program_id",
    "bad_date",
)  # fmt: skip

# Probabilities (per notification unless said otherwise).
_MESSY = 0.2  # gate: the quirks below apply only to this share of notifications...
_QUIRK = 0.25  # ...and each quirk to this share of those, i.e. about 5% overall each
_HIDDEN_LINK = 0.03  # membership whose link is never sent
_SENTINEL_EXPIRY = 0.04  # SUPPLEMENTARY link expiring in 100 years (open-ended)
_SAME_REQUEST = 0.2  # apiRequestId shared with the previous notification of the org
_VERBATIM_REDELIVERY = 0.5
_NEW_IDS_ON_REDELIVERY = 0.6


def _day(ms: int) -> int:
    """Days since 1970-01-01 (UTC) of an epoch-milliseconds time."""
    return ms // DAY


def _iso(day: int) -> str:
    return date.fromordinal(day + _EPOCH_ORDINAL).isoformat()


def _years_later(day: int, years: int) -> int:
    when = date.fromordinal(day + _EPOCH_ORDINAL)
    try:
        later = when.replace(year=when.year + years)
    except ValueError:  # 29 February
        later = when.replace(year=when.year + years, day=28)
    return later.toordinal() - _EPOCH_ORDINAL


def _between(rng: random.Random, low: int, high: int) -> int:
    """Like ``rng.randint(low, high)``, several times faster; used on the hot paths."""
    return low + int(rng.random() * (high - low + 1))


def _uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _alnum(rng: random.Random, length: int) -> str:
    return rng.randbytes(length).translate(_ALNUM_BYTES).decode("ascii")


def _digits(rng: random.Random, length: int) -> str:
    return str(rng.randrange(10 ** (length - 1), 10**length))


# --- catalog: orgs, programs, customers ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Program:
    """A partner program as configured in one org."""

    org_id: int
    loyalty_program_id: int
    program_id: int
    name: str
    program_type: str
    period_days: int  # SUPPLEMENTARY membership period; 0 for EXTERNAL


@dataclass(frozen=True, slots=True)
class Customer:
    """A loyalty customer of one org, with the in-store identifiers Capillary sends."""

    customer_id: int
    mobile: str
    email: str
    external_id: str


@dataclass(slots=True)
class Org:
    """An org, its programs, and the customer currently being given memberships."""

    org_id: int
    country_code: str
    programs: list[Program]
    next_customer_id: int
    current: Customer | None = None
    current_programs: set[int] = field(default_factory=set)

    def new_customer(self, rng: random.Random) -> Customer:
        customer_id = self.next_customer_id
        self.next_customer_id += rng.randint(1, 20)
        width = 8 if self.country_code in ("65", "60") else 10
        mobile = self.country_code + _digits(rng, width)
        if rng.random() < 0.5:
            email = f"autoemail_{mobile}@autogen.co.in"
        else:
            name = rng.choice(_MAIL_NAMES)
            email = f"{name}{rng.randint(1, 999)}@{rng.choice(_MAIL_DOMAINS)}"
        return Customer(customer_id, mobile, email, mobile)


def _build_orgs(rng: random.Random, count: int) -> list[Org]:
    orgs: list[Org] = []
    for index in range(count):
        if index < len(_KNOWN_ORGS):
            org_id, loyalty_id, country = _KNOWN_ORGS[index]
        else:
            org_id = rng.randrange(100_000, 999_999)
            while any(org.org_id == org_id for org in orgs):
                org_id = rng.randrange(100_000, 999_999)
            loyalty_id, country = rng.randrange(500, 5000), rng.choice(_COUNTRY_CODES)
        loyalty_ids = [loyalty_id] if rng.random() < 0.7 else [loyalty_id, loyalty_id + 1]
        programs = _build_programs(rng, org_id, loyalty_ids)
        first_customer = rng.randrange(1_000_000, 400_000_000)
        orgs.append(Org(org_id, country, programs, first_customer))
    return orgs


def _build_programs(rng: random.Random, org_id: int, loyalty_ids: list[int]) -> list[Program]:
    size = rng.randint(2, 5)
    names = rng.sample(_PROGRAM_NAMES, size)
    program_ids = sorted(rng.sample(range(10, 400), size))
    types = [EXTERNAL, SUPPLEMENTARY] + [rng.choice((EXTERNAL, SUPPLEMENTARY))] * (size - 2)
    programs = []
    for name, program_id, kind in zip(names, program_ids, types, strict=True):
        period = rng.choice(_SUPPLEMENTARY_PERIODS) if kind == SUPPLEMENTARY else 0
        loyalty_id = rng.choice(loyalty_ids)
        programs.append(Program(org_id, loyalty_id, program_id, name, kind, period))
    return programs


# --- membership lives ----------------------------------------------------------------------


class Fact(NamedTuple):
    """The business content of one notification, before it is given a payload shape."""

    name: str
    created_at: int
    program: Program
    customer: Customer
    update_type: str | None = None
    details: dict[str, Any] | None = None
    scheduled_expiry: str | None = None


def _draw_gap(rng: random.Random) -> int:
    """Time to the next notification of a membership: a session, days, or months."""
    roll = rng.random()
    if roll < 0.2:
        return _between(rng, MIN_GAP, 10 * MINUTE)
    if roll < 0.6:
        return int(10 * MINUTE * 1008 ** rng.random())  # 10 minutes to 7 days, log-uniform
    return _between(rng, 7 * DAY, 180 * DAY)


class Membership:
    """One (org, customer, program) membership, producing its notifications one at a time.

    ``remaining`` counts the notifications still to emit. The invariant
    ``END_MS - t >= 2 * MIN_GAP * remaining`` keeps every ``createdAt`` before END_MS.
    """

    __slots__ = (
        "customer", "expiry", "hidden_link", "linked", "number", "program", "remaining",
        "reminders", "t", "tier", "updates",
    )  # fmt: skip

    def __init__(self, program: Program, customer: Customer, length: int, hidden_link: bool):
        self.program = program
        self.customer = customer
        self.remaining = length
        self.hidden_link = hidden_link
        self.t = 0
        self.linked = False
        self.updates = 0
        self.reminders = 0
        self.tier = 1
        self.expiry = 0  # membership expiry day (SUPPLEMENTARY)
        self.number = ""

    def first(self, rng: random.Random, start: int) -> Fact:
        if self.hidden_link:  # linked earlier; that notification was never sent
            self._link(rng, start - rng.randint(MINUTE, 30 * DAY))
            return self._emit(self._update(rng, start))
        return self._emit(self._link(rng, start))

    def next(self, rng: random.Random) -> Fact | None:
        if self.remaining == 0:
            return None
        if not self.linked:
            return self._emit(self._link(rng, self._next_time(rng)))
        options: list[tuple[float, str, int]] = []  # (weight, event name, time)
        soon = self._next_time(rng)
        if self.updates < MAX_UPDATES_PER_LINK:
            weight = 3.0 if self.program.program_type == EXTERNAL else 1.5
            options.append((weight, UPDATED, soon))
        if self.program.program_type == SUPPLEMENTARY:
            self._add_expiry_options(rng, options)
        options.append((0.6, DELINKED, soon))
        name, when = _weighted(rng, options)
        if name == UPDATED:
            return self._emit(self._update(rng, when))
        if name == REMINDER:
            return self._emit(self._reminder(when))
        if name == RENEWAL_JOB:
            return self._emit(self._renewal_job(when))
        return self._emit(self._delink(when))

    # -- timing

    def _next_time(self, rng: random.Random) -> int:
        limit = (END_MS - self.t) // (self.remaining + 1)
        gap = _draw_gap(rng)
        if gap > limit:
            gap = _between(rng, MIN_GAP, max(MIN_GAP, limit))
        return self.t + gap

    def _feasible(self, when: int) -> bool:
        latest = END_MS - 2 * MIN_GAP * (self.remaining - 1)
        return self.t + MIN_GAP <= when <= latest

    def _add_expiry_options(
        self, rng: random.Random, options: list[tuple[float, str, int]]
    ) -> None:
        """Reminders go out 1 to 14 days before expiry around 09:00 IST, the renewal job
        in the hours before expiry; either only if it still fits in this life."""
        expiry_ms = self.expiry * DAY
        if self.reminders < MAX_REMINDERS_PER_CYCLE:
            days_before = _REMINDER_DAYS[int(rng.random() * len(_REMINDER_DAYS))]
            when = expiry_ms - days_before * DAY + 210 * MINUTE + _between(rng, 0, 30 * MINUTE)
            if self._feasible(when):
                options.append((2.0, REMINDER, when))
        when = expiry_ms - _between(rng, MIN_GAP, 6 * HOUR)
        if self._feasible(when):
            options.append((1.0, RENEWAL_JOB, when))

    def _emit(self, fact: Fact) -> Fact:
        self.t = fact.created_at
        self.remaining -= 1
        return fact

    # -- transitions

    def _link(self, rng: random.Random, when: int) -> Fact:
        self.linked = True
        self.updates = 0
        self.reminders = 0
        today = _day(when)
        if self.program.program_type == EXTERNAL:
            if not self.number:
                self.number = f"{rng.randrange(100, 999)}-{_alnum(rng, 4).lower()}"
            roll = rng.random()
            self.tier = 1 if roll < 0.6 else 2 if roll < 0.9 else 3
            return Fact(
                LINKED, when, self.program, self.customer, None, self._tier_details(rng, today)
            )
        if rng.random() < _SENTINEL_EXPIRY:
            self.expiry = _years_later(today, 100)
        else:
            self.expiry = today + self.program.period_days
        details = {"membershipExpiryDate": _iso(self.expiry)}
        return Fact(LINKED, when, self.program, self.customer, None, details)

    def _update(self, rng: random.Random, when: int) -> Fact:
        self.updates += 1
        today = _day(when)
        if self.program.program_type == SUPPLEMENTARY:
            self._renew(today)
            details = {"membershipExpiryDate": _iso(self.expiry)}
            return Fact(UPDATED, when, self.program, self.customer, "RENEW", details)
        moves = ["RENEW"]
        if self.tier < MAX_TIER:
            moves.append("UPGRADE")
        if self.tier > 1:
            moves.append("DOWNGRADE")
        move = moves[int(rng.random() * len(moves))]
        self.tier += {"UPGRADE": 1, "DOWNGRADE": -1}.get(move, 0)
        details = self._tier_details(rng, today)
        return Fact(UPDATED, when, self.program, self.customer, move, details)

    def _tier_details(self, rng: random.Random, today: int) -> dict[str, Any]:
        return {
            "partnerTierExpiryDate": _iso(today + _between(rng, 30, 730)),
            "partnerTierNumber": self.tier,
            "membershipNumber": self.number,
        }

    def _renew(self, today: int) -> None:
        self.expiry = max(self.expiry, today) + self.program.period_days
        self.reminders = 0

    def _reminder(self, when: int) -> Fact:
        self.reminders += 1
        return Fact(REMINDER, when, self.program, self.customer, scheduled_expiry=_iso(self.expiry))

    def _renewal_job(self, when: int) -> Fact:
        self._renew(_day(when))
        details = {"membershipExpiryDate": f"{_iso(self.expiry)} 00:00:00"}
        return Fact(RENEWAL_JOB, when, self.program, self.customer, "RENEW", details)

    def _delink(self, when: int) -> Fact:
        self.linked = False
        return Fact(DELINKED, when, self.program, self.customer)


def _weighted(rng: random.Random, options: list[tuple[float, str, int]]) -> tuple[str, int]:
    """One (event name, time) option, chosen with probability proportional to its weight."""
    roll = rng.random() * sum(option[0] for option in options)
    for weight, name, when in options:
        roll -= weight
        if roll < 0:
            return name, when
    return options[-1][1], options[-1][2]


def _sorted_starts(rng: random.Random, count: int, low: int, high: int) -> Iterator[int]:
    """``count`` uniform times in [low, high], produced in increasing order."""
    current = float(low)
    for left in range(count, 0, -1):
        current += (high - current) * (1.0 - rng.random() ** (1.0 / left))
        yield int(current)


def _draw_length(rng: random.Random, remaining: int, memberships_left: int, cap: int) -> int:
    """Notifications for the next membership: geometric around the mean still needed."""
    if memberships_left == 1:  # the last one takes what is left, so the total is exact
        return max(1, min(remaining, cap))
    mean = remaining / memberships_left
    length = 1
    if mean > 1.0:
        stop = 1.0 / mean
        length += int(math.log(1.0 - rng.random()) / math.log(1.0 - stop))
    return max(1, min(length, remaining - (memberships_left - 1), cap))


def _pick_key(
    rng: random.Random, orgs: list[Org], cum_weights: list[int]
) -> tuple[Program, Customer]:
    """A membership key never used before: a new customer, or the org's latest one again."""
    org = rng.choices(orgs, cum_weights=cum_weights)[0]
    used = org.current_programs
    customer = org.current
    if customer is not None and len(used) < len(org.programs) and rng.random() < 0.3:
        program = rng.choice([p for p in org.programs if p.program_id not in used])
    else:
        customer = org.current = org.new_customer(rng)
        used.clear()
        program = rng.choice(org.programs)
    used.add(program.program_id)
    return program, customer


def _facts(rng: random.Random, orgs: list[Org], total: int, memberships: int) -> Iterator[Fact]:
    """About ``total`` facts of ``memberships`` memberships, in occurrence-time order.

    Only the next notification of each started membership is held in memory.
    """
    cum_weights = list(itertools.accumulate(rng.randint(1, 5) for _ in orgs))
    margin = max(2 * DAY, 8 * MIN_GAP * math.ceil(total / max(memberships, 1)))
    pending: list[tuple[int, int, Fact, Membership]] = []
    remaining = total
    starts = _sorted_starts(rng, memberships, BEGIN_MS, max(BEGIN_MS, END_MS - margin))
    for index, start in enumerate(starts):
        while pending and pending[0][0] <= start:
            yield _advance(rng, pending)
        cap = (END_MS - start) // (2 * MIN_GAP)
        length = _draw_length(rng, remaining, memberships - index, cap)
        remaining -= length
        program, customer = _pick_key(rng, orgs, cum_weights)
        membership = Membership(program, customer, length, rng.random() < _HIDDEN_LINK)
        fact = membership.first(rng, start)
        heapq.heappush(pending, (fact.created_at, index, fact, membership))
    while pending:
        yield _advance(rng, pending)


def _advance(rng: random.Random, pending: list[tuple[int, int, Fact, Membership]]) -> Fact:
    """Pop the earliest pending fact and queue that membership's next one."""
    _, serial, fact, membership = pending[0]
    following = membership.next(rng)
    if following is None:
        heapq.heappop(pending)
    else:
        heapq.heapreplace(pending, (following.created_at, serial, following, membership))
    return fact


# --- payloads ------------------------------------------------------------------------------


class Renderer:
    """Turns facts into payload dicts of shape A, B or C, with the feed's quirks."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.last_request: dict[int, str] = {}

    def render(self, fact: Fact, *, clean: bool = False) -> dict[str, Any]:
        rng = self.rng
        if fact.name == RENEWAL_JOB:
            shape, event_id = "C", None
        else:
            roll = rng.random()
            shape = "A" if roll < 0.35 else "B" if roll < 0.7 else "C"
            has_id = shape != "C" or rng.random() < 0.5
            event_id = _uuid4(rng) if has_id else None
        messy = not clean and rng.random() < _MESSY
        data = self._data(fact, shape, messy)
        org_id: int | str = fact.program.org_id
        created_at: int | float | str = fact.created_at
        ref_id = self._ref_id(fact)
        if messy:
            org_id = str(org_id) if rng.random() < _QUIRK / 2 else org_id
            created_at = self._messy_number(fact.created_at)
            ref_id = ref_id + " " if rng.random() < _QUIRK else ref_id
        api_request_id = self.api_request_id(fact.program.org_id, hyphenated=fact.name == REMINDER)
        common = (data, ref_id, api_request_id, org_id, created_at)
        if shape == "A":
            assert event_id is not None
            payload = self._shape_a(fact, event_id, messy, *common)
        else:
            payload = self._shape_flat(fact.name, shape, event_id, *common)
        if messy and rng.random() < _QUIRK:
            target = payload["attributes"] if shape == "A" and rng.random() < 0.7 else payload
            _add_stray_space(rng, target)
        return payload

    def _data(self, fact: Fact, shape: str, messy: bool) -> dict[str, Any]:
        rng = self.rng
        program, customer = fact.program, fact.customer
        customer_id: int | str = customer.customer_id
        if fact.name == RENEWAL_JOB:  # as in Capillary's sample: the bare customer id
            identifiers: dict[str, Any] = {"customerId": customer_id}
        else:
            mobile = customer.mobile
            if messy and rng.random() < _QUIRK:
                cut = _between(rng, 1, len(mobile) - 1)
                mobile = f"{mobile[:cut]} {mobile[cut:]}"
            instore = {"mobile": mobile, "email": customer.email}
            if shape != "A":
                instore["externalId"] = customer.external_id
            identifiers = {"customerId": customer_id, "instore": instore}
        data: dict[str, Any] = {"customerIdentifiers": identifiers}
        if shape != "B" and fact.name != RENEWAL_JOB:
            data["entityInformation"] = {"entityType": "USER", "entityId": customer_id}
        data["loyaltyProgramId"] = program.loyalty_program_id
        data["partnerProgramId"] = program.program_id
        data["partnerProgramName"] = program.name
        if fact.name != REMINDER:
            data["partnerProgramType"] = program.program_type
        if fact.update_type is not None:
            data["updateType"] = fact.update_type
        if fact.details is not None:
            data["customerPartnerProgramDetails"] = fact.details
        if fact.scheduled_expiry is not None:
            data["scheduledExpiryDate"] = fact.scheduled_expiry
        if messy:
            self._mess_up_data(data)
        return data

    def _mess_up_data(self, data: dict[str, Any]) -> None:
        rng = self.rng
        if rng.random() < _QUIRK:
            name = data["partnerProgramName"]
            data["partnerProgramName"] = rng.choice((f" {name}", f"{name} ", f" {name} "))
        if rng.random() < _QUIRK:
            which = rng.choice(("customerId", "partnerProgramId", "loyaltyProgramId"))
            holder = data["customerIdentifiers"] if which == "customerId" else data
            holder[which] = str(holder[which])

    def _messy_number(self, value: int) -> int | float | str:
        roll = self.rng.random()
        if roll < _QUIRK / 2:
            return float(value)
        if roll < _QUIRK * 3 / 4:
            return str(value)
        return value

    def _ref_id(self, fact: Fact) -> str:
        org_id = fact.program.org_id
        if fact.name == REMINDER:  # reminders come from a batch job
            return f"{org_id}_{_uuid4(self.rng)}_b1"
        return f"{org_id}_{_alnum(self.rng, 10)}"

    def api_request_id(self, org_id: int, *, hyphenated: bool) -> str:
        """A UUID or 32 hex digits; now and then the previous one of the org (a batch)."""
        rng = self.rng
        last = self.last_request.get(org_id)
        if last is not None and rng.random() < _SAME_REQUEST:
            return last  # one API request (a batch of up to 50) makes many notifications
        if hyphenated or rng.random() < 0.5:
            request = _uuid4(rng)
        else:
            request = f"{rng.getrandbits(128):032x}"
        self.last_request[org_id] = request
        return request

    def _shape_a(
        self,
        fact: Fact,
        event_id: str,
        messy: bool,
        data: dict[str, Any],
        ref_id: str,
        api_request_id: str,
        org_id: int | str,
        created_at: int | float | str,
    ) -> dict[str, Any]:
        event_type = fact.name
        if messy and self.rng.random() < _QUIRK:
            event_type = f"{fact.program.org_id}_{fact.name}"
        return {
            "eventId": event_id,
            "eventType": event_type,
            "consumerGroupId": None,
            "actionType": "START",
            "timeStamp": fact.created_at + _between(self.rng, 3, 60),
            "attributes": {
                "createdAt": created_at,
                "data": data,
                "eventName": fact.name,
                "refId": ref_id,
                "apiRequestId": api_request_id,
                "orgId": org_id,
            },
        }

    @staticmethod
    def _shape_flat(
        name: str,
        shape: str,
        event_id: str | None,
        data: dict[str, Any],
        ref_id: str,
        api_request_id: str,
        org_id: int | str,
        created_at: int | float | str,
    ) -> dict[str, Any]:
        if shape == "B":
            return {
                "eventName": name,
                "eventId": event_id,
                "orgId": org_id,
                "refId": ref_id,
                "apiRequestId": api_request_id,
                "createdAt": created_at,
                "data": data,
                "loyaltyEventId": None,
            }
        payload: dict[str, Any] = {
            "eventName": name,
            "eventSearchKey": "data.customerIdentifiers.customerId",
        }
        if event_id is not None:
            payload["eventId"] = event_id
        payload.update(
            data=data, orgId=org_id, refId=ref_id, apiRequestId=api_request_id, createdAt=created_at
        )
        return payload


def _add_stray_space(rng: random.Random, target: dict[str, Any]) -> None:
    """Rename one envelope key to carry a leading or trailing space, keeping key order."""
    candidates = [key for key in target if key.strip() in _STRAY_KEYS]
    if not candidates:
        return
    chosen = rng.choice(candidates)
    renamed = f"{chosen.strip()} " if rng.random() < 0.7 else f" {chosen.strip()}"
    items = [(renamed if key == chosen else key, value) for key, value in target.items()]
    target.clear()
    target.update(items)


# --- redeliveries and malformed lines ------------------------------------------------------


class _Sent(NamedTuple):
    """A valid notification as first sent, kept for redelivery."""

    line: str
    org_id: int


def _redelivery(rng: random.Random, renderer: Renderer, original: _Sent) -> str:
    """The same notification again: verbatim, or re-serialized with new delivery metadata."""
    line, org_id = original
    if rng.random() < _VERBATIM_REDELIVERY:
        return line
    top = {key.strip(): value for key, value in json.loads(line).items()}
    envelope = top
    if isinstance(top.get("attributes"), dict):
        envelope = {key.strip(): value for key, value in top["attributes"].items()}
        top["attributes"] = envelope
    if rng.random() < _NEW_IDS_ON_REDELIVERY:
        batch_job = str(envelope.get("refId", "")).strip().endswith("_b1")  # a reminder
        suffix = f"{_uuid4(rng)}_b1" if batch_job else _alnum(rng, 10)
        envelope["refId"] = f"{org_id}_{suffix}"
        envelope["apiRequestId"] = renderer.api_request_id(org_id, hyphenated=batch_job)
    if rng.random() < 0.3:
        _add_stray_space(rng, envelope)
    encoder = rng.choice(_REDELIVERY_ENCODERS)
    return encoder.encode(top)


def _malformed(rng: random.Random, renderer: Renderer, orgs: list[Org]) -> str:
    """One line that a correct receiver must reject (and that reuses no valid eventId)."""
    kind = rng.choice(_MALFORMED_KINDS)
    payload = renderer.render(_stray_fact(rng, orgs, dated=kind == "bad_date"), clean=True)
    envelope = payload.get("attributes", payload)
    data = envelope["data"]
    if kind == "truncated":
        line = _LINE_ENCODER.encode(payload)
        return line[: rng.randint(1, len(line) - 1)]
    if kind == "array":
        return _LINE_ENCODER.encode([payload] if rng.random() < 0.7 else [])
    if kind == "string":
        text = _LINE_ENCODER.encode(payload) if rng.random() < 0.7 else envelope["eventName"]
        return _LINE_ENCODER.encode(text)
    if kind == "unknown_event":
        envelope["eventName"] = rng.choice(_UNKNOWN_EVENTS)
        if "eventType" in payload:
            payload["eventType"] = envelope["eventName"]
    elif kind == "missing_customer":
        del data["customerIdentifiers"]["customerId"]
    elif kind == "bad_program_id":
        data["partnerProgramId"] = "abc"
    else:
        bad = rng.choice(_BAD_DATES)
        if "scheduledExpiryDate" in data:
            data["scheduledExpiryDate"] = bad
        else:
            details = data["customerPartnerProgramDetails"]
            date_key = next(key for key in details if key.endswith("ExpiryDate"))
            details[date_key] = bad
    return _LINE_ENCODER.encode(payload)


def _stray_fact(rng: random.Random, orgs: list[Org], *, dated: bool) -> Fact:
    """A fact about a customer outside every valid membership (ids from 900,000,000 up)."""
    program = rng.choice(rng.choice(orgs).programs)
    mobile = "65" + _digits(rng, 8)
    customer = Customer(
        rng.randrange(900_000_000, 999_999_999), mobile, f"x{mobile}@mail.com", mobile
    )
    when = rng.randint(BEGIN_MS, END_MS)
    expiry = _iso(_day(when) + rng.randint(30, 365))
    names = [LINKED, UPDATED] + ([REMINDER] if program.program_type == SUPPLEMENTARY else [])
    if not dated:
        names.append(DELINKED)
    name = rng.choice(names)
    if name == REMINDER:
        return Fact(name, when, program, customer, scheduled_expiry=expiry)
    if name == DELINKED:
        return Fact(name, when, program, customer)
    update_type = "RENEW" if name == UPDATED else None
    if program.program_type == SUPPLEMENTARY:
        details: dict[str, Any] = {"membershipExpiryDate": expiry}
    else:
        details = {
            "partnerTierExpiryDate": expiry,
            "partnerTierNumber": 1,
            "membershipNumber": "X1",
        }
    return Fact(name, when, program, customer, update_type, details)


# --- the stream ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Budget:
    """How many lines of each category are still to be written."""

    valid: int
    duplicate: int
    malformed: int

    def pick(self, rng: random.Random) -> str:
        roll = rng.random() * (self.valid + self.duplicate + self.malformed)
        if roll < self.malformed:
            return "malformed"
        if roll < self.malformed + self.duplicate:
            return "duplicate"
        return "valid"


class _History:
    """A ring of recently sent valid notifications, to be redelivered later."""

    def __init__(self, size: int) -> None:
        self.ring: list[_Sent | None] = [None] * size
        self.size = size
        self.count = 0

    def add(self, sent: _Sent) -> None:
        self.ring[self.count % self.size] = sent
        self.count += 1

    def pick(self, rng: random.Random, min_age: int) -> _Sent | None:
        """An entry at least ``min_age`` entries old (mostly recent ones), if there is one."""
        available = min(self.count, self.size)
        if available <= min_age:
            return None
        if rng.random() < 0.85:
            age = min_age + 1 + int(rng.expovariate(1 / 200))
        else:
            age = rng.randint(min_age + 1, available)
        age = min(age, available)
        return self.ring[(self.count - age) % self.size]


def _mixed_lines(
    rng: random.Random, orgs: list[Org], count: int, budget: _Budget, memberships: int, window: int
) -> Iterator[str]:
    """Valid, redelivered and malformed lines, in time order before any reordering.

    A redelivery needs an original at least ``window`` lines back (so that it still comes
    after it once reordered); until there is one, a new notification is sent instead.
    """
    renderer = Renderer(rng)
    facts = _facts(rng, orgs, budget.valid, memberships)
    history = _History(window + 4096)

    def fresh() -> str | None:
        fact = next(facts, None)
        if fact is None:
            return None
        budget.valid -= 1
        line = _LINE_ENCODER.encode(renderer.render(fact))
        history.add(_Sent(line, fact.program.org_id))
        return line

    for _ in range(count):
        category = budget.pick(rng)
        if category == "malformed":
            budget.malformed -= 1
            yield _malformed(rng, renderer, orgs)
            continue
        original = history.pick(rng, window) if category == "duplicate" else None
        line = fresh() if original is None else None
        if line is None and original is None:  # only with degenerate settings
            original = history.pick(rng, 0)
        if line is not None:
            yield line
        elif original is not None:
            budget.duplicate = max(0, budget.duplicate - 1)
            yield _redelivery(rng, renderer, original)
        else:
            yield _malformed(rng, renderer, orgs)


def _reordered(rng: random.Random, lines: Iterable[str], window: int) -> Iterator[str]:
    """Shuffle within a sliding window: line i leaves at a random rank in [i, i + window)."""
    if window <= 1:
        yield from lines
        return
    pending: list[tuple[float, int, str]] = []
    for index, line in enumerate(lines):
        heapq.heappush(pending, (index + rng.random() * window, index, line))
        while pending[0][0] < index + 1:
            yield heapq.heappop(pending)[2]
    while pending:
        yield heapq.heappop(pending)[2]


def generate(
    count: int,
    *,
    seed: int = 0,
    memberships: int | None = None,
    malformed_rate: float = 0.005,
    duplicate_rate: float = 0.05,
    reorder_window: int = 20,
    orgs: int = 3,
) -> Iterator[str]:
    """Yield exactly ``count`` JSON lines (without trailing newline), reproducibly from ``seed``.

    ``memberships`` is the number of distinct (org, customer, program) keys; it defaults to
    about one per five lines and never exceeds the number of valid notifications.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if memberships is not None and memberships < 1:
        raise ValueError("memberships must be >= 1")
    if not (0.0 <= malformed_rate <= 1.0 and 0.0 <= duplicate_rate <= 1.0):
        raise ValueError("rates must be between 0 and 1")
    if malformed_rate + duplicate_rate > 1.0:
        raise ValueError("malformed_rate + duplicate_rate must not exceed 1")
    if reorder_window < 0 or orgs < 1:
        raise ValueError("reorder_window must be >= 0 and orgs >= 1")
    malformed = round(count * malformed_rate)
    duplicate = min(round(count * duplicate_rate), count - malformed)
    valid = count - malformed - duplicate
    if valid == 0 and duplicate > 0:  # a redelivery needs an original
        valid, duplicate = 1, duplicate - 1
    wanted = max(1, count // 5) if memberships is None else memberships
    rng = random.Random(seed)
    catalog = _build_orgs(rng, orgs)
    budget = _Budget(valid, duplicate, malformed)
    lines = _mixed_lines(rng, catalog, count, budget, min(wanted, valid), reorder_window)
    return _reordered(rng, lines, reorder_window)


# --- command line --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate a synthetic stream of Capillary partner-program notifications "
        "as JSON Lines.",
    )
    parser.add_argument("--count", type=int, default=10000, help="lines to write (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--memberships", type=int, default=None, help="distinct memberships (default count // 5)"
    )
    parser.add_argument("--malformed-rate", type=float, default=0.005, help="default 0.005")
    parser.add_argument("--duplicate-rate", type=float, default=0.05, help="default 0.05")
    parser.add_argument(
        "--reorder-window", type=int, default=20, help="shuffle window in lines (default 20)"
    )
    parser.add_argument("--orgs", type=int, default=3, help="number of orgs (default 3)")
    parser.add_argument("--out", default="-", help="output path, '-' for stdout (default)")
    parser.add_argument(
        "--shuffle", action="store_true", help="write the same lines in a random (seeded) order"
    )
    return parser


def _write(lines: Iterable[str], out: TextIO) -> None:
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == 4096:
            out.write("\n".join(batch) + "\n")
            batch.clear()
    if batch:
        out.write("\n".join(batch) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        lines: Iterable[str] = generate(
            args.count,
            seed=args.seed,
            memberships=args.memberships,
            malformed_rate=args.malformed_rate,
            duplicate_rate=args.duplicate_rate,
            reorder_window=args.reorder_window,
            orgs=args.orgs,
        )
    except ValueError as error:
        parser.error(str(error))
    # The generator makes no reference cycles, so the cyclic collector would only spend time
    # scanning the many short-lived dicts (10 to 15% of the run time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        if args.shuffle:
            everything = list(lines)
            random.Random(f"shuffle:{args.seed}").shuffle(everything)
            lines = everything
        return _output(lines, args.out)
    finally:
        if collecting:
            gc.enable()


def _output(lines: Iterable[str], path: str) -> int:
    if path != "-":
        with open(path, "w", encoding="utf-8", newline="\n") as out:
            _write(lines, out)
        return 0
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8", newline="\n")
    try:
        _write(lines, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left early (e.g. `| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
