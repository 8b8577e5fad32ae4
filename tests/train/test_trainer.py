"""The Trainer: a schedule sized by the batches it really trains on, and the step users get."""

import pytest
import torch

from squeezelab.data import DataConfig, open_dataset
from squeezelab.models.config import ModelConfig
from squeezelab.train.config import TrainConfig
from squeezelab.train.trainer import Trainer


@pytest.mark.parametrize("images, batch", [(100, 32), (80, 32), (128, 32), (130, 32), (31, 32), (1000, 64)])
def test_num_batches_is_the_number_of_batches_an_epoch_yields(images, batch):
    data = open_dataset(DataConfig(f"synthetic:n={images},classes=2,size=8", val_fraction=0.0 + 1 / images))
    for split in ("train", "val"):
        yielded = sum(1 for _ in data.batches(split, batch, train=split == "train"))
        assert data.num_batches(split, batch) == yielded, (split, len(getattr(data, split)))


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")
def test_the_last_scheduled_step_still_learns_on_a_small_photo_folder():
    data = open_dataset(DataConfig("synthetic:n=125,classes=5,size=12", val_fraction=0.2))
    assert len(data.train) == 100
    config = TrainConfig.given(epochs=6, batch_size=32, lr=0.1, warmup_epochs=0.5, schedule="cosine", device="cpu")
    trainer = Trainer(ModelConfig("squeezenet_cifar", {"num_classes": 5}).build(), data, config)
    rates = []
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda *a, **k: (rates.append(trainer.optimizer.param_groups[0]["lr"]), step(*a, **k))[1]
    trainer.fit(validate=False)
    assert len(rates) == 6 * 4 == trainer.steps_per_epoch * config.epochs  # 100 images at 32: 3 full + 1 ragged
    assert rates[-1] > 0 and min(rates) > 0


def test_the_trainer_uses_the_fused_optimizer_the_benchmarks_time():
    data = open_dataset(DataConfig("synthetic:n=40,classes=2,size=12"))
    config = TrainConfig.given(batch_size=8, lr=0.1, device="cpu")
    trainer = Trainer(ModelConfig("squeezenet_cifar", {"num_classes": 2}).build(), data, config)
    assert trainer.optimizer.defaults.get("fused") is True
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss = trainer.train_step(*next(data.batches("train", 8)))
    assert loss > 0 and any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_a_bf16_trained_model_reports_its_fp32_accuracy(monkeypatch):
    from squeezelab import runtime
    from squeezelab.evaluate import evaluate

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)  # as on an AMX CPU, on every CPU
    data = open_dataset(DataConfig("synthetic:n=64,classes=2,size=12"))
    config = TrainConfig.given(batch_size=16, lr=0.05, device="cpu")
    trainer = Trainer(ModelConfig("squeezenet_cifar", {"num_classes": 2}).build(), data, config)
    assert trainer.precision == runtime.Precision("bf16", "amx_bf16")
    seen = []
    forward = trainer.model.forward
    trainer.model.forward = lambda x: (seen.append(torch.is_autocast_enabled("cpu")), forward(x))[1]
    row, val = trainer.epoch(1)
    assert seen and all(seen[:-1]) and not seen[-1]  # trained under autocast, validated without
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert val.top1 == evaluate(trainer.model, data, speed=runtime.SpeedConfig(amp="off")).top1 == row["val_acc"]
