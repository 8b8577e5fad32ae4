import json

import pytest
from helpers import one_line_error

from squeezelab.errors import SqueezelabError


def test_models_json_lists_every_model_with_params_and_macs(cli):
    result = cli("models", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    for name in ["squeezenet1_0", "squeezenet1_1", "squeezenet1_0_simple_bypass", "squeezenet1_1_complex_bypass",
                 "tv/mobilenet_v2", "tv/shufflenet_v2_x1_0", "tv/alexnet"]:
        assert name in rows
    assert rows["squeezenet1_0"]["params"] == 1_248_424
    assert abs(rows["squeezenet1_1"]["macs"] - 0.349e9) / 0.349e9 < 0.03


def test_summary_json_has_rows_and_totals(cli):
    result = cli("summary", "squeezenet1_1", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["total_params"] == 1_235_496 and data["total_macs"] > 0
    assert data["rows"][0]["name"] == "conv1"


def test_summary_prints_a_table(cli):
    result = cli("summary", "squeezenet1_0", "--input-size", "227")
    assert result.returncode == 0
    assert "fire9" in result.stdout and "GMACs" in result.stdout


@pytest.mark.parametrize(
    "args,expected",
    [
        (["summary", "squeezenet11"], "did you mean"),
        (["summary", "squeezenet1_0", "--input-size", "8"], "minimum is 21"),
        (["summary", "squeezenet1_0", "--bogus"], "unrecognized arguments: --bogus"),
        (["summary", "squeezenet1_0", "--input-size", "abc"], "invalid int value"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, args, expected):
    one_line_error(cli(*args), expected)


def test_debug_lets_the_error_through_for_its_traceback(cli):
    with pytest.raises(SqueezelabError, match="did you mean"):
        cli("--debug", "summary", "squeezenet11")
