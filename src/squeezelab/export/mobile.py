"""What the phone formats (ExecuTorch, LiteRT, Core ML) share: the one line a missing package
gets, quiet converters, PT2E int8 calibration, and the split of calibration images into the
ones that set the ranges and the held-out ones that measure top-1 agreement.

PT2E (`torch.export` graph -> `prepare_pt2e` -> run real images -> `convert_pt2e`) is how both
ExecuTorch's XNNPACKQuantizer and litert-torch's PT2EQuantizer quantize: each runtime's own
quantizer annotates the graph with the int8 patterns its kernels run fast, so the same three
steps serve both with a different quantizer.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import warnings

import torch
from torch import nn

from squeezelab.errors import SqueezelabError

INSTALL = "pip install -e '.[mobile]' (or run scripts/bootstrap-mobile)"


def import_mobile(module: str, purpose: str):
    """`import module`, or one line naming the `mobile` extra that installs it."""
    try:
        with quiet():
            return importlib.import_module(module)
    except ImportError:
        raise SqueezelabError(f"{purpose} needs the '{module.split('.')[0]}' package: {INSTALL}") from None


@contextlib.contextmanager
def quiet():
    """Converters and runtimes print progress bars, absl and C++ logs (to Python's streams and to
    file descriptors 1 and 2) and warn about torch versions: keep them off the user's screen.
    Errors still arrive as exceptions. Not for concurrent use from several threads."""
    for stream in (sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = []
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                saved.append((fd, os.dup(fd)))
        with open(os.devnull, "wb") as null:
            for fd, _ in saved:
                os.dup2(null.fileno(), fd)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                yield
        finally:
            root.setLevel(level)
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def pt2e_quantize(model: nn.Module, quantizer, calibration: list[torch.Tensor], sample: torch.Tensor, *,
                  fold_quantize: bool = True) -> nn.Module:
    """`model` exported with `sample`, annotated by `quantizer`, calibrated one image at a time on
    `calibration` (the program takes batch 1) and converted to quantize/dequantize pairs."""
    pt2e = import_mobile("torchao.quantization.pt2e.quantize_pt2e", "int8 quantization")
    with quiet():
        prepared = pt2e.prepare_pt2e(export_program(model, sample).module(), quantizer)
        with torch.no_grad():
            for batch in calibration:
                for image in batch:
                    prepared(image[None].float())
        return pt2e.convert_pt2e(prepared, fold_quantize=fold_quantize)


def split_calibration(batches: list[torch.Tensor], calibrate: int) -> tuple[list[torch.Tensor], list[torch.Tensor], str]:
    """(images that set the int8 ranges, held-out images that measure agreement, what the latter
    are in words): up to `calibrate` images calibrate and the rest are held out; with too few for
    both, all calibrate and agreement is measured on them (the report says so)."""
    images = torch.cat([b.float() for b in batches]) if batches else torch.empty(0)
    if len(images) == 0:
        raise SqueezelabError("int8 calibration needs at least one real image; pass --calib-data")
    keep = min(calibrate, len(images) // 2)
    if keep == 0:
        return [images], [images], "calibration"
    return [images[:keep]], [images[keep:]], "held-out"


def export_program(model: nn.Module, sample: torch.Tensor):
    """`torch.export` of the eval-mode model at batch 1, with one line when it cannot be traced."""
    try:
        with quiet():
            return torch.export.export(model, (sample,))
    except Exception as exc:
        raise SqueezelabError(f"torch.export could not trace {type(model).__name__} ({first_line(exc)}); "
                              "mobile exports need a model torch.export can capture") from None
