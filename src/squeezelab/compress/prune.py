"""Magnitude pruning and Fire channel pruning (Deep Compression, Section 2; SqueezeNet, Section 4).

Deep Compression removes the weights of smallest magnitude in each layer and retrains the rest;
the SqueezeNet paper's compressed model kept about a third of its conv weights (the released
8-bit model: expand3x3 layers about 33%, conv10 about 21%, most 1x1 layers about 99%, 33.9% in
all; see `compress.policy.PAPER_DENSITY`).

Masks are PyTorch parametrizations (`weight = original * mask`), so they hold through any
optimizer, weight decay or `load_state_dict` without hooks in the training loop: the pruned
weights are exactly zero in every forward pass and their gradients are zero.

Structured pruning (`prune_channels`) removes whole squeeze / expand channels of Fire modules and
rewrites the model's layer table, so the smaller model is a plain model that rebuilds from its
config (`create_model(name, table=...)`) and saves and reloads like any other.

>>> from squeezelab import create_model
>>> model = prune(create_model("squeezenet1_1", num_classes=10), PruneConfig(sparsity=0.5))
>>> round(overall_density(model), 2)
0.5
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from squeezelab.compress.config import ChannelPruneConfig, PruneConfig
from squeezelab.errors import SqueezelabError

LayerFilter = Callable[[str, nn.Module], bool]


def conv_and_linear(name: str, module: nn.Module) -> bool:
    """The default filter: every Conv2d and Linear layer (biases and batch norm stay dense)."""
    return isinstance(module, (nn.Conv2d, nn.Linear))


class Mask(nn.Module):
    """Parametrization weight = original * mask; the mask is a buffer saved with the model."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


def magnitude_mask(weight: torch.Tensor, density: float, *, of_nonzero: bool = False) -> torch.Tensor:
    """Keep the round(density * n) largest-magnitude weights of all n (ties broken by position);
    with `of_nonzero`, of the n non-zero ones and at least one (a pruned layer pruned further).

    >>> magnitude_mask(torch.tensor([0.0, -3.0, 1.0, 2.0]), 0.5, of_nonzero=True).tolist()
    [0.0, 1.0, 0.0, 0.0]
    """
    magnitude = weight.detach().abs().flatten()
    keep = int(round(density * (int((magnitude != 0).sum()) if of_nonzero else magnitude.numel())))
    keep = max(1, keep) if of_nonzero else keep
    mask = torch.zeros(weight.numel(), dtype=weight.dtype, device=weight.device)
    if keep > 0:
        mask[torch.topk(magnitude, keep, sorted=False).indices] = 1
    return mask.view_as(weight)


def selected_layers(model: nn.Module, filter: LayerFilter = conv_and_linear) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if filter(name, m) and hasattr(m, "weight")}


