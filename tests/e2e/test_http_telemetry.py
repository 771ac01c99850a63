"""Nothing leaves the service behind its settings: FastAPI's own OpenTelemetry, which an
operator's environment can switch on and point anywhere, is off.

A real ``serve`` process with the OpenTelemetry SDK and OTLP exporter installed (the dev extra)
and the environment FastAPI reads to export traces, metrics and logs, pointed at a collector on
loopback that counts what it receives.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# What an operator would install to export; imported so that this test cannot pass for the
# want of it (the dev extra installs both).
import opentelemetry.exporter.otlp.proto.http.trace_exporter
import opentelemetry.sdk.trace  # noqa: F401
import pytest

from domain.keys import MembershipKey
from tests.e2e.http_server import running_server
from tests.payloads import shape_a

KEY = MembershipKey(org_id=50191, customer_id=269313767, partner_program_id=25)
EXPORT_ENVIRONMENT = {
    "FASTAPI_OTEL_AUTO_CONFIGURE": "true",
    "OTEL_BSP_SCHEDULE_DELAY": "100",  # spans, metrics and logs sent within 0.2 s
    "OTEL_METRIC_EXPORT_INTERVAL": "200",
    "OTEL_BLRP_SCHEDULE_DELAY": "100",
}


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP endpoint that answers 200 and keeps the paths it was sent to."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.received: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_the_environment_cannot_make_the_service_export_telemetry(
    collector: Collector, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    environment = EXPORT_ENVIRONMENT | {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url}
    with running_server(db_url, tmp_path, **environment) as server:
        body = shape_a("partnerProgramLinked", 1700000000000, "e-1", key=KEY, details={})
        assert server.post(body).status_code == 200
        path = f"/memberships/{KEY.org_id}/{KEY.customer_id}/{KEY.partner_program_id}"
        assert server.get(path).status_code == 200
        assert server.get("/memberships/1/2/3").status_code == 404
        time.sleep(1.0)  # five export intervals
        log = server.log()
    assert collector.received == []
    assert "telemetry" not in log.lower(), log
