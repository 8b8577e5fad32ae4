"""A bounded loopback load test for the service, and a way to start one in a subprocess.

`load_test` sends a fixed number of requests at a fixed concurrency (so it always stops by itself),
mixing good images with bad uploads, and reports requests/s, latency percentiles and the count of
each status code, and the CPU time the generator itself used; `server_rss_bytes` and
`process_cpu_seconds` read the server's resident memory and CPU time from /proc, so a caller can
bound its growth and see where the cores went.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Iterator, Sequence


@dataclasses.dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    content_type: str
    good: bool  # a good upload expects 200; a bad one expects a 4xx


@dataclasses.dataclass
class LoadResult:
    requests: int
    seconds: float
    statuses: dict[int, int]
    unexpected: list[str]  # good uploads that did not get 200, bad ones that did not get 4xx
    latencies_ms: list[float]
    client_cpu_seconds: float = 0.0  # what the load generator itself spent (it shares the cores)

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]

    def summary(self) -> dict:
        return {"requests": self.requests, "seconds": round(self.seconds, 2),
                "requests_per_s": round(self.requests_per_s, 1), "p50_ms": round(self.percentile(50), 1),
                "p99_ms": round(self.percentile(99), 1), "statuses": dict(sorted(self.statuses.items())),
                "unexpected": len(self.unexpected), "client_cpu_seconds": round(self.client_cpu_seconds, 2)}


BOUNDARY = "squeezelab-load-test-boundary"


def request_bytes(upload: Upload, host: str, path: str = "/predict") -> bytes:
    """The whole HTTP/1.1 request that posts `upload` as multipart field `file`, built once."""
    body = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{upload.name}"\r\n'
            f"Content-Type: {upload.content_type}\r\n\r\n").encode() + upload.data + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


class BadResponse(Exception):
    """A response this client cannot delimit (no Content-Length) or that was cut off."""


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bool]:
    """Send one request and read its response: (status, whether the connection must be closed).
    Only Content-Length bodies are read (what the service sends); anything else is a BadResponse,
    never a status, so a reply this client misreads cannot pass for an answer."""
    writer.write(request)
    try:
        await writer.drain()
    except ConnectionError:  # a server may answer (413) and close before reading the whole body
        pass
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection without answering")
    version, status = status_line.split()[:2]
    length, close = None, version != b"HTTP/1.1"
    while True:
        line = await reader.readline()
        if line == b"\r\n":
            break
        if not line:
            raise BadResponse("the response ended inside its headers")
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection":
            close = close or value.strip().lower() == "close"
    if length is None:
        raise BadResponse("a response without Content-Length")
    await reader.readexactly(length)
    return int(status), close


async def _load(url: str, uploads: Sequence[Upload], total: int, concurrency: int, timeout: float) -> LoadResult:
    """Plain asyncio streams with each request built once, so the load generator itself costs little
    CPU: on a 2-core machine it shares the cores with the server it measures (an HTTP client library
    such as httpx spends milliseconds of CPU a request, a good part of what the server spends)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"the load test speaks plain HTTP; got {url}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [request_bytes(u, parts.netloc, parts.path.rstrip("/") + "/predict") for u in uploads]
    statuses: Counter = Counter()
    unexpected: list[str] = []
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker():
        connection = None
        for i in counter:
            upload = uploads[i % len(uploads)]
            t0 = time.perf_counter()
            try:
                connection = connection or await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
                status, close = await asyncio.wait_for(_exchange(*connection, requests[i % len(uploads)]), timeout)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, BadResponse, ValueError) as exc:
                status, close = 0, True
                unexpected.append(f"{upload.name}: {type(exc).__name__}")
            latencies.append((time.perf_counter() - t0) * 1e3)
            statuses[status] += 1
            if status and (status != 200 if upload.good else not 400 <= status < 500):
                unexpected.append(f"{upload.name}: HTTP {status}")
            if close and connection is not None:
                connection[1].close()
                connection = None
        if connection is not None:
            connection[1].close()

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(total, time.perf_counter() - start, dict(statuses), unexpected, latencies,
                      time.process_time() - cpu)


def load_test(url: str, uploads: Sequence[Upload], *, total: int = 500, concurrency: int = 16,
              timeout: float = 60.0) -> LoadResult:
    """Send `total` uploads (cycling through `uploads`) with `concurrency` clients; wait for all."""
    return asyncio.run(_load(url.rstrip("/"), uploads, total, concurrency, timeout))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc (0 where there is none)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def spawn_server(model_path: str | os.PathLike, *args: str, port: int | None = None,
                 startup_timeout: float = 120.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run `squeezelab serve MODEL` in a subprocess on a free loopback port; yield (url, process)."""
    import httpx

    port = port or free_port()
    log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty server never blocks on it
    process = subprocess.Popen([sys.executable, "-m", "squeezelab", "serve", str(model_path), "--port", str(port), *args],
                               stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + startup_timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited with {process.returncode}: {log.read()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("server did not become healthy in time")
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
