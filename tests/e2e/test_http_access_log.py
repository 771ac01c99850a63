"""The access log of a real ``serve`` process: a line per request, except deliveries answered
200, which are said in one line per commit with what became of them."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from domain.keys import MembershipKey
from tests.e2e.http_server import running_server
from tests.payloads import shape_a

GROUP_LINE = re.compile(
    r"POST /webhooks/capillary: (\d+) committed \(([a-z0-9, ]+)\) in \d+\.\d ms"
)


def delivery(customer: int) -> bytes:
    key = MembershipKey(org_id=50191, customer_id=customer, partner_program_id=25)
    return shape_a("partnerProgramLinked", 1700000000000, f"e-{customer}", key=key, details={})


def test_deliveries_are_counted_per_commit_and_every_other_answer_has_its_line(
    tmp_path: Path,
) -> None:
    new = [delivery(customer) for customer in range(1000, 1040)]
    invalid = b'{"eventName": "partnerProgramLinked", "orgId": 50191}'  # quarantined, 200
    bodies = [*new, *new[:5], invalid, b"{not json"]
    with running_server(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path) as server:
        with ThreadPoolExecutor(max_workers=16) as senders:
            statuses = list(senders.map(lambda body: server.post(body).status_code, bodies))
        assert server.post(new[0], headers={"X-Webhook-Token": "wrong"}).status_code == 401
        assert server.get("/memberships/50191/1000/25").status_code == 200
    assert statuses == [200] * 46 + [400]
    log = server.log()  # the server has stopped: every line is written
    counts = {"recorded": 0, "duplicate": 0, "quarantined": 0}
    committed = 0
    for line in log.splitlines():
        if match := GROUP_LINE.search(line):
            committed += int(match[1])
            for part in match[2].split(", "):
                number, status = part.split(" ")
                counts[status] += int(number)
    # Each delivery is in exactly one commit's line, whichever group it fell in.
    assert committed == len(bodies)
    assert counts == {"recorded": 40, "duplicate": 5, "quarantined": 2}, log
    assert "POST /webhooks/capillary 200" not in log
    assert "POST /webhooks/capillary 400" in log  # not JSON: a line of its own too
    assert "POST /webhooks/capillary 401" in log
    assert "GET /memberships/{org}/{customer}/{program} 200" in log
