"""A bounded loopback load test for the service, and a way to start one in a subprocess.

`load_test` sends a fixed number of requests at a fixed concurrency (so it always stops by itself),
mixing good images with bad uploads, and reports requests/s, latency percentiles and the count of
each status code; `server_rss_bytes` reads the server's resident memory from /proc so a caller
can bound its growth.
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
                "unexpected": len(self.unexpected)}


async def _load(url: str, uploads: Sequence[Upload], total: int, concurrency: int, timeout: float) -> LoadResult:
    import httpx

    statuses: Counter = Counter()
    unexpected: list[str] = []
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker(client):
        for i in counter:
            upload = uploads[i % len(uploads)]
            t0 = time.perf_counter()
            try:
                response = await client.post(f"{url}/predict", files={"file": (upload.name, upload.data, upload.content_type)})
                status = response.status_code
            except httpx.HTTPError as exc:
                status = 0
                unexpected.append(f"{upload.name}: {type(exc).__name__}")
            latencies.append((time.perf_counter() - t0) * 1e3)
            statuses[status] += 1
            if status and (status != 200 if upload.good else not 400 <= status < 500):
                unexpected.append(f"{upload.name}: HTTP {status}")

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    return LoadResult(total, seconds, dict(statuses), unexpected, latencies)


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
