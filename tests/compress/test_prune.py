import pytest
import torch

from squeezelab import create_model
from squeezelab.compress import ChannelPruneConfig, PruneConfig, layer_densities, overall_density, prune, prune_channels
from squeezelab.errors import SqueezelabError
from squeezelab.train.checkpoint import load_checkpoint, model_from_checkpoint, record_entries, save_checkpoint


def small_model(**kw):
    return create_model("squeezenet1_1", num_classes=10, **kw)


def test_per_layer_sparsity_and_masks_survive_optimizer_steps():
    model = prune(small_model(), PruneConfig(sparsity=0.7))
    assert all(abs(d - 0.3) < 0.01 for d in layer_densities(model).values())
    zeros = {n: (m.weight == 0) for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(2, 3, 20, 20)).square().sum().backward()
        optimizer.step()
    for name, module in model.named_modules():
        if name in zeros:
            assert torch.equal(module.weight == 0, zeros[name])


def test_density_table_overrides_and_unknown_layer_is_an_error():
    model = prune(small_model(), PruneConfig(sparsity=0.5, densities={"classifier.1": 0.2}))
    assert abs(layer_densities(model)["classifier.1"] - 0.2) < 0.01
    with pytest.raises(SqueezelabError):
        prune(small_model(), PruneConfig(densities={"nope": 0.5}))
    with pytest.raises(SqueezelabError):
        PruneConfig(sparsity=1.0)


def test_global_scope_hits_the_overall_target():
    model = prune(small_model(), PruneConfig(sparsity=0.6, scope="global"))
    assert abs(overall_density(model) - 0.4) < 0.01


def test_magnitude_keeps_the_largest_weights():
    model = small_model()
    weight = model.classifier[1].weight.detach().clone()
    prune(model, PruneConfig(sparsity=0.5))
    kept = model.classifier[1].weight != 0
    assert weight[kept].abs().min() >= weight[~kept].abs().max()


@pytest.mark.parametrize("options", [{}, {"batch_norm": True, "stem": "small"}, {"batch_norm": True, "head_norm": True}])
def test_channel_pruning_keeps_function_at_zero_amount_and_rewrites_table(options):
    model = small_model(**options).eval()
    x = torch.randn(2, 3, 40, 40)
    same = prune_channels(model, ChannelPruneConfig(squeeze_amount=0.0)).eval()
    assert torch.allclose(model(x), same(x), atol=1e-5)
    small = prune_channels(model, ChannelPruneConfig(squeeze_amount=0.5, expand_amount=0.25)).eval()
    fires = [row for row in small.table if row[0] == "fire"]
    assert fires[0] == ("fire", 8, 48, 48)
    assert small(x).shape == (2, 10)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


def test_channel_pruned_model_reloads_from_its_checkpoint_alone(tmp_path):
    small = prune_channels(small_model(), ChannelPruneConfig(squeeze_amount=0.5, expand_amount=0.5)).eval()
    save_checkpoint(tmp_path / "p.pt", {**record_entries(small.record), "state_dict": small.state_dict()})
    again = model_from_checkpoint(load_checkpoint(tmp_path / "p.pt"))
    x = torch.randn(1, 3, 32, 32)
    assert again.table == small.table
    assert torch.equal(again(x), small(x))


def test_squeeze_channel_pruning_only_with_bypass():
    model = create_model("squeezenet1_1_simple_bypass", num_classes=10).eval()
    small = prune_channels(model, ChannelPruneConfig(squeeze_amount=0.5)).eval()
    assert small(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(SqueezelabError):
        prune_channels(model, ChannelPruneConfig(expand_amount=0.5))


def test_channel_pruning_of_a_masked_model_asks_for_finalize():
    model = prune(small_model(), PruneConfig(sparsity=0.5))
    with pytest.raises(SqueezelabError, match="finalize_"):
        prune_channels(model)


def test_magnitude_mask_counts_all_weights_or_only_the_kept_ones():
    from squeezelab.compress.prune import magnitude_mask

    weight = torch.tensor([[0.0, 0.0, -4.0, 1.0], [3.0, 0.0, -2.0, 0.5]])
    assert magnitude_mask(weight, 0.25).tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]  # 2 of 8
    assert magnitude_mask(weight, 0.4, of_nonzero=True).tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]  # 2 of 5
    assert int(magnitude_mask(weight, 0.01, of_nonzero=True).sum()) == 1  # a layer keeps at least one weight
    assert int(magnitude_mask(weight, 0.0).sum()) == 0
