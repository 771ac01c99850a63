"""A membership's natural key and the aggregate id derived from it."""

from __future__ import annotations

from functools import lru_cache
from typing import Final, NamedTuple
from uuid import UUID, uuid5

MEMBERSHIP_NAMESPACE: Final = UUID("6f1b0c2e-4d0a-5b8e-9c57-3a1e2f7d9b10")


class MembershipKey(NamedTuple):
    """Which membership: a customer's membership of one partner program, in one org."""

    org_id: int
    customer_id: int
    partner_program_id: int


@lru_cache(maxsize=65_536)
def membership_id(key: MembershipKey) -> UUID:
    """The aggregate id of a membership, derived from its natural key."""
    return uuid5(MEMBERSHIP_NAMESPACE, f"{key.org_id}/{key.customer_id}/{key.partner_program_id}")
