"""A seeded, stratified train/validation split that a run records and can replay."""

from __future__ import annotations

import numpy as np


def stratified_split(labels, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, val indices): each class keeps about `val_fraction` of its items in val
    (at least one when it has two or more), chosen by `seed`.

    >>> stratified_split([0, 0, 0, 0, 1, 1, 1, 1], 0.25, seed=0)[1].__len__()
    2
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    val: list[int] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rng.shuffle(members)
        n_val = int(round(len(members) * val_fraction))
        if len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        else:
            n_val = 0
        val.extend(int(i) for i in members[:n_val])
    val_set = set(val)
    train = [i for i in range(len(labels)) if i not in val_set]
    return train, sorted(val)
