import pytest
import torch
from PIL import Image

from squeezelab.errors import BadFileError, SqueezelabError
from squeezelab.models import WEIGHTS, create_model
from squeezelab.preprocessing import CAFFE_IMAGENET, TORCHVISION_IMAGENET


def test_records_carry_their_preprocessing():
    assert WEIGHTS["squeezenet1_0.IMAGENET1K_V1"].preprocessing == TORCHVISION_IMAGENET
    caffe = WEIGHTS["squeezenet1_0.CAFFE_IMAGENET1K"].preprocessing
    assert caffe.channel_order == "BGR" and caffe.pixel_range == 255.0 and caffe.crop == 227
    assert caffe.mean == (104.0, 117.0, 123.0)


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_record_parameter_counts_match_models(name):
    record = WEIGHTS[f"{name}.IMAGENET1K_V1"]
    assert sum(p.numel() for p in create_model(name).parameters()) == record.num_params


def test_caffe_preprocessing_gives_bgr_minus_mean():
    image = Image.new("RGB", (300, 260), (200, 100, 50))  # R, G, B
    x = CAFFE_IMAGENET.images_to_batch([image])
    assert x.shape == (1, 3, 227, 227)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([50 - 104.0, 100 - 117.0, 200 - 123.0]))
    y = TORCHVISION_IMAGENET.images_to_batch([image.convert("L")])
    assert y.shape == (1, 3, 224, 224)


def test_weights_from_a_local_file_set_preprocessing(tmp_path):
    source = create_model("squeezenet1_0")
    path = tmp_path / "converted_caffe.pth"
    torch.save(source.state_dict(), path)
    model = create_model("squeezenet1_0", weights="CAFFE_IMAGENET1K", weights_file=str(path))
    assert model.record.preprocessing == CAFFE_IMAGENET
    assert torch.equal(model.features[0].weight, source.features[0].weight)
    plain = create_model("squeezenet1_0", weights=str(path))
    assert plain.record.preprocessing == TORCHVISION_IMAGENET


def test_bad_weights_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(BadFileError):
        create_model("squeezenet1_0", weights=str(junk))
    with pytest.raises(SqueezelabError, match="neither a file nor a known record"):
        create_model("squeezenet1_0", weights="nope")
    with pytest.raises(SqueezelabError, match="no download address"):
        create_model("squeezenet1_0", weights="CAFFE_IMAGENET1K")
