import functools
import struct

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezelab import create_model, load_model
from squeezelab.compress import PruneConfig, QuantConfig, decode, encode, finalize_, load, prune, quantize_, save
from squeezelab.compress.codec import PREFIX, plain_state_dict, sparse_entries
from squeezelab.errors import BadFileError, SqueezelabError


def compressed_model(bits=4, **options):
    model = create_model("squeezenet1_1", num_classes=10, **options)
    model.record = model.record.replace(classes=[f"class{i}" for i in range(10)])
    prune(model, PruneConfig(sparsity=0.67))
    return quantize_(model, QuantConfig(bits=bits)).eval()


@pytest.fixture(scope="module")
def sqz_bytes():
    torch.manual_seed(0)
    return encode(compressed_model())[0]


@functools.lru_cache(maxsize=1)
def tiny_sqz() -> bytes:
    """A small but complete .sqz (every kind of entry) so fuzzing spends its time on parsing."""
    torch.manual_seed(0)
    model = create_model("squeezenet_meta", base_e=16, incr_e=16, num_classes=3, batch_norm=True)
    prune(model, PruneConfig(sparsity=0.5))
    return encode(quantize_(model, QuantConfig(bits=3)).eval())[0]


def test_sparse_entries_use_fillers_for_long_gaps():
    import numpy as np

    mask = np.zeros(40, dtype=bool)
    mask[[0, 1, 20, 39]] = True
    index = np.arange(40) % 3
    gaps, symbols = sparse_entries(mask, index, 3, 2)
    assert (gaps <= 3).all()
    positions = np.cumsum(gaps + 1) - 1
    assert positions[symbols < 3].tolist() == [0, 1, 20, 39]
    assert symbols[symbols < 3].tolist() == index[[0, 1, 20, 39]].tolist()


@pytest.mark.parametrize("options", [{}, {"batch_norm": True, "bypass": "complex"}])
def test_roundtrip_gives_exactly_the_quantized_weights_and_predictions(tmp_path, options):
    model = compressed_model(**options)
    expected = plain_state_dict(model)
    save(model, tmp_path / "m.sqz")
    loaded = load(tmp_path / "m.sqz")
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.record.classes == model.record.classes
    assert loaded.record.preprocessing == model.record.preprocessing
    assert not loaded.training


def test_load_model_and_registry_accept_sqz(tmp_path):
    save(compressed_model(), tmp_path / "m.sqz")
    model = load_model(tmp_path / "m.sqz")
    assert model.record.classes[0] == "class0" and model.record.name == "squeezenet1_1"


def test_file_is_much_smaller_than_fp32(sqz_bytes):
    fp32 = sum(t.numel() * 4 for t in finalize_(compressed_model()).state_dict().values())
    assert len(sqz_bytes) * 8 < fp32  # 4-bit, a third kept: well over 8x


def expect_bad(data, fragment):
    with pytest.raises(BadFileError) as info:
        decode(data, "x.sqz")
    message = str(info.value)
    assert "\n" not in message and fragment in message
    return message


