import pytest
import torch

from squeezelab import create_model
from squeezelab.compress.codec import plain_state_dict
from squeezelab.compress.pipeline import CompressConfig, compress_model
from squeezelab.compress.policy import policy_densities
from squeezelab.errors import SqueezelabError
from squeezelab.report.compression import format_compression_report
from squeezelab.report.plots import plot_weight_distribution


def test_pipeline_finetunes_twice_and_reports_the_decoded_file(tmp_path):
    model = create_model("squeezenet_meta", base_e=32, incr_e=32, num_classes=4)
    calls = []
    x = torch.randn(8, 3, 24, 24)
    y = torch.randint(0, 4, (8,))

    def finetune(m, epochs):
        calls.append(epochs)
        opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.01)
        m.train()
        for _ in range(epochs):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
        m.eval()

    def accuracy(m):
        with torch.no_grad():
            return float((m.eval()(x).argmax(1) == y).float().mean())

    before = {k: v.clone() for k, v in model.state_dict().items()}
    data, report, decoded = compress_model(model, CompressConfig(sparsity_3x3=0.7, bits=5, finetune_epochs=2, layer_policy="uniform",
                                                                         prune_steps=1, raw_dtype="float32"),
                                           finetune=finetune, evaluate=accuracy)
    assert calls == [2, 2]
    assert report.compressed_bytes == len(data)
    assert report.ratio > 5  # 5-bit, 30% kept; biases and small layers weigh more in a tiny model
    assert report.acc_after == accuracy(decoded)  # measured on the decoded file, not the model in memory
    with torch.no_grad():
        assert torch.equal(decoded(x), model.eval()(x))  # the file holds exactly the fine-tuned model
    summary = report.to_dict()
    for key in ("original_bytes", "compressed_bytes", "ratio", "acc_before", "acc_after"):
        assert key in summary
    shared = [layer for layer in summary["layers"] if layer["kind"] == "shared"]
    assert all(abs(layer["density"] - 0.3) < 0.03 and layer["bits"] == 5 for layer in shared)
    assert "x smaller" in format_compression_report(report)
    plot_weight_distribution(before, plain_state_dict(decoded), tmp_path / "w.png")
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"


def test_gradual_pipeline_recalibrates_after_every_change_and_stores_compactly():
    torch.manual_seed(0)
    model = create_model("squeezenet_meta", base_e=16, incr_e=16, num_classes=3, batch_norm=True)
    x = torch.randn(16, 3, 24, 24)
    events = []

    def calibrate(m):
        from squeezelab.compress.batchnorm import recalibrate_batch_norm_

        events.append("calibrate")
        recalibrate_batch_norm_(m, [(x, None)])

    data, report, decoded = compress_model(model, CompressConfig(sparsity_3x3=0.9, bits=3, prune_steps=3, finetune_epochs=1),
                                           finetune=lambda m, e: events.append("finetune"), calibrate=calibrate)
    assert events == ["calibrate", "finetune", "calibrate"] * 4  # 3 pruning rounds, then weight sharing
    densities = {s.name.removesuffix(".weight"): s.density for s in report.layers if s.kind == "shared"}
    for name, target in policy_densities(create_model("squeezenet_meta", base_e=16, incr_e=16, num_classes=3, batch_norm=True), 0.9).items():
        assert abs(densities[name] - target) < 0.02, name
    raw = [s for s in report.layers if s.kind == "raw" and "running" in s.name]
    assert raw and all(s.bytes == 0 for s in raw)  # folded: constant statistics cost nothing
    with torch.no_grad():
        assert torch.allclose(decoded(x), model.eval()(x), atol=0.05)  # float16 batch norm


@pytest.mark.parametrize("bad", [{"prune_steps": 0}, {"layer_policy": "x"}, {"raw_dtype": "int8"}])
def test_bad_recipe_settings_are_one_clear_error(bad):
    with pytest.raises(SqueezelabError):
        CompressConfig(**bad)


def test_compensated_pipeline_keeps_the_policy_and_bits_and_chooses_other_weights_than_magnitude():
    import copy

    torch.manual_seed(0)
    model = create_model("squeezenet_meta", base_e=16, incr_e=16, num_classes=3).eval()
    x = torch.randn(32, 3, 24, 24)
    with torch.no_grad():
        reference = model(x)
    config = CompressConfig(sparsity_3x3=0.8, bits=3, prune_steps=2, finetune_epochs=0, raw_dtype="float32")
    kept = {}
    for method in ("gptq", "kmeans"):
        _data, report, decoded = compress_model(copy.deepcopy(model), CompressConfig.from_dict({**config.to_dict(), "method": method}),
                                               inputs=lambda: [x[:16], x[16:]])
        densities = {s.name.removesuffix(".weight"): s.density for s in report.layers if s.kind == "shared"}
        for name, target in policy_densities(model, 0.8).items():
            assert abs(densities[name] - target) < 0.02, (method, name)
        assert {s.bits for s in report.layers if s.kind == "shared"} == {3}
        kept[method] = decoded.features[3].expand3x3.weight != 0
        with torch.no_grad():
            assert decoded.eval()(x).shape == reference.shape
    assert not torch.equal(kept["gptq"], kept["kmeans"])  # compensation picks by saliency, not magnitude alone
