import json

import pytest

from squeezelab.compress.config import (CalibConfig, ChannelPruneConfig, CompressConfig, FinetuneConfig, PruneConfig,
                                        QuantConfig)
from squeezelab.errors import SqueezelabError


@pytest.mark.parametrize("config", [
    PruneConfig(0.5, {"classifier.1": 0.2}, "global"),
    QuantConfig(bits=4, fc_bits=2, layer_bits={"features.0": 8}, iterations=5),
    ChannelPruneConfig(0.5, 0.25),
    CompressConfig(sparsity_3x3=0.8, bits=5, fc_bits=4, densities={"features.0": 0.9}, layer_policy="uniform",
                   prune_steps=2, raw_dtype="float32", fold_batch_norm=False),
    FinetuneConfig(lr=0.01, centroid_lr=0.001, batch_size=32, weight_decay=0.0, label_smoothing=0.0),
    CalibConfig(target_bytes=450_000, calibration_images=64, held_out_images=10, sensitivity="layer", seed=3),
])
def test_configs_round_trip_through_json(config):
    assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_compress_config_reads_the_older_sparsity_key():
    assert CompressConfig.from_dict({"sparsity": 0.7, "bits": 4}) == CompressConfig(sparsity_3x3=0.7, bits=4)


@pytest.mark.parametrize("bad", [{"sparsity_3x3": 1.0}, {"bits": 9}, {"prune_steps": 0}, {"layer_policy": "x"}])
def test_bad_settings_are_one_clear_error(bad):
    with pytest.raises(SqueezelabError):
        CompressConfig(**bad)


@pytest.mark.parametrize("config, bad", [(FinetuneConfig, {"lr": 0.0}), (FinetuneConfig, {"batch_size": 0}),
                                         (CalibConfig, {"calibration_images": 0}), (CalibConfig, {"sensitivity": "x"})])
def test_bad_tuning_or_calibration_settings_are_one_clear_error(config, bad):
    with pytest.raises(SqueezelabError):
        config(**bad)


def test_the_command_line_reads_its_defaults_from_the_configs():
    import argparse

    from squeezelab.cli.compress import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["compress", "m.pt", "-o", "m.sqz"])
    tuning, calib = FinetuneConfig(), CalibConfig()
    assert (args.lr, args.centroid_lr, args.batch_size) == (tuning.lr, tuning.centroid_lr, tuning.batch_size)
    assert (args.target_bytes, args.calib_images, args.held_out_images, args.distill_epochs, args.sensitivity) == (
        calib.target_bytes, calib.calibration_images, calib.held_out_images, calib.distill_epochs, calib.sensitivity)
    assert (args.sparsity_3x3, args.bits, args.prune_steps) == (CompressConfig().sparsity_3x3, CompressConfig().bits,
                                                                CompressConfig().prune_steps)


def test_the_configs_need_no_torch():
    import subprocess
    import sys

    code = "import sys, squeezelab.compress.config; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_layer_filter_is_an_argument_not_part_of_the_config():
    from squeezelab import create_model
    from squeezelab.compress import overall_density, prune

    model = create_model("squeezenet1_1", num_classes=4)
    prune(model, PruneConfig(sparsity=0.5), filter_fn=lambda name, module: name == "classifier.1")
    assert float((model.classifier[1].weight == 0).float().mean()) == pytest.approx(0.5, abs=0.01)
    assert float((model.features[0].weight == 0).float().mean()) < 0.01
    assert overall_density(model) > 0.9
