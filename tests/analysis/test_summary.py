import pytest

from squeezelab import create_model, summarize
from squeezelab.errors import SqueezelabError


@pytest.mark.parametrize("name,gmacs", [("squeezenet1_0", 0.819), ("squeezenet1_1", 0.349),
                                        ("tv/mobilenet_v2", 0.30), ("tv/shufflenet_v2_x1_0", 0.14)])
def test_totals_match_torchvision_published_figures(name, gmacs):
    s = summarize(create_model(name), 224)
    # within 3%, or within the rounding of torchvision's two-decimal figures for the peers
    assert abs(s.total_macs / 1e9 - gmacs) <= max(0.03 * gmacs, 0.005)


def test_rows_form_paper_table_1():
    s = summarize(create_model("squeezenet1_0"), 224)
    names = [r.name for r in s.rows]
    assert names == ["conv1", "maxpool1", "fire2", "fire3", "fire4", "maxpool4", "fire5", "fire6", "fire7",
                     "fire8", "maxpool8", "fire9", "conv10", "avgpool10"]
    rows = {r.name: r for r in s.rows}
    assert rows["conv1"].output_shape == [96, 109, 109]  # paper: 111x111 with Caffe's padding; torchvision 109
    assert (rows["fire2"].s1x1, rows["fire2"].e1x1, rows["fire2"].e3x3) == (16, 64, 64)
    assert rows["fire9"].output_shape == [512, 13, 13]
    assert sum(r.params for r in s.rows) == s.total_params == 1_248_424
    assert sum(r.macs for r in s.rows) == s.total_macs
    assert s.total_bytes == 4 * 1_248_424


def test_too_small_input_names_the_minimum():
    with pytest.raises(SqueezelabError, match="minimum is 21"):
        summarize(create_model("squeezenet1_0"), 20)