def recorded_inputs(model: nn.Module, batch: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """Each selected layer's name and the tensor it reads on `batch`, in the order the layers run
    (one forward pass in eval mode with hooks; two layers that read one tensor get the same object)."""
    seen: list[tuple[str, torch.Tensor]] = []
    hooks = [m.register_forward_pre_hook(lambda _m, args, name=name: seen.append((name, args[0])))
             for name, m in selected_layers(model).items()]
    try:
        with torch.no_grad():
            model.eval()(batch)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def layers_to_compress(model: nn.Module, filter: LayerFilter, table: dict | None, verb: str, table_label: str) -> dict[str, nn.Module]:
    """The layers `filter` selects, refusing an empty selection or a per-layer table naming others."""
    layers = selected_layers(model, filter)
    if not layers:
        raise SqueezelabError(f"no layer matches the {verb} filter; nothing to {verb}")
    unknown = sorted(set(table or {}) - set(layers))
    if unknown:
        raise SqueezelabError(
            f"{table_label} names {unknown[0]!r}, which is not a layer to {verb}; see model.named_modules()"
        )
    return layers


def current_mask(module: nn.Module) -> torch.Tensor | None:
    """The pruning mask on `module.weight`, or None if it is not pruned."""
    if parametrize.is_parametrized(module, "weight"):
        for p in module.parametrizations.weight:
            if hasattr(p, "mask"):
                return p.mask
    return None


def apply_mask_(module: nn.Module, mask: torch.Tensor) -> None:
    """Attach (or replace) the pruning mask of `module.weight`."""
    if parametrize.is_parametrized(module, "weight"):
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    parametrize.register_parametrization(module, "weight", Mask(mask.to(module.weight.dtype)))


def _global_densities(layers: dict[str, nn.Module], sparsity: float) -> dict[str, float]:
    magnitudes = torch.cat([m.weight.detach().abs().flatten() for m in layers.values()])
    keep = int(round((1 - sparsity) * magnitudes.numel()))
    threshold = torch.topk(magnitudes, keep).values.min() if keep else float("inf")
    return {n: float((m.weight.detach().abs() >= threshold).float().mean()) for n, m in layers.items()}


def prune(model: nn.Module, config: PruneConfig = PruneConfig(), *, filter_fn: LayerFilter = conv_and_linear) -> nn.Module:
    """Magnitude-prune the layers `filter_fn` selects, in place (masks as parametrizations); returns the model."""
    layers = layers_to_compress(model, filter_fn, config.densities, "prune", "density table")
    if config.scope == "global":
        densities = _global_densities(layers, config.sparsity)
    else:
        densities = {name: 1.0 - config.sparsity for name in layers}
    densities.update(config.densities or {})
    for name, module in layers.items():
        apply_mask_(module, magnitude_mask(module.weight, densities[name]))
    return model


def layer_densities(model: nn.Module, filter: LayerFilter = conv_and_linear) -> dict[str, float]:
    """Fraction of nonzero weights in each selected layer."""
    return {n: float((m.weight != 0).float().mean()) for n, m in selected_layers(model, filter).items()}


def overall_density(model: nn.Module, filter: LayerFilter = conv_and_linear) -> float:
    layers = selected_layers(model, filter).values()
    nonzero = sum(int((m.weight != 0).sum()) for m in layers)
    return nonzero / max(1, sum(m.weight.numel() for m in layers))


def finalize_(model: nn.Module) -> nn.Module:
    """Bake every parametrization (masks, shared weights) into plain weights; in place."""
    for module in list(model.modules()):
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return model


# ---------------------------------------------------------------- structured (channel) pruning


def _keep(weight: torch.Tensor, amount: float, importance) -> torch.Tensor:
    n = weight.shape[0]
    keep = max(1, n - int(round(amount * n)))
    return torch.sort(torch.topk(importance(weight), keep).indices).values


def l1_norm(weight: torch.Tensor) -> torch.Tensor:
    """The default channel importance: the L1 norm of each output channel's filter."""
    return weight.detach().abs().flatten(1).sum(1)


def _fire_keeps(fire, config: ChannelPruneConfig, importance):
    squeeze = _keep(fire.squeeze.weight, config.squeeze_amount, importance)
    e1 = _keep(fire.expand1x1.weight, config.expand_amount, importance)
    e3 = _keep(fire.expand3x3.weight, config.expand_amount, importance)
    return squeeze, e1, e3


def prune_channels(model: nn.Module, config: ChannelPruneConfig = ChannelPruneConfig(), *,
                   importance: Callable[[torch.Tensor], torch.Tensor] = l1_norm) -> nn.Module:
    """A new, smaller model with Fire channels removed and its table rewritten.

    The result's `record` holds the new table, so a checkpoint of it rebuilds by itself.
    Expand channels feed the next layer and any bypass, so expand pruning is refused for models
    with bypass or squeeze-and-excitation (their channel counts must match).

    >>> from squeezelab import create_model
    >>> small = prune_channels(create_model("squeezenet1_1", num_classes=10))
    >>> small.table[2]
    ('fire', 12, 64, 64)
    """
    from squeezelab.models.fire import Fire
    from squeezelab.models.rebuild import build, record_of

    if not hasattr(model, "table"):
        raise SqueezelabError("channel pruning needs a table-built SqueezeNet (create_model('squeezenet...'))")
    if any(parametrize.is_parametrized(m) for m in model.modules()):
        raise SqueezelabError("channel-prune before magnitude pruning or weight sharing, or call finalize_(model) first")
    fires = [m for m in model.features if isinstance(m, Fire)]
    if config.expand_amount and any(f.bypass != "none" or hasattr(f, "se") for f in fires):
        raise SqueezelabError("expand-channel pruning does not support bypass or SE models; use squeeze_amount only")
    record = record_of(model)
    keeps = {id(f): _fire_keeps(f, config, importance) for f in fires}
    table, fire_iter = [], iter(fires)
    for row in model.table:
        if row[0] == "fire":
            s, e1, e3 = keeps[id(next(fire_iter))]
            row = ("fire", len(s), len(e1), len(e3))
        table.append(tuple(row))
    record = record.replace(options={**record.options, "table": table, "stem": "standard"})
    with torch.no_grad():
        new = build(record)
        _copy_sliced(model, new, keeps)
    return new.train(model.training)


def _slice_into(dst: nn.Module, src: nn.Module, out_idx=None, in_idx=None) -> None:
    for name, tensor in list(src.named_parameters(recurse=False)) + list(src.named_buffers(recurse=False)):
        value = tensor.detach()
        if value.dim() == 0:
            getattr(dst, name).copy_(value)
            continue
        if out_idx is not None:
            value = value.index_select(0, out_idx)
        if in_idx is not None and value.dim() > 1:
            value = value.index_select(1, in_idx)
        getattr(dst, name).copy_(value)


def _copy_sliced(old: nn.Module, new: nn.Module, keeps: dict) -> None:
    from squeezelab.models.fire import Fire

    in_idx = None  # channels of the previous layer's output that survive
    for old_layer, new_layer in zip(old.features, new.features):
        if isinstance(old_layer, Fire):
            s, e1, e3 = keeps[id(old_layer)]
            _slice_into(new_layer.squeeze, old_layer.squeeze, s, in_idx)
            _slice_into(new_layer.expand1x1, old_layer.expand1x1, e1, s)
            _slice_into(new_layer.expand3x3, old_layer.expand3x3, e3, s)
            for bn, idx in (("squeeze_bn", s), ("expand1x1_bn", e1), ("expand3x3_bn", e3)):
                if hasattr(old_layer, bn):
                    _slice_into(getattr(new_layer, bn), getattr(old_layer, bn), idx)
            out = torch.cat([e1, e3 + old_layer.expand1x1.out_channels])
            for extra in ("se", "bypass_conv", "bypass_bn"):
                if hasattr(old_layer, extra):  # only reached with full expand channels (checked above)
                    getattr(new_layer, extra).load_state_dict(getattr(old_layer, extra).state_dict())
            in_idx = out
        elif isinstance(old_layer, nn.Conv2d):  # a conv row after a Fire takes its kept channels
            _slice_into(new_layer, old_layer, None, in_idx)
            in_idx = None
        elif isinstance(old_layer, nn.BatchNorm2d) and in_idx is not None:  # head_norm: the last Fire's channels
            _slice_into(new_layer, old_layer, in_idx)
        else:  # pools, ReLUs, the stem's batch norm: shapes unchanged
            new_layer.load_state_dict(old_layer.state_dict())
    final_old, final_new = old.classifier[1], new.classifier[1]
    _slice_into(final_new, final_old, None, in_idx)
