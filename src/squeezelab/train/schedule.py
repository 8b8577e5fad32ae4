"""Learning-rate schedules as pure functions of the step."""

from __future__ import annotations

import math


def lr_factor(step: int, total_steps: int, warmup_steps: int, kind: str = "cosine") -> float:
    """Multiplier of the base LR at `step`: linear warm-up from ~0, then cosine or linear decay
    to 0 (or constant). Warm-up keeps the first large steps from killing ReLUs in a fresh network.

    >>> lr_factor(0, 100, 10) < lr_factor(9, 100, 10) == 1.0
    True
    >>> round(lr_factor(100, 100, 10), 6), lr_factor(55, 100, 10, "linear")
    (0.0, 0.5)
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if kind == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
