import pytest
import torch

from squeezelab.errors import SqueezelabError
from squeezelab.models import create_model, list_models, register_model, reset_classifier
from squeezelab.models.squeezenet import SqueezeNet

ALL = list_models()
REQUIRED_PEERS = ["tv/alexnet", "tv/mobilenet_v2", "tv/mobilenet_v3_small", "tv/mobilenet_v3_large",
                  "tv/shufflenet_v2_x1_0", "tv/resnet18"]


def test_registry_holds_ours_and_the_peers():
    for name in ["squeezenet1_0", "squeezenet1_1", "squeezenet1_0_simple_bypass",
                 "squeezenet1_0_complex_bypass", *REQUIRED_PEERS]:
        assert name in ALL
    assert list_models("tv/mobilenet*") == ["tv/mobilenet_v2", "tv/mobilenet_v3_small", "tv/mobilenet_v3_large"]


@pytest.mark.parametrize("name", ALL)
def test_every_model_runs_forward_and_backward(name):
    model = create_model(name, num_classes=4)
    size = 64 if name != "tv/alexnet" else 96
    x = torch.randn(2, 3, size, size)
    out = model(x)
    assert out.shape == (2, 4)
    assert torch.isfinite(out).all()
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", ALL)
def test_reset_classifier_for_every_model(name):
    model = create_model(name, num_classes=6)
    reset_classifier(model, 3)
    size = 64 if name != "tv/alexnet" else 96
    assert model.eval()(torch.randn(1, 3, size, size)).shape == (1, 3)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(SqueezelabError, match="did you mean squeezenet1_1"):
        create_model("squeezenet11")


def test_unknown_option_is_named():
    with pytest.raises(SqueezelabError, match="no_such_option"):
        create_model("squeezenet1_0", no_such_option=3)


def test_none_options_keep_defaults():
    model = create_model("squeezenet1_0", num_classes=None, dropout=None)
    assert model.num_classes == 1000


def test_duplicate_registration_fails():
    with pytest.raises(ValueError, match="twice"):
        register_model("squeezenet1_0")(lambda **kw: SqueezeNet())
