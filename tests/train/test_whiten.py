import pytest
import torch
from torch import nn

from squeezelab.errors import SqueezelabError
from squeezelab.train.whiten import whiten_first_conv_


def _smooth_images(n: int = 64, size: int = 12) -> torch.Tensor:
    """Images whose neighbouring pixels and channels are strongly correlated, as in photos."""
    noise = torch.randn(n, 1, size + 2, size + 2, generator=torch.Generator().manual_seed(0))
    blurred = nn.functional.avg_pool2d(noise, 3, stride=1)
    return blurred.repeat(1, 3, 1, 1) + 0.1 * torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_whitened_filters_decorrelate_the_patches_they_were_measured_on():
    images = _smooth_images()
    conv = nn.Conv2d(3, 8, 3, bias=False)
    assert whiten_first_conv_(nn.Sequential(conv), images) == 8
    responses = conv(images)[:, :4].permute(0, 2, 3, 1).reshape(-1, 4)  # the + half of the pairs
    responses = responses - responses.mean(0)
    covariance = responses.T @ responses / len(responses)
    assert torch.allclose(covariance, torch.eye(4), atol=0.05), covariance
    assert torch.equal(conv.weight[4:], -conv.weight[:4])


def test_only_as_many_filters_as_patch_directions_are_set():
    conv = nn.Conv2d(1, 8, 1)
    before = conv.weight.detach().clone()
    assert whiten_first_conv_(conv, torch.randn(4, 1, 6, 6)) == 2  # a 1x1 one-channel patch has one direction
    assert torch.equal(conv.weight[2:], before[2:]) and conv.bias[:2].eq(0).all()


def test_a_channel_mismatch_is_refused():
    with pytest.raises(SqueezelabError, match="takes 3 channels"):
        whiten_first_conv_(nn.Conv2d(3, 4, 3), torch.randn(2, 1, 8, 8))
