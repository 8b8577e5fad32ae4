"""`squeezelab bench` rows for the phone runtimes: timed through the same export and load functions
users run, and a runtime that is missing or fails turns into its own rows' error only."""

import pytest

from squeezelab.export import benchmark
from squeezelab.export.benchmark import benchmark_model

from test_sidecar import small_model


def test_a_failing_runtime_leaves_the_other_rows(monkeypatch):
    def broken(*args, **kwargs):
        raise ImportError("no ExecuTorch here")

    monkeypatch.setattr(benchmark, "_mobile_models", broken)
    rows = benchmark_model(small_model(), batches=[1], backends=["eager", "executorch_fp32", "litert_int8"],
                           min_seconds=0.01)
    by_backend = {r["backend"]: r for r in rows}
    assert "ms_median" in by_backend["eager"]
    assert by_backend["executorch_fp32"]["error"] == by_backend["litert_int8"]["error"] == "ImportError: no ExecuTorch here"


@pytest.mark.slow  # two conversions: about 15 s of CPU
def test_phone_runtimes_are_timed_beside_eager():
    pytest.importorskip("executorch.runtime", reason="ExecuTorch is not installed: pip install -e '.[mobile]'")
    pytest.importorskip("litert_torch", reason="litert-torch is not installed: pip install -e '.[mobile]'")
    rows = benchmark_model(small_model(), batches=[1, 2], backends=["eager", "executorch_fp32", "litert_fp32"],
                           min_seconds=0.05)
    timed = {(r["backend"], r["batch"]): r for r in rows}
    assert set(timed) == {(b, n) for b in ("eager", "executorch_fp32", "litert_fp32") for n in (1, 2)}
    for backend in ("executorch_fp32", "litert_fp32"):
        assert timed[(backend, 1)]["ms_median"] > 0 and timed[(backend, 1)]["size_bytes"] > 100_000
        assert timed[(backend, 1)]["ratio_vs_eager"] > 0
