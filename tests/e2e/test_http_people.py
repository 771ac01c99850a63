"""The HTTP API as a person (or their script) meets it (issue 14): the CLI's date forms, a
customer's memberships, expiring from today, unknown parameters, readable 422s, /docs.

One real ``serve`` process on a fresh PostgreSQL database, beside the real CLI on the same one.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import PostgresServer
from tests.e2e.http_server import Server, running_server
from tests.e2e.test_http import CLI, cli_lines, new_org, notification

TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="module")
def server(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = postgres.create()
    try:
        with running_server(url, tmp_path_factory.mktemp("http-people")) as running:
            yield running
    finally:
        postgres.drop(url)


def post_all(server: Server, bodies: list[bytes]) -> int:
    answers = [server.post(body).json() for body in bodies]
    assert all(a["status"] == "recorded" for a in answers), answers
    return max(a["position"] for a in answers)


@pytest.mark.parametrize(
    "as_of", ["2023-11-14", "20231114", "2023-11-14T23:59:59Z", "1700006399999"]
)
def test_as_of_takes_every_form_the_cli_takes_with_the_same_meaning(
    server: Server, as_of: str
) -> None:
    org = new_org()
    # Linked 2023-11-14T22:13:20Z with tier 1, upgraded the next day to tier 3.
    post_all(
        server,
        [
            notification(org, 1, 5, details={"partnerTierNumber": 1}),
            notification(
                org,
                1,
                5,
                event="partnerProgramUpdated",
                at_ms=1_700_000_000_000 + 86_400_000,
                update_type="UPGRADE",
                details={"partnerTierNumber": 3},
            ),
        ],
    )
    answer = server.get(f"/memberships/{org}/1/5", as_of=as_of)
    assert answer.status_code == 200, answer.text
    assert answer.json()["tier_number"] == 1
    (printed,) = cli_lines(server.db_url, "membership", str(org), "1", "5", "--as-of", as_of)
    assert answer.json() == printed


def test_a_bad_moment_is_a_422_in_one_sentence_naming_the_forms(server: Server) -> None:
    answer = server.get(f"/memberships/{new_org()}/1/5", as_of="12/05/2023")
    assert answer.status_code == 422
    body = answer.json()
    assert body["errors"] == [body["detail"]]
    assert body["detail"].startswith("as_of: '12/05/2023' is not a date")
    assert "epoch milliseconds" in body["detail"]


def test_expiring_starts_today_over_http_as_in_the_cli(server: Server) -> None:
    org = new_org()
    past, soon = (TODAY - timedelta(days=9)).isoformat(), (TODAY + timedelta(days=9)).isoformat()
    last = post_all(
        server,
        [
            notification(org, 1, 5, details={"membershipExpiryDate": past}),
            notification(org, 2, 5, details={"membershipExpiryDate": soon}),
        ],
    )
    answer = server.get("/expiring", org=org, min_position=last)
    assert [row["customer_id"] for row in answer.json()] == [2]
    assert [answer.json()] == cli_lines(server.db_url, "expiring", "--org", str(org))
    # The same day forms as the CLI; an explicit --from in the past still finds the past.
    earlier = server.get("/expiring", org=org, **{"from": "20000101"}).json()
    assert [row["customer_id"] for row in earlier] == [1, 2]
    backwards = server.get("/expiring", org=org, **{"from": "2030-01-02", "to": "2030-01-01"})
    assert backwards.status_code == 422 and "is before" in backwards.json()["detail"]


def test_a_customers_memberships_are_one_read(server: Server) -> None:
    org = new_org()
    last = post_all(server, [notification(org, 3, 5), notification(org, 3, 6)])
    answer = server.get(f"/memberships/{org}/3", min_position=last)
    assert answer.status_code == 200
    assert [row["partner_program_id"] for row in answer.json()] == [5, 6]
    assert answer.json() == cli_lines(server.db_url, "memberships", str(org), "3")
    assert server.get(f"/memberships/{org}/4").status_code == 404


def test_an_unknown_query_parameter_is_a_422_naming_it(server: Server) -> None:
    answer = server.get("/expiring", within="30d")
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("unknown query parameter within (this endpoint")
    two = server.get("/tiers", colour="red", size="9")
    assert two.status_code == 422 and "parameters colour, size" in two.json()["detail"]
    assert server.get("/tiers").status_code == 200


def test_a_422_body_is_one_readable_sentence_per_field(server: Server) -> None:
    answer = server.get("/expiring", limit="5000", org="x")
    assert answer.status_code == 422
    body = answer.json()
    assert set(body) == {"detail", "errors"} and len(body["errors"]) == 2
    for sentence in body["errors"]:
        assert re.fullmatch(r"query parameter (limit|org): [a-z].*\.", sentence), sentence
    assert "'5000'" in body["detail"] and "'x'" in body["detail"]


def test_openapi_carries_the_package_version_and_the_422_shape(server: Server) -> None:
    document = server.client.get("/openapi.json").json()
    assert document["info"]["version"] == version("partner-ledger")
    bad = document["paths"]["/expiring"]["get"]["responses"]["422"]
    assert bad["content"]["application/json"]["schema"]["$ref"].endswith("/ValidationProblem")
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_the_docs_page_is_served_whole_and_lists_every_endpoint(
    server: Server, tmp_path: Path
) -> None:
    page = server.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    document = server.client.get("/openapi.json").json()
    for path in document["paths"]:
        assert path in page.text, path
    # Nothing is fetched from elsewhere: no external script, style or link.
    assert not re.search(r"""(src|href)=['"]?https?://""", page.text)
    assert "<form class='call' data-path='/expiring'>" in page.text


def test_a_quarantined_delivery_names_the_http_door_as_its_source(server: Server) -> None:
    answer = server.post(f"not json {new_org()}".encode())
    assert answer.status_code == 400
    done = subprocess.run(
        [str(CLI), "--db", server.db_url, "quarantine", "show", answer.json()["id"], "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout)["source"] == "HTTP delivery (POST /webhooks/capillary)"
