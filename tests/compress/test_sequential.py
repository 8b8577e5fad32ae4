"""Layer-by-layer compression of a model: groups, moments, bias correction, and a file that decodes
to the model it was made from."""

from __future__ import annotations

import torch
from torch import nn

from squeezelab import create_model
from squeezelab.compress.datafree import Option
from squeezelab.compress.gptq import Moments, share_weight
from squeezelab.compress.prune import selected_layers
from squeezelab.compress.quantize import shared_layers
from squeezelab.compress.sequential import compress_sequentially_, correct_bias_, input_groups, model_moments


def _model():
    torch.manual_seed(0)
    return create_model("squeezenet_meta", base_e=16, incr_e=16, num_classes=5).eval()


def test_a_fires_expand_layers_are_one_group_in_forward_order():
    model = _model()
    groups = input_groups(model, torch.randn(1, 3, 32, 32))
    assert [n for g in groups for n in g] == list(selected_layers(model))
    assert ["features.3.expand1x1", "features.3.expand3x3"] in groups and ["features.3.squeeze"] in groups


def test_moments_of_some_layers_stop_the_forward_early_and_match_all_layers():
    model = _model()
    batches = [torch.randn(2, 3, 32, 32) for _ in range(2)]
    every = model_moments(model, batches)
    some = model_moments(model, batches, ["features.3.squeeze"])
    assert torch.allclose(every["features.3.squeeze"].hessian, some["features.3.squeeze"].hessian)
    assert some["features.3.squeeze"].count == every["features.3.squeeze"].count > 0


def test_bias_correction_restores_the_mean_output():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 6, 3, padding=1)
    x = torch.randn(16, 8, 9, 9) + 0.5  # a mean input, so a weight change shifts the mean output
    moments = Moments(conv)
    moments.add(x)
    with torch.no_grad():
        before = conv(x).mean((0, 2, 3))
        original = conv.weight.detach().clone()
        shared = share_weight(original, moments.hessian, 0.5, 2).weight(original.shape)
        conv.weight.copy_(shared)
        shifted = conv(x).mean((0, 2, 3))
        correct_bias_(conv, original, shared, moments)
        after = conv(x).mean((0, 2, 3))
    assert (after - before).abs().max() < 1e-4 < (shifted - before).abs().max()


def test_sequential_compression_shares_every_layer_as_chosen_and_decodes_to_the_same_outputs():
    from squeezelab.compress.codec import decode, encode

    model = _model()
    batches = [torch.randn(4, 3, 32, 32) for _ in range(2)]
    chosen = {name: Option(0.7, 3 if "expand3x3" in name else 5, 0.0, 0) for name in selected_layers(model)}
    errors = compress_sequentially_(model, batches, chosen)
    assert set(errors) == set(chosen) and all(0 <= e < 1 for e in errors.values())
    shared = shared_layers(model)
    assert set(shared) == set(chosen)
    assert all(len(shared[n].centroids) <= 2 ** chosen[n].bits for n in chosen)
    blob, _ = encode(model)
    decoded = decode(blob, "<test>")
    with torch.no_grad():
        assert torch.allclose(decoded.eval()(batches[0]), model(batches[0]), atol=1e-5)
