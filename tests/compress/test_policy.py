"""Per-layer densities: the `squeezenet` and `uniform` policies, the gradual schedule, the
released model's table."""

import pytest

from squeezelab import create_model
from squeezelab.compress.policy import gradual_densities, paper_density_table, policy_densities
from squeezelab.errors import SqueezelabError


def test_squeezenet_policy_prunes_3x3_hardest_and_uniform_prunes_alike():
    model = create_model("squeezenet1_1", num_classes=10)
    d = policy_densities(model, 0.92)
    assert d["features.0"] == 0.5 and d["classifier.1"] == 0.3
    assert all(v == 0.08 for k, v in d.items() if k.endswith("expand3x3"))
    assert all(v == 0.2 for k, v in d.items() if k.endswith(("squeeze", "expand1x1")))
    assert set(policy_densities(model, 0.5, "uniform").values()) == {0.5}
    assert policy_densities(model, 0.5)["features.0"] == 1.0  # capped
    with pytest.raises(SqueezelabError, match="policy"):
        policy_densities(model, 0.5, "random")


def test_gradual_schedule_cuts_most_first_and_ends_at_the_target():
    final = {"a": 0.1, "b": 0.5}
    steps = [gradual_densities(final, k, 4) for k in range(1, 5)]
    assert steps[-1] == pytest.approx(final)
    cuts = [1.0 - steps[0]["a"]] + [steps[k - 1]["a"] - steps[k]["a"] for k in range(1, 4)]
    assert all(c > 0 for c in cuts) and cuts == sorted(cuts, reverse=True)


def test_paper_density_table_gives_each_role_the_released_models_density():
    table = paper_density_table(create_model("squeezenet1_0"))
    assert (table["features.0"], table["features.3.squeeze"], table["features.3.expand1x1"],
            table["features.3.expand3x3"], table["classifier.1"]) == (1.0, 0.99, 0.99, 0.33, 0.21)