def test_truncated_file(sqz_bytes):
    expect_bad(sqz_bytes[: len(sqz_bytes) // 2], "truncated")
    expect_bad(sqz_bytes[:10], "truncated")


def test_corrupted_byte_fails_the_checksum(sqz_bytes):
    data = bytearray(sqz_bytes)
    data[len(data) // 2] ^= 0x40
    expect_bad(bytes(data), "checksum")


def test_wrong_version(sqz_bytes):
    data = bytearray(sqz_bytes)
    struct.pack_into("<H", data, 8, 99)
    expect_bad(bytes(data), "version 99")


@pytest.mark.parametrize("data", [b"", b"hello world, not a model", b"PK\x03\x04" + bytes(100)])
def test_not_a_sqz_file(data):
    expect_bad(data, "not a .sqz file")


def test_cli_loader_reports_bad_file_in_one_line(tmp_path, sqz_bytes):
    path = tmp_path / "bad.sqz"
    path.write_bytes(sqz_bytes[:-5])
    with pytest.raises(BadFileError, match="truncated"):
        load_model(path)
    with pytest.raises(SqueezelabError, match="does not exist"):
        load(tmp_path / "missing.sqz")


def rewrite_header(data: bytes, change) -> bytes:
    """A re-signed file with a modified header: what an attacker can produce."""
    import hashlib
    import json

    _, version, flags, header_len, _ = PREFIX.unpack_from(data)
    header = json.loads(data[PREFIX.size : PREFIX.size + header_len])
    change(header)
    body = data[PREFIX.size + header_len : -32]
    new_header = json.dumps(header).encode()
    total = PREFIX.size + len(new_header) + len(body) + 32
    content = PREFIX.pack(data[:8], version, flags, len(new_header), total) + new_header + body
    return content + hashlib.sha256(content).digest()


def test_header_cannot_make_the_loader_read_other_files(sqz_bytes):
    data = rewrite_header(sqz_bytes, lambda h: h["model"]["options"].update(weights_file="/etc/passwd"))
    expect_bad(data, "not allowed")


def test_header_shapes_must_match_the_architecture(sqz_bytes):
    data = rewrite_header(sqz_bytes, lambda h: h["model"]["options"].update(num_classes=11))
    expect_bad(data, "invalid header")
    huge = rewrite_header(sqz_bytes, lambda h: h["model"]["options"].update(num_classes=10**9))
    expect_bad(huge, "invalid header")


def test_unknown_model_name_is_a_bad_file(sqz_bytes):
    expect_bad(rewrite_header(sqz_bytes, lambda h: h["model"].update(name="os.system")), "does not build")


def _only_our_errors(data: bytes) -> None:
    try:
        decode(data, "fuzz.sqz")
    except SqueezelabError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_fuzz_random_bytes_only_raise_squeezelab_errors(data):
    _only_our_errors(data)
    _only_our_errors(b"\x89SQZ\r\n\x1a\n" + data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_files_only_raise_squeezelab_errors(data):
    blob = bytearray(tiny_sqz())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(blob) - 1))
        blob[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    _only_our_errors(bytes(blob[:cut]) if data.draw(st.booleans()) else bytes(blob))


HEADER_MUTATIONS = st.sampled_from(["model", "classes", "preprocessing", "gap_bits", "body_bytes", "tensors", "metadata"])
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fuzz_resigned_headers_only_raise_squeezelab_errors(data):
    """Valid checksums, hostile JSON: every field of the directory replaced by junk."""
    import json

    sqz_bytes = tiny_sqz()
    header = json.loads(sqz_bytes[PREFIX.size : PREFIX.size + PREFIX.unpack_from(sqz_bytes)[3]])
    key = data.draw(HEADER_MUTATIONS)
    tensor = data.draw(st.integers(0, len(header["tensors"]) - 1))
    field = data.draw(st.sampled_from(sorted(header["tensors"][tensor])))
    junk = data.draw(JUNK)

    def change(h):
        if data.draw(st.booleans()):
            h["tensors"][tensor][field] = junk
        else:
            h[key] = junk

    _only_our_errors(rewrite_header(sqz_bytes, change))


def test_nan_preprocessing_is_refused(sqz_bytes):
    expect_bad(rewrite_header(sqz_bytes, lambda h: h["preprocessing"].update(std=[float("nan")] * 3)), "preprocessing")


@pytest.mark.slow
@pytest.mark.parametrize("bits, paper_bytes", [(8, 660_000), (6, 470_000)])
def test_squeezenet1_0_at_paper_settings_fits_the_papers_size(bits, paper_bytes):
    import time

    model = create_model("squeezenet1_0").eval()
    prune(model, PruneConfig(sparsity=0.67))
    quantize_(model, QuantConfig(bits=bits))
    start = time.perf_counter()
    data, _ = encode(model)
    loaded = decode(data)
    assert time.perf_counter() - start < 20  # goal: < 10 s each on 2 idle cores
    assert len(data) <= paper_bytes
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def compact(data: bytes) -> tuple[int, dict]:
    import json
    import zlib

    _, version, flags, header_len, _ = PREFIX.unpack_from(data)
    text = data[PREFIX.size : PREFIX.size + header_len]
    return flags, json.loads(zlib.decompress(text) if flags & 1 else text)


def test_compact_encoding_is_smaller_and_decodes_close():
    torch.manual_seed(0)
    model = compressed_model(batch_norm=True)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # trained-looking statistics, not constants
            for t in (m.weight, m.bias, m.running_mean, m.running_var):
                t.data.uniform_(0.5, 1.5)
    plain, plain_stats = encode(model)
    small, stats = encode(model, raw_dtype="float16", deflate_header=True)
    raw_bytes = [sum(s.bytes for s in st if s.kind == "raw") for st in (plain_stats, stats)]
    assert 0 < raw_bytes[1] <= raw_bytes[0] / 2
    assert PREFIX.unpack_from(small)[3] < PREFIX.unpack_from(plain)[3] / 3  # the deflated header
    flags, header = compact(small)
    assert flags == 1 and any("fill" in t for t in header["tensors"])  # e.g. num_batches_tracked
    assert {t.get("dtype") for t in header["tensors"] if t["kind"] == "raw"} == {"float16", "int64"}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(decode(small)(x), model(x), atol=1e-2)
    assert decode(encode(model, deflate_header=True)[0]).state_dict()["features.1.running_var"].dtype == torch.float32


def test_version_1_files_still_load(sqz_bytes):
    import hashlib

    content = bytearray(sqz_bytes[:-32])
    struct.pack_into("<H", content, 8, 1)
    data = bytes(content) + hashlib.sha256(bytes(content)).digest()
    assert decode(data).num_classes == 10


def resign(content: bytes) -> bytes:
    import hashlib

    return content + hashlib.sha256(content).digest()


@pytest.mark.parametrize("junk", [b"not zlib at all", None])
def test_damaged_or_oversized_deflated_header_is_a_bad_file(sqz_bytes, monkeypatch, junk):
    import zlib

    from squeezelab.compress import codec

    _, _, _, header_len, _ = PREFIX.unpack_from(sqz_bytes)
    body = sqz_bytes[PREFIX.size + header_len : -32]
    if junk is None:  # a valid stream that inflates past the limit
        monkeypatch.setattr(codec, "MAX_HEADER_BYTES", 1000)
        junk = zlib.compress(b" " * 5000)
    total = PREFIX.size + len(junk) + len(body) + 32
    data = resign(PREFIX.pack(sqz_bytes[:8], 2, 1, len(junk), total) + junk + body)
    expect_bad(data, "header")


def test_unknown_flags_are_refused(sqz_bytes):
    content = bytearray(sqz_bytes[:-32])
    struct.pack_into("<H", content, 10, 4)
    expect_bad(resign(bytes(content)), "flags")


def test_bad_fill_values_are_refused():
    import json
    import zlib

    model = compressed_model(batch_norm=True)
    data, _ = encode(model, raw_dtype="float16", deflate_header=True)
    _, header = compact(data)
    for bad in ("x", True, 1e400, [1], 1e6):  # 1e6 overflows float16
        entry = next(t for t in header["tensors"] if "fill" in t)
        entry["fill"] = bad
        new = zlib.compress(json.dumps(header).encode())
        _, version, flags, header_len, _ = PREFIX.unpack_from(data)
        body = data[PREFIX.size + header_len : -32]
        total = PREFIX.size + len(new) + len(body) + 32
        expect_bad(resign(PREFIX.pack(data[:8], version, flags, len(new), total) + new + body), "fill")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_fuzz_deflated_headers_only_raise_squeezelab_errors(junk, deflate_it):
    import zlib

    sqz_bytes = tiny_sqz()
    header_len = PREFIX.unpack_from(sqz_bytes)[3]
    body = sqz_bytes[PREFIX.size + header_len : -32]
    header = zlib.compress(junk) if deflate_it else junk
    total = PREFIX.size + len(header) + len(body) + 32
    _only_our_errors(resign(PREFIX.pack(sqz_bytes[:8], 2, 1, len(header), total) + header + body))
