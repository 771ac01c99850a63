"""Load generator for the webhook benchmark: keep-alive POSTs from concurrent clients.

    python scripts/bench_load.py --url URL --file PAYLOADS.jsonl [--concurrency 64]
        [--requests 50000] [--seconds 120] [--header NAME:VALUE ...] [--json OUT]

Run as a process of its own, beside the server under test. It sends the lines of the file in
order (cycling when there are fewer lines than requests), each as the body of one POST, from
``--concurrency`` clients, each on its own keep-alive HTTP/1.1 connection (opened one by one
before the clock starts, so that several server workers share them; reopened after an error
or ``Connection: close``). Each client sends its next request as soon as its previous one is
answered. It stops after ``--requests`` requests or ``--seconds`` seconds, whichever comes
first (requests in flight then are awaited and counted).

The clients are asyncio streams speaking HTTP/1.1 directly, not ``httpx.AsyncClient``: on the
2-vCPU development machine httpx spent 2.5 ms (one connection) to 6.6 ms (64) of CPU per
request against a trivial endpoint, which would have made the generator the bottleneck; these
clients spend about 0.2 ms.

What it measures, written as JSON (and printed when ``--json`` is not given): requests sent,
acknowledged (2xx), counts by status (``error:<Type>`` for transport failures and timeouts),
wall seconds, acknowledged requests/s, p50/p99 latency in ms of acknowledged requests (first
byte sent to last byte of the answer read), and its own CPU time: ``cpu_share`` is CPU seconds
over wall seconds; near 1.0 the generator (one event loop, one core) would be the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ERRORS = (OSError, EOFError, TimeoutError, ValueError, asyncio.LimitOverrunError)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://HOST:PORT/PATH to POST to")
    parser.add_argument("--file", type=Path, required=True, help="JSON Lines: one body a line")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--json", type=Path, metavar="OUT")
    args = parser.parse_args()
    bodies = [line for line in args.file.read_bytes().splitlines() if line.strip()]
    if not bodies:
        print(f"{args.file}: no payloads", file=sys.stderr)
        return 1
    headers = dict(h.partition(":")[::2] for h in args.header)
    result = asyncio.run(run(args.url, bodies, headers, args))
    text = json.dumps(result, indent=2) + "\n"
    if args.json:
        args.json.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


class Connection:
    """One keep-alive HTTP/1.1 connection: POST a body, read the whole answer, its status."""

    def __init__(self, host: str, port: int, prefix: bytes) -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def open(self) -> None:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None

    async def post(self, body: bytes) -> int:
        await self.open()
        assert self.streams is not None
        reader, writer = self.streams
        writer.write(b"%sContent-Length: %d\r\n\r\n%s" % (self.prefix, len(body), body))
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip().lower()
        if "content-length" in fields:
            await reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding") == "chunked":
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            await reader.readuntil(b"\r\n")  # no trailers are sent by uvicorn
        else:
            await reader.read()  # the body runs to the end of the connection
            self.close()
        if fields.get("connection") == "close":
            self.close()
        return status


async def run(
    url: str, bodies: list[bytes], headers: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    target = urlsplit(url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    extra = "".join(f"{name.strip()}: {value.strip()}\r\n" for name, value in headers.items())
    prefix = (
        f"POST {target.path or '/'} HTTP/1.1\r\nHost: {target.netloc}\r\n"
        f"Content-Type: application/json\r\n{extra}"
    ).encode("latin-1")
    connections = [Connection(host, port, prefix) for _ in range(args.concurrency)]
    for connection in connections:  # connecting is not the figure; one by one, so that with
        await connection.open()  # several server workers each gets its share of connections
        await asyncio.sleep(0.002)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []  # of acknowledged requests only
    sent = 0
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    deadline = started + args.seconds

    async def client(connection: Connection) -> None:
        nonlocal sent
        while sent < args.requests and time.perf_counter() < deadline:
            body = bodies[sent % len(bodies)]
            sent += 1  # one event loop: nothing runs between the check and this
            begun = time.perf_counter()
            try:
                async with asyncio.timeout(args.timeout):
                    status = await connection.post(body)
            except ERRORS as error:
                statuses[f"error:{type(error).__name__}"] += 1
                connection.close()
                continue
            elapsed = time.perf_counter() - begun
            statuses[str(status)] += 1
            if 200 <= status < 300:
                latencies.append(elapsed)

    await asyncio.gather(*(client(c) for c in connections))
    wall = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    for connection in connections:
        connection.close()
    p50, p99 = _percentiles(latencies)
    return {
        "url": url,
        "concurrency": args.concurrency,
        "requests": sent,
        "acknowledged": len(latencies),
        "statuses": dict(sorted(statuses.items())),
        "seconds": round(wall, 3),
        "throughput": round(len(latencies) / wall, 3),
        "p50_ms": None if p50 is None else round(p50 * 1e3, 3),
        "p99_ms": None if p99 is None else round(p99 * 1e3, 3),
        "cpu_seconds": round(cpu, 3),
        "cpu_share": round(cpu / wall, 3),
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentiles(values: list[float]) -> tuple[float | None, float | None]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (None, None)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


if __name__ == "__main__":
    raise SystemExit(main())
