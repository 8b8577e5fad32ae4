"""Files written by an earlier squeezelab still load and compute what they computed then."""

import json
from pathlib import Path

import pytest
import torch

from squeezelab.data.digits import load_digits_tensor
from squeezelab.loading import load_model

FIXTURES = Path(__file__).parent / "fixtures" / "main-7e30580"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.mark.parametrize("name", ["model.pt", "model.sqz"])
def test_old_files_load_and_predict_the_same(name):
    model = load_model(FIXTURES / name)
    images = load_digits_tensor(16)[0][:16].float() / 255.0
    mean = torch.tensor(model.record.preprocessing.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.record.preprocessing.std).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = model((images - mean) / std)
    expected = torch.tensor(EXPECTED[name]["logits"])
    assert logits.argmax(1).tolist() == EXPECTED[name]["top1"]
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
