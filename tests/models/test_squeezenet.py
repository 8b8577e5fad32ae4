import pytest
import torch
import torchvision

import squeezelab
from squeezelab.errors import SqueezelabError
from squeezelab.models import (
    SQUEEZENET1_0_TABLE,
    SQUEEZENET1_1_TABLE,
    Fire,
    Metaparameters,
    create_model,
    list_models,
    table_from_metaparameters,
)

OURS = list_models(family="squeezenet")


@pytest.mark.parametrize("version,params", [("1_0", 1_248_424), ("1_1", 1_235_496)])
def test_parameter_counts_match_paper_and_torchvision(version, params):
    model = create_model(f"squeezenet{version}", num_classes=1000)
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("version", ["1_0", "1_1"])
def test_state_dicts_interchange_with_torchvision(version):
    ours = create_model(f"squeezenet{version}").eval()
    theirs = getattr(torchvision.models, f"squeezenet{version}")().eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-6)
    fresh = getattr(torchvision.models, f"squeezenet{version}")().eval()
    ours.load_state_dict(fresh.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.allclose(ours(x), fresh(x), atol=1e-6)


def test_initialisation_follows_torchvision():
    model = create_model("squeezenet1_0")
    final = model.classifier[1].weight
    assert abs(final.std().item() - 0.01) < 0.002  # N(0, 0.01) final conv
    assert all(m.bias.abs().max() == 0 for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def test_paper_metaparameters_give_squeezenet1_0_exactly():
    assert Metaparameters().table() == SQUEEZENET1_0_TABLE
    assert table_from_metaparameters(base_e=128, incr_e=128, freq=2, pct3x3=0.5, squeeze_ratio=0.125) == SQUEEZENET1_0_TABLE
    meta = create_model("squeezenet_meta")
    assert sum(p.numel() for p in meta.parameters()) == 1_248_424


def test_metaparameters_change_the_table():
    wide = table_from_metaparameters(squeeze_ratio=0.75)
    fires = [r for r in wide if r[0] == "fire"]
    assert fires[0] == ("fire", 96, 64, 64)
    all_1x1 = table_from_metaparameters(pct3x3=0.0)
    assert [r[2] for r in all_1x1 if r[0] == "fire"][0] == 128


def test_simple_bypass_adds_no_parameters_and_wraps_fire3_5_7_9():
    model = create_model("squeezenet1_0_simple_bypass")
    assert sum(p.numel() for p in model.parameters()) == 1_248_424
    fires = [m for m in model.features if isinstance(m, Fire)]
    assert [f.bypass for f in fires] == ["none", "identity"] * 4


def test_complex_bypass_adds_conv_bypass_elsewhere():
    model = create_model("squeezenet1_0_complex_bypass")
    fires = [m for m in model.features if isinstance(m, Fire)]
    assert [f.bypass for f in fires] == ["conv", "identity"] * 4
    extra = sum(f.bypass_conv.weight.numel() + f.bypass_conv.bias.numel() for f in fires if f.bypass == "conv")
    assert sum(p.numel() for p in model.parameters()) == 1_248_424 + extra


@pytest.mark.parametrize("name", OURS)
def test_options_build_and_run(name):
    model = create_model(name, num_classes=7, batch_norm=True, se_ratio=0.25, dropout=0.2, final_relu=False)
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 7)


def test_small_stem_keeps_resolution_for_32x32():
    model = create_model("squeezenet1_1", num_classes=10, stem="small")
    assert model.table[0] == ("conv", 64, 3, 1, 1) and model.table[1][0] == "fire"
    assert model.features(torch.zeros(1, 3, 32, 32)).shape[-1] == 8
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name,minimum", [("squeezenet1_0", 21), ("squeezenet1_1", 17)])
def test_minimum_input_size(name, minimum):
    model = create_model(name).eval()
    assert model.min_input_size == minimum
    assert model(torch.zeros(1, 3, minimum, minimum)).shape == (1, 1000)
    with pytest.raises(SqueezelabError, match=f"minimum is {minimum}x{minimum}"):
        model(torch.zeros(1, 3, minimum - 1, minimum - 1))
    # the shape arithmetic agrees with torch's own layers just below the minimum
    with pytest.raises(RuntimeError):
        model.features(torch.zeros(1, 3, minimum - 1, minimum - 1))


def test_same_face_as_timm():
    model = create_model("squeezenet1_1", num_classes=5).eval()
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(model.forward_head(model.forward_features(x)), model(x))
    model.reset_classifier(3)
    assert model(x).shape == (1, 3) and model.num_classes == 3


def test_tables_are_plain_data():
    assert SQUEEZENET1_1_TABLE[0] == ("conv", 64, 3, 2, 0)
    model = create_model("squeezenet1_1", table=[["conv", 32, 3, 2, 0], ["pool"], ["fire", 8, 16, 16]])
    assert model.num_features == 32 and model(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)


def test_package_entry_point():
    m = squeezelab.create_model("squeezenet1_0", num_classes=1000)
    assert m.num_classes == 1000
