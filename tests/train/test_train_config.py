import pytest

from squeezelab.errors import SqueezelabError, SqueezelabWarning
from squeezelab.train.config import TrainConfig


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
        assert TrainConfig(batch_size=64).fitted(48).batch_size == 48
    assert TrainConfig(batch_size=16).fitted(48).batch_size == 16
