"""The released Deep Compression SqueezeNet: decoded independently here and compared with the
converter, run against a torchvision model built from that independent decoding, written as .pt
and .sqz, and fed malformed files."""

from __future__ import annotations

import os
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from squeezelab.errors import BadFileError
from squeezelab.models.weights import WEIGHTS, packaged_file

# the shared data folder beside the repository; SQUEEZELAB_SHARED_DATA points elsewhere (a worktree)
DATA = Path(os.environ.get("SQUEEZELAB_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
NET = packaged_file(WEIGHTS["squeezenet1_0.DC_IMAGENET1K"])  # the release, shipped with squeezelab (SHA-256 checked)
CIFAR = DATA / "cifar10-jpg.tar.gz"


def reference_decode(data: bytes, shapes: dict[str, tuple]) -> dict[str, torch.Tensor]:
    """A plain, loop-based reading of the format as its README states it."""
    names = list(shapes)
    counts = struct.unpack_from(f"<{len(names)}I", data, 0)
    offset = 4 * len(names)
    state = {}
    for name, count in zip(names, counts):
        shape = shapes[name]
        codebook = struct.unpack_from("<256f", data, offset)
        offset += 1024
        bias = struct.unpack_from(f"<{shape[0]}f", data, offset)
        offset += 4 * shape[0]
        indices = data[offset : offset + count]
        offset += count
        nibbles = data[offset : offset + (count + 1) // 2]
        offset += (count + 1) // 2
        flat = [0.0] * int(np.prod(shape))
        position = -1
        for i in range(count):
            byte = nibbles[i // 2]
            gap = byte & 15 if i % 2 == 0 else byte >> 4
            position += gap + 1
            flat[position] = codebook[indices[i]]
        state[f"{name}.weight"] = torch.tensor(flat, dtype=torch.float32).view(shape)
        state[f"{name}.bias"] = torch.tensor(bias, dtype=torch.float32)
    assert offset == len(data)
    return state


@pytest.fixture(scope="module")
def reference():
    import torchvision

    model = torchvision.models.squeezenet1_0(num_classes=1000)
    shapes = {k.removesuffix(".weight"): tuple(v.shape) for k, v in model.state_dict().items() if k.endswith("weight")}
    state = reference_decode(NET.read_bytes(), shapes)
    model.load_state_dict(state, strict=True)
    return state, model.eval()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A few real CIFAR-10 test photos (or, without the archive, synthetic ones)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    if CIFAR.is_file():
        with tarfile.open(CIFAR, "r:gz") as archive:
            members = (m for m in archive if m.isfile() and "/test/" in m.name)
            for i, member in zip(range(6), members):
                (folder / f"{i}.jpg").write_bytes(archive.extractfile(member).read())
    else:
        rng = np.random.default_rng(0)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    return sorted(folder.glob("*.jpg"))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from squeezelab.cli import main

    out = tmp_path_factory.mktemp("converted")
    assert main(["convert", str(NET), "-o", str(out / "m.pt")]) == 0
    assert main(["convert", str(NET), "-o", str(out / "m.sqz")]) == 0
    return out


def test_decoder_matches_an_independent_reading(reference):
    from squeezelab.models.released import decode_released_file

    expected, _ = reference
    state = decode_released_file(NET)
    assert list(state) == list(expected)
    for key in expected:
        assert torch.equal(state[key], expected[key]), key
    weights = [v for k, v in state.items() if k.endswith("weight")]
    assert sum(int((w != 0).sum()) for w in weights) == 415_921
    assert sum(w.numel() for w in weights) == 1_244_448


def _batch(model, paths):
    from PIL import Image

    return model.record.preprocessing.images_to_batch([Image.open(p) for p in paths])


def test_converted_checkpoint_computes_what_the_file_computes(reference, converted, images):
    import squeezelab
    from squeezelab.models.imagenet_classes import IMAGENET1K_IDS, IMAGENET1K_NAMES
    from squeezelab.preprocessing import CAFFE_IMAGENET
    from squeezelab.train.checkpoint import load_checkpoint

    _, ref_model = reference
    model = squeezelab.load_model(converted / "m.pt")
    assert model.record.preprocessing == CAFFE_IMAGENET
    assert model.record.classes == IMAGENET1K_NAMES
    checkpoint = load_checkpoint(converted / "m.pt")
    assert checkpoint["class_ids"] == list(IMAGENET1K_IDS)
    assert checkpoint["source"]["bytes"] == 675_763
    assert checkpoint["provenance"]["weights"] == "squeezenet1_0.DC_IMAGENET1K"
    x = _batch(model, images)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref_model(x), rtol=1e-5, atol=1e-5)


def test_sqz_keeps_the_codebooks_and_the_predictions(converted, images):
    import squeezelab

    dense = squeezelab.load_model(converted / "m.pt")
    packed = squeezelab.load_model(converted / "m.sqz")
    assert (converted / "m.sqz").stat().st_size < NET.stat().st_size  # Huffman coding on the same streams
    for key, value in dense.state_dict().items():
        assert torch.equal(packed.state_dict()[key], value), key  # lossless: same weights and biases
    x = _batch(dense, images)
    with torch.no_grad():
        assert torch.equal(packed(x).argmax(1), dense(x).argmax(1))
    assert packed.record.classes == dense.record.classes and packed.record.class_ids == dense.record.class_ids


def test_create_model_takes_the_record_with_either_file(converted):
    import squeezelab

    from_net = squeezelab.create_model("squeezenet1_0", weights="DC_IMAGENET1K", weights_file=NET)
    from_pt = squeezelab.create_model("squeezenet1_0", weights="DC_IMAGENET1K", weights_file=converted / "m.pt")
    assert from_net.record.preprocessing.channel_order == "BGR"
    for key, value in from_net.state_dict().items():
        assert torch.equal(from_pt.state_dict()[key], value), key


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:-1], "truncated"),
    (lambda d: d + b"\0", "unexpected bytes"),
    (lambda d: d[:50], "shorter than"),
    (lambda d: b"", "shorter than"),
    (lambda d: struct.pack("<I", 14_113) + d[4:], "declares 14113 weights"),
    (lambda d: struct.pack("<I", 20) + d[4:], "bytes its counts declare"),
])
def test_malformed_files_are_refused_in_one_line(damage, message):
    from squeezelab.models.released import decode_released

    with pytest.raises(BadFileError, match=message) as info:
        decode_released(damage(NET.read_bytes()), "x.net")
    assert "\n" not in str(info.value)


