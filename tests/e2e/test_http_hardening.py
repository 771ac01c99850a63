"""Issue 11, the service: stuck clients, shutdown, limits, answers and flags, through real
``serve`` processes on loopback (real sockets, real signals, a real PostgreSQL and SQLite).

Each test starts its own server with small limits, so the counts stay small (tens of sockets,
a few hundred kilobytes). Where the store matters (commits held on a lock, the body budget,
draining) the test runs on both stores; what is the same on both (flags, sockets, the Link
header) runs on one.
"""

from __future__ import annotations

import json
import resource
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import psycopg
import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.http_server import (
    READ_TOKEN,
    ROOT,
    WEBHOOK_SECRET,
    Server,
    _wait_until_ready,
    free_port,
    running_server,
    serve_command,
    server_env,
)
from tests.e2e.test_http import (
    _database_refusing_connections,
    _wait_for_a_lock_wait,
    new_org,
    notification,
)

TOKEN = {"X-Webhook-Token": WEBHOOK_SECRET}


# --- helpers -----------------------------------------------------------------------------


def query(db_url: str, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Ask either store directly (``%s`` placeholders)."""
    if db_url.startswith("sqlite:///"):
        path = db_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path, timeout=30)) as conn:
            return conn.execute(text.replace("%s", "?"), params).fetchall()
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute(text, params).fetchall()


def inbox_count(db_url: str, org: int) -> int:
    return int(query(db_url, "SELECT count(*) FROM ledger_inbox WHERE org_id = %s", (org,))[0][0])


@contextmanager
def writer_held(db_url: str) -> Iterator[None]:
    """Make every commit wait: PostgreSQL's inbox table locked, or SQLite's write lock taken,
    from another connection, until the block ends."""
    if db_url.startswith("sqlite:///"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.rollback()
            conn.close()
        return
    with psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE ledger_inbox IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            blocker.rollback()


def wait_for_the_commit_to_wait(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        time.sleep(1.0)  # no lock view in SQLite: give the delivery time to reach the commit
    else:
        _wait_for_a_lock_wait(db_url)


def post(server: Server, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/webhooks/capillary", content=body, headers=TOKEN | headers, timeout=30
    )


def run_serve(db_url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        serve_command(db_url, *args),
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_sentence(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("partner-ledger: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def connect(server: Server) -> socket.socket:
    port = int(server.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def closed_by_server(sock: socket.socket, *, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (what it sent first, a
    408 or nothing, is read and dropped)."""
    deadline = time.monotonic() + within
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True
    return False


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


# --- item 4: Standard Webhooks secrets ---------------------------------------------------


def test_an_empty_signing_secret_is_refused_at_start_up(sqlite_url: str) -> None:
    result = run_serve(sqlite_url, "--port", str(free_port()), "--signing-secret", "whsec_")
    assert_one_sentence(result, "signing secret is empty")


def test_signatures_of_the_reference_package_verify_with_an_unpadded_secret(
    sqlite_url: str, tmp_path: Path
) -> None:
    # 20 key bytes: base64 needs one '=' of padding, which the secret leaves out.
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2I".rstrip("=")
    reference = Webhook(secret)
    with running_server(sqlite_url, tmp_path, "--signing-secret", secret) as server:
        org = new_org()
        body = notification(org, 1, 1)
        message_id = f"msg_{uuid4().hex}"
        now = datetime.now(tz=UTC)
        signed = {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": reference.sign(message_id, now, body.decode()),
        }
        answer = post(server, body, **signed)
        assert answer.status_code == 200 and answer.json()["status"] == "recorded"
        # The package's own verification agrees, and a body it would refuse is refused too.
        reference.verify(body, signed)
        assert post(server, notification(org, 2, 1), **signed).status_code == 401
        assert inbox_count(sqlite_url, org) == 1


# --- item 5: shutdown is bounded, and nothing uncommitted is answered 200 -----------------


def test_sigterm_while_a_commit_waits_on_a_lock_exits_in_time_without_a_200(
    db_url: str, tmp_path: Path
) -> None:
    drain = 1.0
    with running_server(db_url, tmp_path, "--drain-seconds", str(drain)) as server:
        org = new_org()
        with writer_held(db_url), ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(post, server, notification(org, 1, 1))
            wait_for_the_commit_to_wait(db_url)
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            # The lock is held past the whole bound: serve must not wait for it.
            answer = waiting.result(timeout=drain + 10)
            server.process.wait(timeout=drain + 5 + 1)  # drain + 5 s, and 1 s to be reaped
            exited_after = time.monotonic() - signalled
        assert answer.status_code == 429, answer.text
        assert answer.headers["Retry-After"].isdigit()
        assert exited_after < drain + 6
        # Nothing of it was committed: the answer was not a lie.
        assert inbox_count(db_url, org) == 0


def test_a_client_stalling_its_body_does_not_hold_shutdown(sqlite_url: str, tmp_path: Path) -> None:
    with running_server(sqlite_url, tmp_path) as server:
        stalled = connect(server)
        stalled.sendall(
            b"POST /webhooks/capillary HTTP/1.1\r\nHost: x\r\nX-Webhook-Token: "
            + WEBHOOK_SECRET.encode()
            + b'\r\nContent-Length: 1000\r\n\r\n{"eventName": '
        )
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=5 + 1)  # drain 0 + 5 s, and 1 s to be reaped
        assert closed_by_server(stalled, within=1)
        stalled.close()


