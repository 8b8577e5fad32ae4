"""A real server on loopback under a bounded load with bad uploads mixed in."""

import httpx
import pytest
from serve_helpers import bad_uploads, jpeg_bytes

from squeezelab.serve.loadtest import Upload, load_test, server_rss_bytes, spawn_server

MEMORY_GROWTH_BOUND = 96 * 2**20


def mixed_uploads() -> list[Upload]:
    good = [Upload(f"good{i}.jpg", jpeg_bytes(size=(64 + 40 * i, 48 + 30 * i), seed=i), "image/jpeg", True)
            for i in range(10)]
    bad = [Upload(name, data, kind, False) for name, data, kind in bad_uploads().values()]
    return good[:5] + bad[:3] + good[5:] + bad[3:]  # one request in three is bad


def run_load(model_file, total, concurrency):
    uploads = mixed_uploads()
    with spawn_server(model_file, "--threads", "1") as (url, process):
        load_test(url, uploads, total=50, concurrency=4)  # warm-up: allocator pools, ORT arenas
        before = server_rss_bytes(process.pid)
        result = load_test(url, uploads, total=total, concurrency=concurrency)
        after = server_rss_bytes(process.pid)
        health = httpx.get(f"{url}/health", timeout=10).json()
        good = httpx.post(f"{url}/predict", files={"file": ("a.jpg", jpeg_bytes(), "image/jpeg")}, timeout=10)
    print(f"\nload {total} requests at concurrency {concurrency}: {result.summary()}; "
          f"server RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB")
    assert result.requests == total
    assert not [s for s in result.statuses if s >= 500 or s == 0], result.statuses
    assert result.unexpected == []
    assert after - before < MEMORY_GROWTH_BOUND
    assert health["status"] == "ok" and health["in_flight"] == 0
    assert good.status_code == 200
    return result


def test_500_requests_at_concurrency_16_with_bad_uploads(onnx_file):
    result = run_load(onnx_file, 500, 16)
    assert result.statuses.get(200, 0) >= 300


@pytest.mark.slow
def test_2000_requests_at_concurrency_32_with_bad_uploads(onnx_file):
    run_load(onnx_file, 2000, 32)


@pytest.mark.slow
def test_2000_requests_against_a_pytorch_checkpoint(checkpoint_file):
    run_load(checkpoint_file, 2000, 32)
