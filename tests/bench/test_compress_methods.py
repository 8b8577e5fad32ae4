"""bench/compress_methods.py compares the two methods on settings the command line accepts."""

from __future__ import annotations

from helpers import load_bench

from squeezelab.compress.config import METHODS, CalibConfig, CompressConfig


def test_every_setting_and_target_is_a_valid_config_for_both_methods():
    bench = load_bench("compress_methods")
    assert set(bench.METHODS) == set(METHODS)
    for method in bench.METHODS:
        for options in bench.TRAINED_SETTINGS.values():
            assert CompressConfig(**options, method=method).method == method
        for target in bench.TARGETS:
            assert CalibConfig(target_bytes=target, method=method).target_bytes == target
    assert bench.TARGETS == (450_000, 400_000)
