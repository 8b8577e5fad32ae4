"""Batch-norm statistics after pruning and weight sharing, and folding them for storage.

Pruning and weight sharing change every conv's output distribution, but a batch-norm layer keeps
the running mean and variance it measured on the dense weights, so at evaluation it normalises
with stale numbers (the model can lose tens of points though its weights are fine). Deep
Compression (Han et al., 2016) predates batch norm; the standard remedy (e.g. Li et al., 2018,
"Revisiting batch normalization for practical domain adaptation") is to measure the statistics
again: run training batches through the network in train mode, without gradients, with every
other layer (dropout) in eval mode, and take the plain average over those batches.

`fold_batch_norm_` rewrites each batch norm's four tensors (and the preceding conv's bias) into
an equivalent scale and shift, so a file stores 2 numbers per channel instead of 5; the other
three become constants that code to almost nothing.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from squeezelab.errors import SqueezelabError

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@torch.no_grad()
def recalibrate_batch_norm_(model: nn.Module, batches: Iterable, num_batches: int = 50) -> nn.Module:
    """Re-measure every batch norm's running mean/variance on up to `num_batches` batches of
    (images, labels); in place, weights untouched, the model is left in eval mode.

    >>> from squeezelab import create_model
    >>> model = create_model("squeezenet1_1", num_classes=10, batch_norm=True)
    >>> _ = recalibrate_batch_norm_(model, [(torch.randn(8, 3, 64, 64), None)])
    >>> float(model.features[1].running_var.mean()) != 1.0
    True
    """
    norms = [m for m in model.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]
    if not norms:
        return model.eval()
    device = next(model.parameters()).device
    saved = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches, not an exponential one
        m.train()
    seen = 0
    try:
        for images, _labels in batches:
            if seen >= num_batches:
                break
            model(images.to(device))
            seen += 1
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        model.eval()
    if not seen:
        raise SqueezelabError("batch-norm recalibration got no batches; the training split is empty")
    return model


@torch.no_grad()
def fold_batch_norm_(model: nn.Module) -> nn.Module:
    """Rewrite each batch norm as scale/shift in eval form (running mean 0, variance 1 - eps,
    the preceding conv's bias moved into the shift); in place, eval outputs unchanged.

    Only a batch norm whose input comes straight from a conv in the same parent module (the
    `<conv>_bn` / `conv, bn` pairs of SqueezeNet) takes that conv's bias.
    """
    for parent in model.modules():
        children = dict(parent.named_children())
        previous = None
        for name, child in children.items():
            if isinstance(child, BATCH_NORMS) and child.track_running_stats:
                stem = name.removesuffix("_bn")
                conv = children.get(stem, children.get(f"{stem}_conv")) if name.endswith("_bn") else previous
                _fold_one(child, conv if isinstance(conv, nn.Conv2d) else None)
            previous = child
    return model


def _fold_one(bn: nn.Module, conv: nn.Conv2d | None) -> None:
    if not bn.affine:
        return  # nothing would hold the scale
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - scale * bn.running_mean
    if conv is not None and conv.bias is not None:
        shift = shift + scale * conv.bias
        conv.bias.zero_()
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)
    bn.weight.copy_(scale)
    bn.bias.copy_(shift)
