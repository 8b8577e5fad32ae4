import time

from squeezelab.utils.timing import Column, format_speed_table, format_table, time_call


def test_time_call_measures_the_call():
    timing = time_call(lambda: time.sleep(0.002), warmup=1, min_runs=5, min_seconds=0)
    assert timing.runs == 5 and 1.5 < timing.ms_median < 50 and timing.ms_p90 >= timing.ms_median


def test_format_table_aligns_and_marks_missing_values():
    text = format_table([{"name": "a", "ms": 1.234}, {"name": "bb"}], [Column("name", "name", width=5),
                                                                        Column("ms", "ms", "{:.1f}", 6)])
    assert text.splitlines() == ["name     ms", "a       1.2", "bb        -"]


def test_speed_table_shows_ratio_and_mib():
    text = format_speed_table([{"model": "m", "backend": "eager", "batch": 1, "ms_median": 10.0, "ms_p90": 11.0,
                                "images_per_s": 100.0, "ratio_vs_eager": 1.0, "size_bytes": 2 * 2**20}])
    assert "1.00x" in text and "2.00" in text and "vs eager" in text
