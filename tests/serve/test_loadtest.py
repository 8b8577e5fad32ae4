"""The load generator itself: every request answered or counted as failed, connections the server
closes are reopened, and each request is sent whole."""

from __future__ import annotations

import asyncio
import threading

from squeezelab.serve.loadtest import BOUNDARY, Upload, load_test, request_bytes


def _serve_in_thread(handler) -> tuple[str, callable]:
    """A raw asyncio server on a free loopback port in a thread: (url, stop)."""
    ready, holder = threading.Event(), {}

    def run():
        loop = asyncio.new_event_loop()
        holder["loop"] = loop
        server = loop.run_until_complete(asyncio.start_server(handler, "127.0.0.1", 0))
        holder["port"] = server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    return f"http://127.0.0.1:{holder['port']}", lambda: holder["loop"].call_soon_threadsafe(holder["loop"].stop)


async def _read_request(reader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return head + await reader.readexactly(length)


def test_a_server_that_closes_every_connection_gets_every_request_on_a_new_one():
    seen, connections = [], []

    async def handler(reader, writer):
        connections.append(1)
        seen.append(await _read_request(reader))
        status = b"200 OK" if b"good" in seen[-1] else b"400 Bad Request"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()

    url, stop = _serve_in_thread(handler)
    try:
        uploads = [Upload("good.jpg", b"\xff\xd8 image bytes", "image/jpeg", True), Upload("bad.txt", b"x", "text/plain", False)]
        result = load_test(url, uploads, total=20, concurrency=3, timeout=10)
    finally:
        stop()
    assert result.statuses == {200: 10, 400: 10} and result.unexpected == []
    assert len(connections) == 20 and len(result.latencies_ms) == 20
    assert all(request.endswith(f"\r\n--{BOUNDARY}--\r\n".encode()) for request in seen)


def test_a_server_that_hangs_up_without_answering_counts_as_failed_not_as_an_answer():
    async def handler(reader, writer):
        await _read_request(reader)
        writer.close()

    url, stop = _serve_in_thread(handler)
    try:
        result = load_test(url, [Upload("good.jpg", b"data", "image/jpeg", True)], total=4, concurrency=2, timeout=10)
    finally:
        stop()
    assert result.statuses == {0: 4} and len(result.unexpected) == 4


def test_the_request_is_a_multipart_post_of_the_file_field():
    request = request_bytes(Upload("a b.jpg", b"\x00\x01", "image/jpeg", True), "127.0.0.1:9")
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:9\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert b'name="file"; filename="a b.jpg"' in body and b"\x00\x01" in body


def test_connections_are_kept_alive_and_a_response_without_length_is_a_failure_not_an_answer():
    connections, answered = [], []

    async def handler(reader, writer):
        connections.append(1)
        while True:
            try:
                request = await _read_request(reader)
            except asyncio.IncompleteReadError:
                break
            answered.append(1)
            if b"chunked" in request:
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
        writer.close()

    url, stop = _serve_in_thread(handler)
    try:
        kept = load_test(url, [Upload("good.jpg", b"data", "image/jpeg", True)], total=30, concurrency=3, timeout=10)
        chunked = load_test(url, [Upload("chunked.jpg", b"data", "image/jpeg", True)], total=2, concurrency=1, timeout=10)
    finally:
        stop()
    assert kept.statuses == {200: 30} and len(connections) == 3 + 2  # one each for the first run's 3 workers
    assert chunked.statuses == {0: 2} and all("BadResponse" in u for u in chunked.unexpected)


def test_a_server_that_never_answers_times_out():
    async def handler(reader, writer):
        await asyncio.sleep(30)

    url, stop = _serve_in_thread(handler)
    try:
        result = load_test(url, [Upload("good.jpg", b"data", "image/jpeg", True)], total=2, concurrency=2, timeout=0.5)
    finally:
        stop()
    assert result.statuses == {0: 2} and all("TimeoutError" in u for u in result.unexpected)
