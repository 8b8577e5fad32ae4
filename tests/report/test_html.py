"""The HTML report: self-contained, and rendered by a real browser with its figures visible."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from squeezelab.analysis.summary import summarize_run
from squeezelab.errors import SqueezelabError
from squeezelab.report.design_plots import plot_bypass, plot_sweep
from squeezelab.report.html import build_report

TAB_BLUE = np.array([31, 119, 180])  # matplotlib's first colour: only the figures draw in it


def _run_dir(tmp_path):
    """A run folder like the trainer's, plus explore plots and a benchmark table beside it."""
    rows = [{"size_bytes": s * 1e6, "accuracy_mean": a, "accuracy_min": a - 0.01, "accuracy_max": a + 0.01,
             "squeeze_ratio": r, "bypass": b, "seeds": 2}
            for s, a, r, b in [(1, 0.8, 0.125, "none"), (2, 0.85, 0.25, "simple"), (4, 0.9, 0.5, "complex")]]
    plot_sweep(rows, "sr", tmp_path / "curves.png")
    plot_bypass(rows, "bypass", tmp_path / "explore_bypass.png")
    (tmp_path / "result.json").write_text(json.dumps({"best_val_acc": 0.9, "epochs": 2}))
    (tmp_path / "config.json").write_text(json.dumps({
        "model": {"name": "squeezenet1_1", "options": {"num_classes": 10, "stem": "small"}},
        "data": {"spec": "digits", "image_size": 32}}))
    (tmp_path / "metrics.csv").write_text("epoch,train_loss,val_acc\n1,2.1,0.5\n2,1.2,0.9\n")
    (tmp_path / "bench.json").write_text(json.dumps([{"model": "squeezenet1_1", "backend": "eager", "ms_median": 9.5}]))
    return tmp_path


def test_report_holds_every_section_and_inlines_its_images(tmp_path):
    page = build_report(_run_dir(tmp_path), summary=summarize_run(tmp_path))
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    assert [name for name, _ in images] == ["curves.png", "explore_bypass.png"]  # curves first
    assert base64.b64decode(images[0][1]) == (tmp_path / "curves.png").read_bytes()
    for text in ("Metrics per epoch", "Model summary (paper Table 1)", "fire9", "Bench (bench.json)", "9.5"):
        assert text in page
    assert not re.search(r'(src|href)="(http|//|file:)', page)  # nothing outside the page


def test_report_of_a_folder_without_outputs_is_a_clear_error(tmp_path):
    with pytest.raises(SqueezelabError, match="no run outputs"):
        build_report(tmp_path)
    with pytest.raises(SqueezelabError, match="not a folder"):
        build_report(tmp_path / "missing")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium_with_its_figures(tmp_path, cli):
    run_dir = _run_dir(tmp_path / "run")
    report = tmp_path / "report.html"
    done = cli("report", str(run_dir), "-o", str(report))
    assert done.returncode == 0, done.stderr
    shot = tmp_path / "shot.png"
    browser = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         f"--screenshot={shot}", "--window-size=1200,1400", report.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert browser.returncode == 0, browser.stderr[-2000:]
    assert not re.search(r"CONSOLE|Uncaught|Failed to load resource", browser.stderr), browser.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    blue = (np.abs(pixels - TAB_BLUE).sum(axis=2) < 30).sum()
    assert blue > 2000, f"only {blue} figure-blue pixels: the figures did not render"


def test_report_shows_a_table_written_as_both_csv_and_json_once(tmp_path):
    per_class = [{"class": "cat", "accuracy": 1.0, "precision": 0.75, "recall": 1.0, "support": 36},
                 {"class": "dog", "accuracy": 0.9722222222222222, "precision": 1.0, "recall": 0.9722222222222222,
                  "support": 36}]
    (tmp_path / "per_class.csv").write_text("class,accuracy,precision,recall,support\n" + "".join(
        ",".join(str(r[k]) for k in r) + "\n" for r in per_class))
    (tmp_path / "eval.json").write_text(json.dumps({"top1": 0.98, "count": 72, "per_class": per_class}))
    page = build_report(tmp_path)
    assert page.count("<th>precision</th>") == 1
    assert "0.9722" in page and "<td>72</td>" in page  # the table, and eval.json's scalars still shown
    compare = tmp_path / "compare"
    compare.mkdir()
    (compare / "compare.csv").write_text("model,params\nsqueezenet1_1,1235496\n")
    (compare / "compare.json").write_text(json.dumps({"rows": [{"model": "squeezenet1_1", "params": 1235496,
                                                                "run_dir": "runs/x"}]}))
    assert build_report(compare).count("<td>squeezenet1_1</td>") == 1
