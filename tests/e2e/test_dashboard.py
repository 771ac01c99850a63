"""The dashboard over plain HTTP against real ``serve`` processes: sessions, CSRF, headers,
token rotation, bad input, the JSON it shares with the API. (The browser tests are in
test_dashboard_browser.py.)"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infrastructure.http.dashboard.sessions import COOKIE, open_session
from tests.conftest import PostgresServer
from tests.e2e import dashboard_world
from tests.e2e.dashboard_world import ORG, World, cli
from tests.e2e.http_server import READ_TOKEN, Server, running_server

OPERATOR_TOKEN = "operator-test-77e0a2"
PAGES = ("/dashboard", "/dashboard/membership", "/dashboard/expiring", "/dashboard/quarantine")


@pytest.fixture(scope="module")
def ledger_url(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL ledger with generated notifications, ingested by the CLI."""
    work = tmp_path_factory.mktemp("dashboard-http")
    url = postgres.create()
    dashboard_world.generate(work / "stream.jsonl", count=600, seed=5)
    cli(url, "ingest", str(work / "stream.jsonl"), "--json")
    yield url
    postgres.drop(url)


def sign_in(server: Server, token: str = READ_TOKEN) -> httpx.Response:
    return server.client.post(
        "/dashboard/sign-in", data={"token": token}, headers={"Origin": server.url}
    )


