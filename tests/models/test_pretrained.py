"""`--weights` by record name: resolved against the model, one line when the file cannot be had."""

from __future__ import annotations

import urllib.error

import pytest

from squeezelab.errors import SqueezelabError
from squeezelab.models.weights import WEIGHTS, pretrained_state_dict


def test_a_record_without_download_names_its_file():
    from squeezelab.models.weights import offline_message

    record = WEIGHTS["squeezenet1_0.CAFFE_IMAGENET1K"]
    assert WEIGHTS["squeezenet1_0.DC_IMAGENET1K"].preprocessing.channel_order == "BGR"
    with pytest.raises(SqueezelabError, match="has no download address") as info:
        pretrained_state_dict("CAFFE_IMAGENET1K", "squeezenet1_0")
    assert "\n" not in str(info.value) and str(info.value) == offline_message(record)


def test_offline_download_names_the_file_and_the_cache_folder(monkeypatch):
    import torch

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(SqueezelabError, match="put squeezenet1_1-b8a52dc0.pth in .*checkpoints/") as info:
        pretrained_state_dict("IMAGENET1K_V1", "squeezenet1_1")
    assert "\n" not in str(info.value)


def test_short_names_shared_by_two_models_need_the_model():
    with pytest.raises(SqueezelabError, match="ambiguous"):
        pretrained_state_dict("IMAGENET1K_V1")
    with pytest.raises(SqueezelabError, match="neither a file nor a known record"):
        pretrained_state_dict("NO_SUCH_WEIGHTS", "squeezenet1_0")
