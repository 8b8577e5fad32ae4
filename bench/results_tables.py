"""Rebuild the tables of docs/results.md from the result files under docs/results/ (no training,
no data needed): one command, whatever has finished so far.

Each folder there holds one file per finished training or compression (`points/*.json`, written
by `squeezelab explore`, `squeezelab compare`, bench/cifar10.py --out and bench/cifar10_compress.py)
and what they share (`recipe.json`). A (point, seed) that has not finished yet is simply absent: a row shows the seeds
it has.

    python bench/results_tables.py [--root docs/results]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from squeezelab.analysis.store import accuracy_stats

PAPER_BASE = {"base_e": 128, "incr_e": 128, "freq": 2, "pct3x3": 0.5, "squeeze_ratio": 0.125}


def _records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "points").glob("*.json"))]


def _by(records: list[dict], key) -> dict:
    groups = defaultdict(list)
    for record in records:
        groups[key(record)].append(record)
    return groups


def _accuracy(records: list[dict]) -> str:
    stats = accuracy_stats(records)
    spread = f" +- {100 * stats['accuracy_std']:.2f}" if stats["seeds"] > 1 else ""
    return f"{100 * stats['accuracy_mean']:.2f}{spread} | {stats['seeds']}"


def _minutes(records: list[dict]) -> str:
    return f"{sum(r['seconds'] for r in records) / 60 / len(records):.1f}"


def sweep_table(records: list[dict], field: str, label: str) -> str:
    """Rows of one Figure 3 sweep: the points whose other metaparameters are SqueezeNet 1.0's."""
    others = {k: v for k, v in PAPER_BASE.items() if k != field}
    chosen = [r for r in records if r["point"]["bypass"] == "none"
              and all(r["point"][k] == v for k, v in others.items())]
    lines = [f"| {label} | params | fp32 MB | MMACs | test top-1 % (mean +- std) | seeds | minutes a run |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for value, group in sorted(_by(chosen, lambda r: r["point"][field]).items()):
        r = group[0]
        lines.append(f"| {value:g} | {r['params']:,} | {r['size_bytes'] / 1e6:.2f} | {r['macs'] / 1e6:.1f} | "
                     f"{_accuracy(group)} | {_minutes(group)} |")
    return "\n".join(lines)


def bypass_table(records: list[dict]) -> str:
    lines = ["| bypass | params | fp32 MB | MMACs | test top-1 % (mean +- std) | seeds | minutes a run |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    groups = _by(records, lambda r: r["point"]["bypass"])
    for kind in ("none", "simple", "complex"):
        if kind in groups:
            r = groups[kind][0]
            lines.append(f"| {kind} | {r['params']:,} | {r['size_bytes'] / 1e6:.2f} | {r['macs'] / 1e6:.1f} | "
                         f"{_accuracy(groups[kind])} | {_minutes(groups[kind])} |")
    return "\n".join(lines)


def peers_table(folder: Path, records: list[dict]) -> str:
    from squeezelab.analysis.compare import stem_of
    from squeezelab.analysis.summary import summarize
    from squeezelab.models import create_model

    measured = {}
    if (folder / "compare.json").is_file():
        measured = {r["model"]: r for r in json.loads((folder / "compare.json").read_text())["rows"]}
    lines = ["| model | stem | params | fp32 MB | MMACs | test top-1 % (mean +- std) | seeds | minutes a run "
             "| eager ms (1 thread) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, group in _by(records, lambda r: r["model"]).items():
        options = group[0]["model_options"]
        size = summarize(create_model(name, **options).eval(), group[0]["image_size"])
        latency = measured.get(name, {}).get("latency_ms")
        lines.append(f"| {name} | {stem_of(name, options)} | {size.total_params:,} | {size.total_bytes / 1e6:.2f} | "
                     f"{size.total_macs / 1e6:.1f} | {_accuracy(group)} | {_minutes(group)} | "
                     f"{'-' if latency is None else f'{latency:.2f}'} |")
    return "\n".join(lines)


def compression_table(rows: list[dict]) -> str:
    """The paper's Table 2 columns, one row per compression setting (bench/cifar10_compress.py)."""
    lines = ["| setting | fp32 bytes | .sqz bytes | ratio | test top-1 before | after (decoded .sqz) | points lost |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['setting']} | {r['fp32_bytes']:,} | {r['sqz_bytes']:,} | {r['ratio']:.1f}x | "
              f"{100 * r['top1_before']:.2f}% | {100 * r['top1_after']:.2f}% | {r['points_lost']:.2f} |" for r in rows]
    return "\n".join(lines)


def full_set_table(records: list[dict]) -> str:
    """Runs of bench/cifar10.py on all 50,000 training images: one row per model, over its seeds."""
    from squeezelab.analysis.compare import stem_of

    lines = ["| model | stem | params | MMACs | epochs | test top-1 % (mean +- std) | seeds | with flip TTA % "
             "| minutes a run |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (name, options), group in _by(records, lambda r: (r["model"], json.dumps(r["model_options"]))).items():
        r, tta = group[0], [100 * g["test_acc_tta"] for g in group]
        lines.append(f"| {name} | {stem_of(name, json.loads(options))} | {r['params']:,} | {r['macs'] / 1e6:.1f} | "
                     f"{r['epochs']} | {_accuracy(group)} | {sum(tta) / len(tta):.2f} | "
                     f"{sum(g['minutes'] for g in group) / len(group):.1f} |")
    return "\n".join(lines)


TITLES = {"peers": "SqueezeNet and its peers", "bypass": "Bypass (Table 3)",
          "deep-compression": "Deep Compression (Table 2)",
          "deep-compression-full": "Deep Compression, fine-tuned on all 50,000 training images",
          "alexnet-own-rate": "AlexNet with He initialisation at a tenth of the rate",
          "squeezenet-cifar-bypass": "squeezenet_cifar with simple bypass",
          "full-set": "SqueezeNet and the best peer on all 50,000 training images"}


def tables(folder: Path) -> list[tuple[str, str]]:
    """(title, table) for one result folder, by what its points hold: a compression `setting`, an
    explore `point` (a Figure 3 sweep or a bypass comparison) or a compare `model`."""
    records = _records(folder)
    if not records:
        return []
    title = TITLES.get(folder.name, folder.name)
    if "setting" in records[0]:
        return [(title, compression_table(records))]
    if "test_acc" in records[0]:
        return [(title, full_set_table(records))]
    if "point" not in records[0]:
        return [(title, peers_table(folder, records))]
    if folder.name == "design-space":
        return [("Squeeze ratio (Figure 3a)", sweep_table(records, "squeeze_ratio", "SR")),
                ("Share of 3x3 filters (Figure 3b)", sweep_table(records, "pct3x3", "pct3x3"))]
    return [(title, bypass_table(records))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1] / "docs" / "results"))
    root = Path(parser.parse_args().root)
    # the page's order, then any other folder
    order = ("peers", "full-set", "design-space", "bypass", "deep-compression", "deep-compression-full")
    folders = [path for path in root.iterdir() if (path / "points").is_dir()]
    for folder in sorted(folders, key=lambda path: (order.index(path.name) if path.name in order else len(order),
                                                    path.name)):
        for title, table in tables(folder):
            print(f"### {title}\n\n{table}\n")
            recipe = folder / "recipe.json"
            if recipe.is_file():
                print(f"recipe: `{json.dumps(json.loads(recipe.read_text()))}`\n")


if __name__ == "__main__":
    main()
