"""Layer-by-layer compression of a whole model with error compensation (`compress.gptq`).

GPTQ (Frantar et al., 2023, Section 4) compresses a network one layer at a time and feeds each
layer the inputs produced by the layers already compressed before it, so a layer's correction
also pays back what the earlier layers lost. Here:

- `model_moments`: one forward pass of the calibration images through the uncompressed model
  records each layer's H = X X^T and mean input (im2col columns);
- `layer_options`: every (density, bits) setting of every layer, compensated on those moments,
  with its relative output error and the bytes of its streams, for the allocation of
  `compress.datafree.allocate`;
- `compress_sequentially_`: the chosen settings applied in forward order, each layer's moments
  measured again on the partly compressed model; then each layer's bias is moved by the shift of
  its mean output that its compression causes (Nagel et al., 2019, "Data-free quantization",
  bias correction: (W - W') E[x] over the inputs it now receives).

Layers that read the same tensor (a Fire's two expand layers) are measured in one pass.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from squeezelab.compress.gptq import Moments, factor, prune_weight, share_weight
from squeezelab.compress.prune import apply_mask_, recorded_inputs, selected_layers
from squeezelab.compress.quantize import share_layer_


class _Enough(Exception):
    """Raised by a hook once the layers it waits for have their inputs: the rest of the forward is skipped."""


def model_moments(model: nn.Module, batches: Iterable[torch.Tensor], names: list[str] | None = None
                  ) -> dict[str, Moments]:
    """{layer name: Moments of its inputs} over `batches` (normalised images), in one pass each."""
    layers = selected_layers(model)
    names = list(layers) if names is None else names
    moments = {name: Moments(layers[name]) for name in names}
    last = names[-1]
    hooks = []

    def record(name):
        def hook(_module, args):
            moments[name].add(args[0])
            if name == last and len(names) < len(layers):
                raise _Enough
        return hook

    for name in names:
        hooks.append(layers[name].register_forward_pre_hook(record(name)))
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                try:
                    model(batch)
                except _Enough:
                    pass
    finally:
        for hook in hooks:
            hook.remove()
    return moments


def layer_options(model: nn.Module, moments: dict[str, Moments], densities: tuple[float, ...], bits: tuple[int, ...],
                  log: Callable[[str], None] = lambda _m: None) -> tuple[dict, dict]:
    """({layer: [Option]}, {(layer, density, bits): SharedLayer}) for every setting of every layer."""
    from squeezelab.compress.datafree import Option, stream_bytes

    options, found = {}, {}
    for name, module in selected_layers(model).items():
        hessian = moments[name].hessian
        factored = factor(hessian)
        options[name] = []
        for density in densities:
            for b in bits:
                shared = share_weight(module.weight.detach(), hessian, density, b, refits=0, factored=factored)
                size = stream_bytes(shared.mask.numpy(), shared.index.numpy(), len(shared.centroids))
                options[name].append(Option(density, b, shared.error, size))
                found[(name, density, b)] = shared
        log(f"{name}: {len(options[name])} settings measured")
    return options, found


def apply_shared_(model: nn.Module, chosen: dict, found: dict) -> None:
    """Each layer's weight replaced by its `found` compressed setting (chosen: {layer: Option})."""
    layers = selected_layers(model)
    for name, option in chosen.items():
        shared = found[(name, option.density_factor, option.bits)]
        share_layer_(layers[name], shared.centroids, shared.index.view(layers[name].weight.shape),
                     shared.mask.view(layers[name].weight.shape))


def input_groups(model: nn.Module, batch: torch.Tensor) -> list[list[str]]:
    """The selected layers in forward order, those that read the same tensor grouped together."""
    seen = recorded_inputs(model, batch)
    groups: list[list[str]] = []
    previous = None
    for name, tensor in seen:
        if groups and tensor is previous:
            groups[-1].append(name)
        elif name not in {n for g in groups for n in g}:
            groups.append([name])
        previous = tensor
    return groups


def compress_sequentially_(model: nn.Module, batches: list[torch.Tensor], chosen: dict, *, log: Callable[[str], None] = lambda _m: None) -> dict[str, float]:
    """Compress `model` in place as `chosen` ({layer: Option}) says, layer group by layer group in
    forward order, each on the inputs the already compressed layers produce, and correct each
    layer's bias; returns {layer: relative output error on those inputs}."""
    layers = selected_layers(model)
    errors = {}
    for group in input_groups(model, batches[0][:1]):
        moments = model_moments(model, batches, group)
        for name in group:
            module, option = layers[name], chosen[name]
            original = module.weight.detach().clone()
            shared = share_weight(original, moments[name].hessian, option.density_factor, option.bits)
            share_layer_(module, shared.centroids, shared.index.view(original.shape), shared.mask.view(original.shape))
            correct_bias_(module, original, shared.weight(original.shape), moments[name])
            errors[name] = shared.error
        log(f"compressed {', '.join(group)} on the compressed model's inputs")
    return errors


@torch.no_grad()
def correct_bias_(module: nn.Module, original: torch.Tensor, shared: torch.Tensor, moments: Moments) -> None:
    """Move the bias by the shift of the layer's mean output that its compression causes on its
    inputs, (W - W') E[x]; a layer without a bias (batch norm after it) is left to batch-norm
    recalibration."""
    if getattr(module, "bias", None) is None:
        return
    rows = original.shape[0]
    shift = (original.reshape(rows, -1).double() - shared.reshape(rows, -1).double()) @ moments.mean
    module.bias.add_(shift.to(module.bias.dtype))


def prune_sequentially_(model: nn.Module, batches: list[torch.Tensor], densities: dict[str, float]) -> None:
    """Prune each layer to `densities` (fraction of all its weights kept) with compensation, in
    forward order on the inputs of the layers pruned before it; masks as `compress.prune` sets them."""
    from torch.nn.utils import parametrize

    layers = selected_layers(model)
    for group in input_groups(model, batches[0][:1]):
        moments = model_moments(model, [b for b in batches], group)
        for name in (n for n in group if n in densities):
            module = layers[name]
            weight = module.weight.detach().clone()
            nonzero = max(1, int((weight != 0).sum()))
            new, mask = prune_weight(weight, moments[name].hessian, min(1.0, densities[name] * weight.numel() / nonzero))
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            with torch.no_grad():
                module.weight.copy_(new)
            apply_mask_(module, mask)


def share_sequentially_(model: nn.Module, batches: list[torch.Tensor], bits: dict[str, int]) -> dict[str, float]:
    """Share each layer's kept weights into 2**bits[layer] centroids with compensation (masks
    kept), in forward order on the inputs of the layers shared before it; {layer: output error}."""
    layers = selected_layers(model)
    errors = {}
    for group in input_groups(model, batches[0][:1]):
        moments = model_moments(model, batches, group)
        for name in (n for n in group if n in bits):
            module = layers[name]
            weight = module.weight.detach().clone()
            shared = share_weight(weight, moments[name].hessian, 1.0, bits[name])
            share_layer_(module, shared.centroids, shared.index.view(weight.shape), shared.mask.view(weight.shape))
            errors[name] = shared.error
    return errors
