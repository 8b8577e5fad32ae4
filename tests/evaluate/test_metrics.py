"""The arithmetic of evaluation, on logits and labels written by hand."""

import math

import pytest
import torch

from squeezelab.errors import SqueezelabError
from squeezelab.evaluate.metrics import batch_sums, result_from_sums


def test_sums_of_two_batches_give_accuracy_loss_and_the_confusion_matrix():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
    labels = torch.tensor([0, 1, 0, 2])
    sums = batch_sums(logits[:2], labels[:2], 3) + batch_sums(logits[2:], labels[2:], 3)
    result = result_from_sums(sums, ["a", "b", "c"])
    assert result.top1 == 0.75 and result.count == 4 and result.top5 is None
    assert result.confusion == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert [c["recall"] for c in result.per_class] == [0.5, 1.0, 1.0]
    assert [c["precision"] for c in result.per_class] == [1.0, 0.5, 1.0]
    expected_loss = torch.nn.functional.cross_entropy(logits, labels).item()
    assert math.isclose(result.loss, expected_loss, rel_tol=1e-6)


def test_no_images_is_a_clear_error():
    with pytest.raises(SqueezelabError, match="no images"):
        result_from_sums(torch.zeros(3 + 4), ["a", "b"])
