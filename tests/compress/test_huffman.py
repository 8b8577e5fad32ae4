import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezelab.compress.huffman import MAX_CODE_LENGTH, code_lengths, huffman_decode, huffman_encode
from squeezelab.errors import BadFileError


def roundtrip(symbols):
    code = huffman_encode(np.asarray(symbols, dtype=np.int64))
    return code, huffman_decode(code.lengths, code.payload, code.count, code.bit_count)


def test_empty():
    code, out = roundtrip([])
    assert code.payload == b"" and code.count == 0 and out.size == 0


def test_one_symbol_costs_one_bit_each():
    code, out = roundtrip([7] * 1000)
    assert out.tolist() == [7] * 1000
    assert code.bit_count == 1000


def test_skewed_is_shorter_than_fixed_width():
    rng = np.random.default_rng(0)
    symbols = rng.geometric(0.5, size=20_000) - 1  # mostly 0, 1, 2
    code, out = roundtrip(symbols)
    assert np.array_equal(out, symbols)
    assert code.bit_count < 2.1 * len(symbols)  # entropy of Geometric(1/2) is 2 bits
    assert code.lengths[0] == 1


def test_all_256_symbols_uniform_take_8_bits():
    symbols = np.tile(np.arange(256), 10)
    code, out = roundtrip(symbols)
    assert np.array_equal(out, symbols)
    assert set(code.lengths.tolist()) == {8}


def test_code_lengths_are_limited():
    counts = np.array([2**i for i in range(40)])  # Fibonacci-like counts make a deep optimal tree
    lengths = code_lengths(counts)
    assert lengths.max() <= MAX_CODE_LENGTH
    assert np.sum(2.0 ** -lengths.astype(float)) <= 1.0


def test_corrupt_stream_raises_bad_file():
    code = huffman_encode(np.array([0, 1, 2, 3, 0, 0, 1]))
    with pytest.raises(BadFileError):
        huffman_decode(code.lengths, code.payload, code.count + 5, code.bit_count)
    with pytest.raises(BadFileError):
        huffman_decode(np.array([1, 1, 1], dtype=np.uint8), code.payload, 3, 3)  # over-subscribed


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=400))
def test_roundtrip_property(values):
    code, out = roundtrip(values)
    assert out.tolist() == values
    assert code.bit_count <= max(1, 16) * len(values)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=64), st.lists(st.integers(0, 17), max_size=20), st.integers(0, 600), st.integers(0, 600))
def test_random_streams_decode_or_raise_bad_file(payload, lengths, count, bits):
    try:
        out = huffman_decode(np.array(lengths, dtype=np.uint8), payload, count, bits)
    except BadFileError:
        return
    assert len(out) == count
