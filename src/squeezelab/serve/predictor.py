"""The model the service serves: any file `squeezelab.loading` opens (.pt, .sqz, .onnx, ...).

The preprocessing (resize, crop, mean/std, channel order) comes from the file's own record, so a
served model is fed exactly what it was trained on.
"""

from __future__ import annotations

import os

from squeezelab.loading import Predictor, load_predictor, predictor_from_module

__all__ = ["Predictor", "open_predictor", "predictor_from_module"]


def open_predictor(path: str | os.PathLike, *, threads: int | None = None) -> Predictor:
    """Any model file `squeezelab.loading` has a loader for (.pt, .sqz, .onnx, ...), ready to serve."""
    return load_predictor(path, threads=threads)
