import torch
from torch import nn

from squeezelab.data import open_dataset
from squeezelab.evaluate import evaluate


def test_flip_averages_the_logits_of_each_image_and_its_mirror():
    data = open_dataset("synthetic:n=40,classes=2,size=8")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)).eval()
    images, labels = next(data.batches("val", 256, train=False))
    with torch.no_grad():
        averaged = (model(images) + model(images.flip(3))) / 2
    expected = (averaged.argmax(1) == labels).float().mean().item()
    assert evaluate(model, data, flip=True, classes=data.classes).top1 == expected
    plain = (model(images).argmax(1) == labels).float().mean().item()
    assert evaluate(model, data).top1 == plain
