"""Which layer keeps how much: per-layer densities by each layer's role in SqueezeNet.

Two tables by role (the first conv, the classifier, 1x1 squeeze/expand layers, 3x3 expand
layers): the densities of the released SqueezeNet Deep Compression model (`PAPER_DENSITY`:
its .net file's own layer counts; the 3x3 expand filters hold most weights and lose two thirds, conv10 keeps about a
fifth), and the factors of the `squeezenet` layer policy that `squeezelab compress` uses
(`ROLE_DENSITY_FACTOR`: the few weights of the first conv and the classifier see every pixel /
decide every class, and the 1x1 layers are a fifth of the weights).
"""

from __future__ import annotations

from torch import nn

from squeezelab.compress.config import LAYER_POLICIES
from squeezelab.compress.prune import LayerFilter, conv_and_linear, selected_layers
from squeezelab.errors import SqueezelabError

PAPER_DENSITY = {"first": 1.0, "1x1": 0.99, "3x3": 0.33, "classifier": 0.21}
ROLE_DENSITY_FACTOR = {"first": 6.25, "classifier": 3.75, "1x1": 2.5, "3x3": 1.0}  # x the 3x3 density, capped at 1


def layer_role(name: str, module: nn.Module, first: str) -> str:
    """"first", "classifier", "1x1" or "3x3"; `first` names the model's first selected layer."""
    if name == first:
        return "first"
    if name.startswith("classifier") or isinstance(module, nn.Linear):
        return "classifier"
    return "1x1" if getattr(module, "kernel_size", (1, 1)) == (1, 1) else "3x3"


def _roles(model: nn.Module, filter: LayerFilter = conv_and_linear) -> dict[str, str]:
    layers = selected_layers(model, filter)
    first = next(iter(layers), "")
    return {name: layer_role(name, module, first) for name, module in layers.items()}


def paper_density_table(model: nn.Module, filter: LayerFilter = conv_and_linear) -> dict[str, float]:
    """Per-layer densities in the style of the released SqueezeNet model, by each layer's role.

    >>> from squeezelab import create_model
    >>> paper_density_table(create_model("squeezenet1_0"))["features.3.expand3x3"]
    0.33
    """
    return {name: PAPER_DENSITY[role] for name, role in _roles(model, filter).items()}


def policy_densities(model: nn.Module, sparsity_3x3: float, policy: str = "squeezenet") -> dict[str, float]:
    """{layer: fraction kept}: `1 - sparsity_3x3` everywhere (`uniform`), or for the 3x3 layers with
    the others kept denser by `ROLE_DENSITY_FACTOR` (`squeezenet`).

    >>> from squeezelab import create_model
    >>> d = policy_densities(create_model("squeezenet1_1", num_classes=10), 0.92)
    >>> d["features.0"], d["features.3.squeeze"], d["features.3.expand3x3"], d["classifier.1"]
    (0.5, 0.2, 0.08, 0.3)
    """
    if policy not in LAYER_POLICIES:
        raise SqueezelabError(f"layer policy must be one of {', '.join(LAYER_POLICIES)}, got {policy!r}")
    roles = _roles(model)
    density = 1.0 - sparsity_3x3
    if policy == "uniform":
        return {name: density for name in roles}
    return {name: round(min(1.0, density * ROLE_DENSITY_FACTOR[role]), 6) for name, role in roles.items()}


def gradual_densities(final: dict[str, float], step: int, steps: int) -> dict[str, float]:
    """Densities after pruning round `step` of `steps` on the cubic schedule (Zhu & Gupta, 2017):
    big cuts first, while many weights remain to take over, small ones at the end."""
    done = 1.0 - (1.0 - step / steps) ** 3
    return {name: 1.0 - (1.0 - d) * done for name, d in final.items()}