def session_of(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    return answer.cookies[COOKIE]


def page(server: Server, path: str, session: str | None, **params: str) -> httpx.Response:
    cookies = {COOKIE: session} if session else {}
    return httpx.get(f"{server.url}{path}", params=params, cookies=cookies, timeout=30)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def signed_in(answer: httpx.Response) -> bool:
    return answer.status_code == 200 and 'id="token"' not in answer.text


def test_the_session_cookie_is_httponly_strict_signed_and_expires(
    ledger_url: str, tmp_path: Path
) -> None:
    with running_server(ledger_url, tmp_path) as server:
        answer = sign_in(server)
        header = answer.headers["set-cookie"]
        assert "HttpOnly" in header and "SameSite=strict" in header and "Max-Age=28800" in header
        assert "Secure" not in header  # plain HTTP on loopback, not told otherwise
        assert READ_TOKEN not in header and READ_TOKEN not in answer.headers["location"]
        session = session_of(answer)
        assert signed_in(page(server, "/dashboard", session))
        # A forged signature, a cookie for another token, an expired one: the sign-in page.
        forged = session[:-4] + ("AAAA" if not session.endswith("AAAA") else "BBBB")
        other = open_session(b"some-other-token", lifetime_seconds=600)
        expired = open_session(READ_TOKEN.encode(), lifetime_seconds=60, now=time.time() - 120)
        for cookie in (forged, other, expired, "garbage"):
            answer = page(server, "/dashboard", cookie)
            assert answer.status_code == 200 and 'id="token"' in answer.text
        # A wrong token opens nothing; neither does a token in the URL.
        refused = sign_in(server, "wrong-token")
        assert refused.status_code == 401 and COOKIE not in refused.cookies
        assert not signed_in(page(server, "/dashboard", None, token=READ_TOKEN))
        # Another site's form cannot sign anyone in.
        cross = server.client.post(
            "/dashboard/sign-in", data={"token": READ_TOKEN}, headers={"Origin": "https://evil"}
        )
        assert cross.status_code == 403 and COOKIE not in cross.cookies


def test_secure_cookies_when_told(ledger_url: str, tmp_path: Path) -> None:
    with running_server(ledger_url, tmp_path, PARTNER_LEDGER_SECURE_COOKIES="true") as server:
        assert "Secure" in sign_in(server).headers["set-cookie"]


def test_sessions_end_when_their_read_token_is_rotated_out_and_every_worker_accepts_them(
    ledger_url: str, tmp_path: Path
) -> None:
    tokens = {"PARTNER_LEDGER_READ_TOKEN": f"{READ_TOKEN},new-read-token"}
    with running_server(ledger_url, tmp_path, "--workers", "2", **tokens) as server:
        old = session_of(sign_in(server, READ_TOKEN))
        new = session_of(sign_in(server, "new-read-token"))
        # Each request on a new connection: both workers answer, and both accept both.
        for _ in range(8):
            assert signed_in(page(server, "/dashboard/expiring", old))
            assert signed_in(page(server, "/dashboard/expiring", new))
    # The old token is rotated out: its sessions are over, the new token's are not.
    rotated = {"PARTNER_LEDGER_READ_TOKEN": "new-read-token"}
    with running_server(ledger_url, tmp_path, **rotated) as server:
        answer = page(server, "/dashboard/expiring", old)
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
        assert signed_in(page(server, "/dashboard/expiring", new))


def test_every_page_forbids_framing_and_inline_script(ledger_url: str, tmp_path: Path) -> None:
    with running_server(ledger_url, tmp_path) as server:
        session = session_of(sign_in(server))
        for path in (*PAGES, "/dashboard/membership?org=1&customer=2"):
            answer = httpx.get(f"{server.url}{path}", cookies={COOKIE: session}, timeout=30)
            assert answer.headers["x-frame-options"] == "DENY", path
            policy = answer.headers["content-security-policy"]
            assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
            assert "unsafe-inline" not in policy and "script-src" not in policy
            assert answer.headers["cache-control"] == "no-store"
            assert "<script" not in answer.text.lower() and " style=" not in answer.text
        # Without a session every page but the sign-in one sends the browser to sign in.
        for path in PAGES[1:]:
            answer = page(server, path, None)
            assert (answer.status_code, answer.headers["location"]) == (303, "/dashboard")


def test_bad_input_is_one_sentence_on_the_page(ledger_url: str, tmp_path: Path) -> None:
    with running_server(ledger_url, tmp_path) as server:
        session = session_of(sign_in(server))
        cases = [
            ("/dashboard/membership", {"org": "abc", "customer": "1"}, 400, "Org must be a whole"),
            ("/dashboard/membership", {"org": "1", "customer": "2", "program": "3"}, 404, "No "),
            (
                "/dashboard/membership",
                {"org": "1", "customer": "2", "program": "3", "as_of": "yesterday"},
                400,
                "As of",
            ),
            ("/dashboard/expiring", {"from": "2024-02-30"}, 400, "From must be a date"),
            ("/dashboard/expiring", {"from": "2024-03-01", "to": "2024-01-01"}, 400, "To must"),
            ("/dashboard/expiring", {"cursor": "bm90IG91cnM"}, 400, "That page link"),
            ("/dashboard/expiring", {"limit": "7"}, 400, "Rows per page"),
        ]
        for path, params, status, sentence in cases:
            answer = page(server, path, session, **params)
            assert answer.status_code == status, (path, params)
            error = re.search(r'<p class="error" role="alert">([^<]*)</p>', answer.text)
            assert error and error.group(1).startswith(sentence), (params, answer.text[-600:])
        assert "Traceback" not in server.log()


def test_replay_needs_the_csrf_token_and_the_operator_token(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create()
    try:
        with running_server(url, tmp_path, PARTNER_LEDGER_OPERATOR_TOKEN=OPERATOR_TOKEN) as server:
            dashboard_world.generate(tmp_path / "stream.jsonl", count=50, seed=3)
            world: World = dashboard_world.build(server, url, tmp_path)
            session = session_of(sign_in(server))
            listing = page(server, "/dashboard/quarantine", session)
            assert world.replayable[:12] in listing.text
            csrf = csrf_of(listing.text)

            def replay(**form: str) -> httpx.Response:
                return httpx.post(
                    f"{server.url}/dashboard/quarantine/replay",
                    data={"id": world.replayable} | form,
                    cookies={COOKIE: session},
                    headers={"Origin": server.url},
                    timeout=30,
                )

            def open_entry() -> bool:
                rows = server.sql(
                    "SELECT resolved_at_us FROM ledger_quarantine WHERE id = %s",
                    (world.replayable,),
                )
                return rows == [(None,)]

            assert replay(operator_token=OPERATOR_TOKEN).status_code == 403  # no CSRF token
            assert replay(csrf="x" * len(csrf), operator_token=OPERATOR_TOKEN).status_code == 403
            assert replay(csrf=csrf).status_code == 403  # no operator token
            assert replay(csrf=csrf, operator_token=READ_TOKEN).status_code == 403
            assert open_entry()
            done = replay(csrf=csrf, operator_token=OPERATOR_TOKEN)
            recorded = re.search(r"recorded at position (\d+)", done.text)
            assert done.status_code == 200 and recorded
            assert not open_entry()
            key = world.replayable_key
            membership = f"/memberships/{key[0]}/{key[1]}/{key[2]}"
            assert server.get(membership, min_position=recorded[1]).status_code == 200
        # A server without an operator token refuses every replay, and says why.
        with running_server(url, tmp_path) as server:
            session = session_of(sign_in(server))
            listing = page(server, "/dashboard/quarantine", session)
            assert 'id="replay-off"' in listing.text
            refused = httpx.post(
                f"{server.url}/dashboard/quarantine/replay",
                data={"id": "x", "csrf": csrf_of(listing.text), "operator_token": "anything"},
                cookies={COOKIE: session},
                headers={"Origin": server.url},
                timeout=30,
            )
            assert refused.status_code == 403 and "Replay is off" in refused.text
    finally:
        postgres.drop(url)


def test_the_dashboards_json_needs_the_read_token_and_matches_the_queries(
    ledger_url: str, tmp_path: Path
) -> None:
    with running_server(ledger_url, tmp_path) as server:
        for path in ("/overview", "/activity", "/quarantine"):
            assert server.client.get(path).status_code == 401
        overview = server.get("/overview").json()
        assert overview["tiers"] and all("partner_program_name" in r for r in overview["tiers"])
        assert [
            {k: v for k, v in r.items() if k != "partner_program_name"} for r in overview["tiers"]
        ] == server.get("/tiers").json()
        assert overview["activity"] == server.get("/activity").json()
        (events,) = server.sql("SELECT COUNT(*) FROM ledger_inbox")[0]
        assert overview["health"]["events"] == events
        assert {v["view"] for v in overview["health"]["views"]} == {
            "memberships",
            "expiry",
            "activity",
        }
        answer = server.get("/quarantine")
        listed = answer.json()
        assert answer.headers["x-total-count"] == str(len(listed))
        assert all(isinstance(row["accepted_now"], bool) for row in listed)
        (open_entries,) = server.sql(
            "SELECT COUNT(*) FROM ledger_quarantine WHERE resolved_at_us IS NULL"
        )[0]
        assert len(listed) == open_entries == overview["health"]["quarantine_open"] > 0
        printed = cli(ledger_url, "quarantine", "list", "--json").stdout
        assert [row["id"] for row in dashboard_world.rows_printed(printed)] == [
            row["id"] for row in listed
        ]
        assert server.get("/activity", months="200").status_code == 422
        head = max(v["position"] for v in overview["health"]["views"])
        assert server.get("/activity", min_position=str(head)).status_code == 200
        assert server.get("/overview", min_position=str(head + 10**6)).status_code == 400
        assert [r["id"] for r in server.get("/quarantine", limit="2", page="2").json()] == [
            row["id"] for row in listed[2:4]
        ]
        assert ORG not in {row["org_id"] for row in overview["tiers"]}
