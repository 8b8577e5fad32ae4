import pytest
import torch
from torch import nn

from squeezelab import create_model
from squeezelab.compress.batchnorm import fold_batch_norm_, recalibrate_batch_norm_
from squeezelab.errors import SqueezelabError


def bn_model():
    torch.manual_seed(0)
    return create_model("squeezenet_meta", base_e=16, incr_e=16, num_classes=3, batch_norm=True, dropout=0.5).eval()


def test_recalibration_replaces_stale_statistics_with_the_measured_ones():
    model, x = bn_model(), torch.randn(64, 3, 32, 32)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(3.0)  # what pruning / weight sharing does: the outputs move, the stats stay
        batch_stats = model.train()(x)  # train mode: normalised with this batch's own statistics
        stale = model.eval()(x)
    momentum = model.features[1].momentum
    recalibrate_batch_norm_(model, [(x[:32], None), (x[32:], None)])
    with torch.no_grad():
        fresh = model(x)
    assert not model.training and model.features[1].momentum == momentum
    assert (fresh - batch_stats).abs().max() < 0.2 * (stale - batch_stats).abs().max()
    assert (fresh.argmax(1) == batch_stats.argmax(1)).float().mean() >= (stale.argmax(1) == batch_stats.argmax(1)).float().mean()


def test_recalibration_uses_at_most_num_batches_and_needs_one():
    model = bn_model()
    seen = []

    def batches():
        for i in range(10):
            seen.append(i)
            yield torch.randn(4, 3, 32, 32), None

    recalibrate_batch_norm_(model, batches(), num_batches=3)
    assert len(seen) == 4  # the fourth is drawn and discarded
    with pytest.raises(SqueezelabError, match="no batches"):
        recalibrate_batch_norm_(model, [])


def test_folding_keeps_eval_outputs_and_leaves_constant_statistics():
    model, x = bn_model(), torch.randn(8, 3, 32, 32)
    recalibrate_batch_norm_(model, [(torch.randn(32, 3, 32, 32), None)])
    with torch.no_grad():
        expected = model(x)
        fold_batch_norm_(model)
        assert torch.allclose(model(x), expected, atol=1e-4)
    bn = model.features[1]
    assert bool((bn.running_mean == 0).all()) and bool((bn.running_var == 1 - bn.eps).all())


def test_folding_moves_a_conv_bias_into_the_shift():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4)).eval()
    model[1].running_mean.uniform_(-1, 1)
    model[1].running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
        fold_batch_norm_(model)
        assert torch.allclose(model(x), expected, atol=1e-5)
    assert bool((model[0].bias == 0).all())
