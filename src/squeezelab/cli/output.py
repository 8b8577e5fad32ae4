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


AMP_CHOICES = ("auto", "off", "bf16")
AMP_HELP = ("training precision; auto: bf16 autocast on CUDA and on CPUs with AMX-BF16 (about 2x fp32 there), fp32 "
            "elsewhere; weights, batch-norm statistics, the loss and every reported accuracy stay fp32")
