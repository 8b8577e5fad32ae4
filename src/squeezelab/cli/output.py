"""Printing helpers shared by the subcommands."""

from __future__ import annotations

import json
import sys


def print_json(data) -> None:
    """One JSON document on stdout (what scripts parse), nothing else."""
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
