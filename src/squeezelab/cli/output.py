"""Printing and writing helpers shared by the subcommands."""

from __future__ import annotations

import json
import sys


def print_json(data) -> None:
    """One JSON document on stdout (what scripts parse), nothing else."""
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def say(text: str) -> None:
    """A progress line on stderr, flushed at once: it shows up in a piped log as it happens and
    leaves stdout to the result."""
    print(text, file=sys.stderr, flush=True)
