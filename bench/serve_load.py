"""The HTTP service under a bounded loopback load, against the same model called in-process.

Starts `squeezelab serve` on a free loopback port with a squeezenet1_1 exported to ONNX (or the
model file given), sends N requests at concurrency C with one in three a bad upload (empty, text,
truncated JPEG, 50-megapixel PNG), and prints requests/s, p50/p99 latency, the status codes, the
server's memory before and after, and the ratio of the service's good-image throughput to calling
the same predictor directly in this process (the cost of HTTP, multipart parsing and the queue).

    python bench/serve_load.py                      # 500 requests at concurrency 16
    python bench/serve_load.py --requests 2000 --concurrency 32
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

import squeezelab
from squeezelab.export.onnx import export_onnx
from squeezelab.serve.images import ServeLimits, decode_image
from squeezelab.serve.loadtest import Upload, load_test, process_cpu_seconds, server_rss_bytes, spawn_server
from squeezelab.serve.predictor import open_predictor


def uploads() -> list[Upload]:
    rng = np.random.default_rng(0)
    good = []
    for i in range(10):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (240 + 20 * i, 320 + 20 * i, 3), dtype=np.uint8)).save(buffer, "JPEG")
        good.append(Upload(f"photo{i}.jpg", buffer.getvalue(), "image/jpeg", True))
    huge = io.BytesIO()
    Image.new("1", (10000, 5000)).save(huge, "PNG")
    bad = [Upload("empty.jpg", b"", "image/jpeg", False), Upload("notes.txt", b"text\n" * 50, "text/plain", False),
           Upload("cut.jpg", good[0].data[: len(good[0].data) // 2], "image/jpeg", False),
           Upload("huge.png", huge.getvalue(), "image/png", False), Upload("fake.jpg", b"x" * 500, "image/jpeg", False)]
    return good[:5] + bad[:3] + good[5:] + bad[3:]


def direct_rate(model_file: Path, good: list[Upload], seconds: float = 5.0) -> float:
    """Good images per second through decode + predict in this process, no HTTP."""
    predictor = open_predictor(model_file)
    limits = ServeLimits()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        upload = good[count % len(good)]
        predictor.top_k([decode_image(upload.data, limits, predictor.preprocessing.resize)])
        count += 1
    return count / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", help="a .onnx/.pt/.sqz file (default: squeezenet1_1 exported to ONNX)")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(args.model) if args.model else Path(tmp) / "squeezenet1_1.onnx"
        if not args.model:
            export_onnx(squeezelab.create_model("squeezenet1_1"), model_file, dynamic_batch=True)
        mixed = uploads()
        direct = direct_rate(model_file, [u for u in mixed if u.good])
        with spawn_server(model_file) as (url, process):
            load_test(url, mixed, total=50, concurrency=4)  # warm-up
            before, server_cpu = server_rss_bytes(process.pid), process_cpu_seconds(process.pid)
            result = load_test(url, mixed, total=args.requests, concurrency=args.concurrency)
            after, server_cpu = server_rss_bytes(process.pid), process_cpu_seconds(process.pid) - server_cpu
            health = httpx.get(f"{url}/health", timeout=10).json()
    summary = result.summary()
    good_share = sum(u.good for u in mixed) / len(mixed)
    served_rate = summary["requests_per_s"] * good_share
    print(f"{args.requests} requests at concurrency {args.concurrency} ({1 - good_share:.0%} bad uploads): "
          f"{summary['requests_per_s']} requests/s, p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms")
    print(f"status codes: {summary['statuses']}; unexpected answers: {summary['unexpected']}; "
          f"5xx: {sum(v for k, v in summary['statuses'].items() if k >= 500 or k == 0)}")
    print(f"server memory {before / 2**20:.0f} MiB -> {after / 2**20:.0f} MiB; health after: {health['status']}")
    print(f"CPU seconds during the load: server {server_cpu:.1f}, load generator {result.client_cpu_seconds:.1f}, "
          f"wall {result.seconds:.1f} x {os.cpu_count()} cores")
    print(f"good images/s: service {served_rate:.1f} vs in-process {direct:.1f} "
          f"({served_rate / direct:.2f}x of in-process; the rest of its time goes to the bad uploads and HTTP)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