def test_positions_past_the_layer_are_refused():
    from squeezelab.models.released import LAYERS, decode_released

    data = bytearray(NET.read_bytes())
    first = struct.unpack_from("<I", data)[0]
    start = 4 * len(LAYERS) + 1024 + 4 * 96 + first  # conv1's gap bytes
    data[start : start + (first + 1) // 2] = b"\xff" * ((first + 1) // 2)  # every gap 15: runs past 14,112
    with pytest.raises(BadFileError, match="run past"):
        decode_released(bytes(data), "x.net")


def test_cli_reports_a_bad_file_and_a_bad_suffix_in_one_line(tmp_path, capsys):
    from squeezelab.cli import main

    bad = tmp_path / "bad.net"
    bad.write_bytes(NET.read_bytes()[:-7])
    assert main(["convert", str(bad), "-o", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated" in err
    assert main(["convert", str(NET), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "use .pt" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


def test_eval_matches_wordnet_folders_by_id_and_name(converted, images, tmp_path, capsys):
    from squeezelab.cli import main
    from squeezelab.evaluate.files import evaluate_file

    for folder in ("n02690373", "n04552348", "tabby"):  # airliner, warplane (by id), tabby cat (by name)
        (tmp_path / "photos" / folder).mkdir(parents=True)
        for i, path in enumerate(images[:5]):
            (tmp_path / "photos" / folder / f"{i}.jpg").write_bytes(path.read_bytes())
    result = evaluate_file(converted / "m.pt", str(tmp_path / "photos"))
    assert result["matched"] == {"n02690373": "airliner", "n04552348": "warplane", "tabby": "tabby"}
    assert result["classes"] == ["airliner", "warplane", "tabby"]
    assert len(result["confusion"]) == 3 and result["count"] == 15  # a folder it never saw: all of it
    assert [sum(row) + out for row, out in zip(result["confusion"], result["outside"])] == [5, 5, 5]
    (tmp_path / "photos" / "n99999999").mkdir()
    for i, path in enumerate(images[:5]):
        (tmp_path / "photos" / "n99999999" / f"{i}.jpg").write_bytes(path.read_bytes())
    assert main(["eval", str(converted / "m.pt"), "--data", str(tmp_path / "photos")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "n99999999" in err
