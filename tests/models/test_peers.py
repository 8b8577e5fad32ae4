"""The peers' CIFAR stems: a 32 px image ends as a small map, widths and classifiers as published."""

from __future__ import annotations

import pytest
import torch

from squeezelab.errors import SqueezelabError
from squeezelab.models import create_model
from squeezelab.models.peers import CIFAR_STEMS


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _last_map(model, size: int = 32) -> int:
    """Side of the smallest feature map a conv or pool makes (squeeze-and-excitation's convs on
    pooled 1x1 maps aside)."""
    sides = []
    hooks = [m.register_forward_hook(lambda _m, i, o: sides.append(o.shape[-1]) if i[0].shape[-1] > 1 else None)
             for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.MaxPool2d))]
    model.eval()(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return min(sides)


@pytest.mark.parametrize("name", sorted(CIFAR_STEMS))
def test_cifar_stems_end_32px_images_at_a_few_pixels_not_one(name):
    imagenet = create_model(f"tv/{name}", num_classes=10)
    cifar = create_model(f"tv/{name}", num_classes=10, stem="cifar")
    if name == "alexnet":  # its ImageNet stem cannot take a 32 px image at all
        with pytest.raises(RuntimeError, match="too small"):
            _last_map(imagenet)
    else:
        assert _last_map(imagenet) == 1
    assert _last_map(cifar) in (3, 4)
    assert cifar.record.options["stem"] == "cifar"  # so a checkpoint rebuilds the same model
    if name in ("alexnet", "resnet18"):  # the first conv shrinks to 3x3; everything else is kept
        assert 0 < _params(imagenet) - _params(cifar) < 25_000
    else:
        assert _params(cifar) == _params(imagenet)


def test_mobilenet_v3_cifar_variant_tracks_batch_statistics_within_a_short_run():
    """torchvision's momentum 0.01 leaves the running statistics near their start after 20 steps
    (a model trained briefly then predicts one class); the CIFAR variant's 0.1 follows the data."""
    images = torch.randn(8, 3, 32, 32) * 3 + 2

    def tracked(model):
        model.train()
        with torch.no_grad():
            for _ in range(20):
                model(images)
        norm = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
        return float(norm.running_var.mean())

    torch.manual_seed(0)
    cifar, imagenet = (create_model("tv/mobilenet_v3_small", num_classes=10, stem=stem) for stem in ("cifar", None))
    imagenet.load_state_dict(cifar.state_dict())  # the same weights: only strides and momentum differ
    assert tracked(cifar) > 2 * tracked(imagenet)


def test_at_32px_alexnet_keeps_over_50x_the_parameters_of_squeezenet_1_0():
    """The paper's headline survives the CIFAR stems: AlexNet keeps its 4096-wide classifier."""
    alexnet = create_model("tv/alexnet", num_classes=10, stem="cifar")
    squeezenet = create_model("squeezenet1_0", num_classes=10, stem="cifar", batch_norm=True)
    assert _params(alexnet) > 50 * _params(squeezenet)


def test_squeezenet_cifar_stem_keeps_the_first_pool_and_ends_at_4x4():
    small = create_model("squeezenet1_0", num_classes=10, stem="small")
    cifar = create_model("squeezenet1_0", num_classes=10, stem="cifar")
    assert cifar.table[:2] == (("conv", 96, 3, 1, 1), ("pool",)) and small.table[1][0] == "fire"
    assert _last_map(cifar) == 4 and _last_map(small) == 8


def test_unknown_or_missing_stems_are_one_clear_error():
    with pytest.raises(SqueezelabError, match="unknown stem 'tiny'"):
        create_model("tv/mobilenet_v2", stem="tiny")
    with pytest.raises(SqueezelabError, match="has no cifar stem"):
        create_model("tv/squeezenet1_1", stem="cifar")


def test_the_trainer_normalises_the_classifier_input_of_batch_norm_models_with_bypass():
    from squeezelab.data import open_dataset
    from squeezelab.train.recipe import default_model_config

    def last(config):
        return type(config.build().features[-1]).__name__

    data = open_dataset("synthetic:n=8,classes=2")
    assert last(default_model_config(data, "squeezenet1_0", bypass="simple")) == "BatchNorm2d"
    assert last(default_model_config(data, "squeezenet1_0_complex_bypass")) == "BatchNorm2d"
    assert last(default_model_config(data, "squeezenet_cifar", bypass="simple")) == "BatchNorm2d"  # batch norm by default
    assert last(default_model_config(data, "squeezenet1_0")) == "Fire"
    assert last(default_model_config(data, "squeezenet1_0", bypass="simple", batch_norm=False)) == "Fire"
    assert last(default_model_config(data, "squeezenet1_0", bypass="simple", head_norm=False)) == "Fire"
    # the model's own default stays the paper's layout, so older files rebuild as they were saved
    assert type(create_model("squeezenet1_0", batch_norm=True, bypass="simple").features[-1]).__name__ == "Fire"


def test_he_init_scales_alexnet_layers_for_relus_and_unknown_inits_are_refused():
    torch.manual_seed(0)
    alexnet = create_model("tv/alexnet", num_classes=10, stem="cifar", init="he")
    conv2 = alexnet.features[3]  # 64 -> 192 channels, 5x5: fan-in 1,600
    assert conv2.weight.std().item() == pytest.approx((2 / 1600) ** 0.5, rel=0.05)
    assert not conv2.bias.detach().any() and alexnet.record.options["init"] == "he"
    default = create_model("tv/alexnet", num_classes=10, stem="cifar")
    assert default.features[3].weight.std().item() < 0.7 * conv2.weight.std().item()
    with pytest.raises(SqueezelabError, match="unknown init 'xavier'"):
        create_model("tv/alexnet", init="xavier")
