import pytest

from squeezelab.errors import SqueezelabError, SqueezelabWarning
from squeezelab.train.config import TrainConfig
from squeezelab.train.recipe import fitted, recipe_values, resolve


def test_resumed_keeps_or_extends_the_total():
    assert TrainConfig(epochs=5).resumed(2, None).epochs == 5
    assert TrainConfig(epochs=1).resumed(1, 3, device="cpu").epochs == 3


@pytest.mark.parametrize("recorded, done, asked, words", [
    (1, 1, None, "trained all 1 epochs"),
    (1, 1, 1, "trained all 1 epochs"),
    (5, 3, 2, "already trained 3 epochs"),
])
def test_resumed_refuses_a_run_with_nothing_left(recorded, done, asked, words):
    with pytest.raises(SqueezelabError, match=words):
        TrainConfig(epochs=recorded).resumed(done, asked)


def test_a_batch_larger_than_the_data_is_reduced_with_a_warning():
    with pytest.warns(SqueezelabWarning, match="larger than the 48 training images"):
        assert fitted(TrainConfig(batch_size=64), 48).batch_size == 48
    assert fitted(TrainConfig(batch_size=16), 48).batch_size == 16


@pytest.mark.parametrize("size, weights, recipe", [
    (32, None, "small-images"), (64, None, "small-images"), (16, None, "small-images"),
    (65, None, "scratch"), (224, None, "scratch"), (32, "m.pt", "fine-tune"),
])
def test_the_recipe_follows_the_image_size_and_the_weights(size, weights, recipe):
    assert recipe_values(TrainConfig.for_run(weights), size, 50_000).recipe == recipe


def test_the_small_image_recipe_on_cifar10_and_on_digits():
    cifar = recipe_values(TrainConfig(), 32, 50_000)
    assert (cifar.batch_size, cifar.lr, cifar.schedule, cifar.translate, cifar.label_smoothing) == (512, 0.4, "linear", 2, 0.2)
    assert cifar.whiten_stem and not recipe_values(TrainConfig(), 224, 50_000).whiten_stem
    digits = recipe_values(TrainConfig(), 16, 1438)  # 16 steps an epoch at least: batch 64, lr scaled with it
    assert (digits.batch_size, digits.lr) == (64, 0.05)


def test_values_given_win_and_lr_follows_a_given_batch():
    config = recipe_values(TrainConfig.for_run(None, batch_size=128, epochs=3, label_smoothing=0.0), 32, 50_000)
    assert (config.batch_size, config.lr, config.epochs, config.label_smoothing) == (128, 0.1, 3, 0.0)
    assert recipe_values(TrainConfig(lr=0.3, batch_size=64), 32, 50_000).lr == 0.3


def test_a_resolved_config_is_kept_as_recorded():
    recorded = resolve(TrainConfig(), 224, 1000)
    assert resolve(recorded, 32, 50_000) == recorded
    assert resolve(TrainConfig.from_dict(recorded.to_dict()), 32, 10) == recorded


def test_bad_values_are_refused_before_the_recipe_fills_the_rest():
    with pytest.raises(SqueezelabError, match="--schedule must be one of"):
        TrainConfig(schedule="step")
    with pytest.raises(SqueezelabError, match="--translate must be >= 0"):
        TrainConfig(translate=-1)
    with pytest.raises(SqueezelabError, match="--cutout must be >= 0"):
        TrainConfig(cutout=-2)
