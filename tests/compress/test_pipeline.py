import torch

from squeezelab import create_model
from squeezelab.compress.codec import plain_state_dict
from squeezelab.compress.pipeline import CompressConfig, compress_model, format_report, plot_weight_distribution


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
    data, report, decoded = compress_model(model, CompressConfig(sparsity=0.7, bits=5, finetune_epochs=2),
                                           finetune=finetune, evaluate=accuracy)
    assert calls == [2, 2]
    assert report.compressed_bytes == len(data)
    assert report.ratio > 5  # 5-bit, 30% kept; biases and small layers weigh more in a tiny model
    assert 0.0 <= report.acc_after <= 1.0
    with torch.no_grad():
        assert torch.equal(decoded(x), model.eval()(x))  # the file holds exactly the fine-tuned model
    summary = report.to_dict()
    for key in ("original_bytes", "compressed_bytes", "ratio", "acc_before", "acc_after"):
        assert key in summary
    shared = [layer for layer in summary["layers"] if layer["kind"] == "shared"]
    assert all(abs(layer["density"] - 0.3) < 0.03 and layer["bits"] == 5 for layer in shared)
    assert "x smaller" in format_report(report)
    png = plot_weight_distribution(before, plain_state_dict(decoded), tmp_path / "w.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