# --- item 6: connection limits, request deadlines, log floods, body memory ---------------


def test_idle_slowloris_and_stalled_body_connections_are_closed_after_the_deadline(
    sqlite_url: str, tmp_path: Path
) -> None:
    with running_server(sqlite_url, tmp_path, PARTNER_LEDGER_REQUEST_READ_SECONDS="1.5") as server:
        org = new_org()
        idle = [connect(server) for _ in range(40)]
        slow = [connect(server) for _ in range(10)]
        # Headers sent in full, then a body that stops halfway.
        stalled = [connect(server) for _ in range(5)]
        body = notification(org, 1, 1)
        for sock in stalled:
            sock.sendall(
                b"POST /webhooks/capillary HTTP/1.1\r\nHost: x\r\nX-Webhook-Token: "
                + WEBHOOK_SECRET.encode()
                + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body[: len(body) // 2]
            )
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        # The slowloris senders keep trickling header lines, one every 0.3 s.
        cut: set[int] = set()
        deadline = time.monotonic() + 8
        while len(cut) < len(slow) and time.monotonic() < deadline:
            for index, sock in enumerate(slow):
                if index in cut:
                    continue
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    cut.add(index)
                    continue
                if closed_by_server(sock, within=0.03):
                    cut.add(index)
            time.sleep(0.3)
        assert len(cut) == len(slow)
        assert all(closed_by_server(sock, within=3) for sock in idle + stalled)
        # The service still answers, and nothing of the half-sent bodies was stored.
        assert server.client.get("/healthz").status_code == 200
        assert inbox_count(sqlite_url, org) == 0
        for sock in idle + slow + stalled:
            sock.close()


def test_a_connection_over_the_limit_gets_429_with_retry_after_and_is_closed(
    sqlite_url: str, tmp_path: Path
) -> None:
    with running_server(
        sqlite_url,
        tmp_path,
        PARTNER_LEDGER_MAX_CONNECTIONS="5",
        PARTNER_LEDGER_REQUEST_READ_SECONDS="30",
    ) as server:
        server.client.close()  # its keep-alive connection would count
        held = [connect(server) for _ in range(5)]
        time.sleep(0.3)  # accepted by the server
        over = httpx.get(f"{server.url}/healthz", timeout=10)
        assert over.status_code == 429
        assert over.headers["Retry-After"].isdigit()
        assert over.headers["Connection"] == "close"
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 10
        while httpx.get(f"{server.url}/healthz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the service did not take connections again"
            time.sleep(0.1)


def test_queued_bodies_are_bounded_in_bytes_and_the_rest_get_429(
    db_url: str, tmp_path: Path
) -> None:
    with running_server(db_url, tmp_path, PARTNER_LEDGER_MAX_PENDING_BYTES=str(100_000)) as server:
        org = new_org()
        bodies = []
        for customer in range(1, 9):
            body = json.loads(notification(org, customer, 1))
            body["padding"] = "x" * 30_000  # about 30 kB each: three fit in the budget
            bodies.append(json.dumps(body).encode())
        with ThreadPoolExecutor(len(bodies)) as pool:
            with writer_held(db_url):
                answers = [pool.submit(post, server, body) for body in bodies]
                # While the commits wait, the bodies beyond the budget are answered at once.
                deadline = time.monotonic() + 15
                while sum(a.done() for a in answers) < 5 and time.monotonic() < deadline:
                    time.sleep(0.05)
                early = [a.result() for a in answers if a.done()]
            final = [a.result(timeout=30) for a in answers]
        assert len(early) >= 5
        assert all(a.status_code == 429 and a.headers["Retry-After"].isdigit() for a in early), [
            (a.status_code, a.text) for a in early
        ]
        recorded = [a for a in final if a.status_code == 200]
        assert 1 <= len(recorded) <= 3
        assert all(a.json()["status"] == "recorded" for a in recorded)
        assert {a.status_code for a in final} == {200, 429}
        # Exactly the bodies answered 200 are in the store.
        assert inbox_count(db_url, org) == len(recorded)


def test_repeated_log_lines_are_rate_limited(sqlite_url: str, tmp_path: Path) -> None:
    with running_server(sqlite_url, tmp_path) as server:
        for _ in range(40):
            with closing(connect(server)) as sock:
                sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                assert closed_by_server(sock, within=5)
        log = server.log()
    assert 1 <= log.count("Invalid HTTP request received.") <= 5


def _open_file_limit(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def test_at_the_open_file_limit_the_service_keeps_answering_and_logs_little(
    sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            serve_command(sqlite_url, "--port", str(port)),
            cwd=ROOT,
            env=server_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: _open_file_limit(256),
        )
    url = f"http://127.0.0.1:{port}"
    server = Server(url, sqlite_url, process, log_path, httpx.Client(base_url=url, timeout=10))
    try:
        _wait_until_ready(server)
        server.client.close()
        # More sockets than the process may open files: they are accepted up to its cap.
        flood = []
        for _ in range(300):
            try:
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break
        # A new request is still answered (429 while the cap is reached), not left hanging.
        deadline = time.monotonic() + 20
        while True:
            try:
                status = httpx.get(f"{url}/healthz", timeout=5).status_code
            except httpx.TransportError:
                status = None
            if status in (200, 429):
                break
            assert time.monotonic() < deadline, "the service stopped answering"
            time.sleep(0.2)
        for sock in flood:
            sock.close()
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/healthz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the service did not recover"
            time.sleep(0.2)
    finally:
        server.stop()
    # Whatever went wrong at the limit was written a few times, not thousands.
    assert log_path.stat().st_size < 100_000


# --- item 7: /readyz during an outage ----------------------------------------------------


def test_readyz_answers_503_within_a_second_while_the_database_is_unreachable(
    postgres_url: str, tmp_path: Path
) -> None:
    with running_server(
        postgres_url, tmp_path, PARTNER_LEDGER_COMMIT_TIMEOUT_SECONDS="2"
    ) as server:
        with _database_refusing_connections(postgres_url):
            for _ in range(3):
                # Answered within 1 s (2.5 s allowed for a loaded machine), and not ready.
                answer = httpx.get(f"{server.url}/readyz", timeout=2.5)
                assert answer.status_code == 503
                assert answer.json() == {"status": "database unreachable"}
            # A delivery meanwhile gets the transient status, retriable.
            delivery = post(server, notification(new_org(), 1, 1))
            assert delivery.status_code == 429 and delivery.headers["Retry-After"].isdigit()
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.url}/readyz", timeout=2.5).status_code != 200:
            assert time.monotonic() < deadline, "not ready again after the outage"
            time.sleep(0.2)


# --- item 9: workers end with their supervisor -------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_exit_when_their_parent_is_killed(sqlite_url: str, tmp_path: Path) -> None:
    with running_server(sqlite_url, tmp_path, "--workers", "2") as server:
        deadline = time.monotonic() + 30
        while len(workers := _children(server.process.pid)) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        port = int(server.url.rsplit(":", 1)[1])
        server.process.kill()
        server.process.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "workers still running after their parent died"
            time.sleep(0.1)
        with socket.socket() as probe:  # nobody listens on the port any more
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            probe.bind(("127.0.0.1", port))
            probe.listen()


# --- item 10: the Link header and request framing ----------------------------------------


def test_the_expiring_link_header_is_relative_whatever_the_host_header(
    sqlite_url: str, tmp_path: Path
) -> None:
    with running_server(sqlite_url, tmp_path) as server:
        org = new_org()
        positions = [
            post(
                server, notification(org, c, 1, details={"membershipExpiryDate": f"2030-01-0{c}"})
            ).json()["position"]
            for c in (1, 2)
        ]
        answer = server.client.get(
            "/expiring",
            params={"org": org, "limit": 1, "min_position": max(positions)},
            headers={"Authorization": f"Bearer {READ_TOKEN}", "Host": "evil.example"},
        )
        assert answer.status_code == 200
        link = answer.headers["Link"]
        assert link.startswith("</expiring?") and link.endswith('>; rel="next"')
        assert "evil" not in link
        # The relative link, resolved against the service, gives the next page.
        following = server.client.get(
            link[1:].split(">", 1)[0], headers={"Authorization": f"Bearer {READ_TOKEN}"}
        )
        assert following.status_code == 200 and len(following.json()) == 1


def test_a_request_with_content_length_and_transfer_encoding_is_400_and_stores_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    with running_server(sqlite_url, tmp_path) as server:
        org = new_org()
        body = notification(org, 1, 1)
        chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        with closing(connect(server)) as sock:
            sock.sendall(
                b"POST /webhooks/capillary HTTP/1.1\r\nHost: x\r\nX-Webhook-Token: "
                + WEBHOOK_SECRET.encode()
                + f"\r\nContent-Length: {len(chunked)}\r\n".encode()
                + b"Transfer-Encoding: chunked\r\n\r\n"
                + chunked
            )
            received = b""
            while chunk := sock.recv(65536):
                received += chunk  # the server closes the connection after its answer
        assert received.startswith(b"HTTP/1.1 400 ")
        assert inbox_count(sqlite_url, org) == 0


# --- item 11: the transient status -------------------------------------------------------


@pytest.mark.parametrize(("flags", "status"), [((), 429), (("--transient-status", "503"), 503)])
def test_draining_answers_the_configured_transient_status_and_readyz_stays_503(
    db_url: str, tmp_path: Path, flags: tuple[str, ...], status: int
) -> None:
    with running_server(db_url, tmp_path, "--drain-seconds", "3", *flags) as server:
        if not flags:  # the default is documented in the OpenAPI document too
            responses = server.client.get("/openapi.json").json()["paths"]["/webhooks/capillary"][
                "post"
            ]["responses"]
            assert "Retry-After" in responses["429"]["headers"] and "503" not in responses
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        org = new_org()
        answer = post(server, notification(org, 1, 1))
        assert answer.status_code == status
        assert answer.headers["Retry-After"].isdigit()
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 503
        assert inbox_count(db_url, org) == 0


# --- item 12: the command line's doors ---------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (("--port", "99999"), ("--port",)),
        (("--port", "0"), ("--port",)),
        (("--workers", "0"), ("--workers",)),
        (("--workers", "-3"), ("--workers",)),
        (("--host", ""), ("--host",)),
        (("--host", "no such host.invalid"), ("--host",)),
        (("--max-body-bytes", "0"), ("max_body_bytes",)),
        (("--drain-seconds", "-1"), ("drain_seconds",)),
        (("--transient-status", "500"), ("transient_status", "429")),
        (("--webhook-header", "Bad Header"), ("webhook_header",)),
        (("--signing-secret", "whsec_not base64!"), ("signing secret",)),
    ],
)
def test_a_bad_serve_flag_is_one_sentence_and_exit_1(
    sqlite_url: str, flags: tuple[str, ...], words: tuple[str, ...]
) -> None:
    args = ("--port", str(free_port()), *flags) if "--port" not in flags else flags
    assert_one_sentence(run_serve(sqlite_url, *args), *words)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_address_in_use_is_one_sentence_and_exit_1(sqlite_url: str, workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_serve(sqlite_url, "--port", port, "--workers", workers)
    assert_one_sentence(result, "address already in use")
