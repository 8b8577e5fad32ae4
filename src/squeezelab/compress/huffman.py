"""Canonical Huffman coding of small-integer symbols, vectorised with numpy (Deep Compression, Section 4).

Deep Compression's last stage Huffman-codes the cluster indices and the sparse-index gaps: both
are far from uniform (a few clusters and short gaps dominate), which saves another 20-30%.

A code is described by its code lengths alone (canonical Huffman, as DEFLATE does): codes are
assigned in order of (length, symbol), so a file stores one length byte per symbol. Lengths are
limited to `MAX_CODE_LENGTH` bits so that decoding can use one lookup table of 2**max_length
entries.

Neither direction loops over symbols in Python:
- encode gathers each symbol's code and length, expands them to bits with `np.repeat` and packs
  the bits;
- decode looks up, at every bit position, which symbol a code starting there would be and how
  long it is (one table lookup over a sliding window of bits), then follows the chain of code
  starts from bit 0 by pointer doubling: positions [p0..p_{2^k-1}] plus jump^(2^k) of them give
  [p0..p_{2^(k+1)-1}], so log2(count) array gathers find every code start.

>>> import numpy as np
>>> symbols = np.array([0, 0, 0, 1, 2, 0], dtype=np.int64)
>>> code = huffman_encode(symbols)
>>> huffman_decode(code.lengths, code.payload, code.count, code.bit_count).tolist()
[0, 0, 0, 1, 2, 0]
"""

from __future__ import annotations

import dataclasses
import heapq

import numpy as np

from squeezelab.errors import BadFileError

MAX_CODE_LENGTH = 16
MAX_ALPHABET = 1 << 16


@dataclasses.dataclass(frozen=True)
class HuffmanCoded:
    """A Huffman-coded array: per-symbol code lengths (0 = unused), packed bits, counts."""

    lengths: np.ndarray  # uint8, one per symbol 0..len-1
    payload: bytes
    count: int  # number of symbols coded
    bit_count: int  # number of meaningful bits in payload


def code_lengths(counts: np.ndarray, max_length: int = MAX_CODE_LENGTH) -> np.ndarray:
    """Huffman code lengths for symbol `counts` (0 for unused symbols), at most `max_length` bits.

    Loops over the alphabet (at most 65,536 symbols), never over the data. When the optimal code
    is too deep, counts are halved (keeping them >= 1) and the tree rebuilt, a standard heuristic
    that costs a fraction of a percent.

    >>> code_lengths(np.array([5, 1, 1, 0])).tolist()
    [1, 2, 2, 0]
    """
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(len(counts), dtype=np.uint8)
    used = np.flatnonzero(counts > 0)
    if len(used) == 0:
        return lengths
    if len(used) == 1:
        lengths[used] = 1
        return lengths
    weights = counts[used].copy()
    while True:
        depth = _tree_depths(weights)
        if depth.max() <= max_length:
            lengths[used] = depth
            return lengths
        weights = np.maximum(weights >> 1, 1)


def _tree_depths(weights: np.ndarray) -> np.ndarray:
    heap = [(int(w), i, (i,)) for i, w in enumerate(weights)]
    heapq.heapify(heap)
    depth = np.zeros(len(weights), dtype=np.int64)
    tie = len(weights)
    while len(heap) > 1:
        w1, _, a = heapq.heappop(heap)
        w2, _, b = heapq.heappop(heap)
        members = a + b
        depth[list(members)] += 1
        heapq.heappush(heap, (w1 + w2, tie, members))
        tie += 1
    return depth


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """The canonical code (as an integer, MSB first) of every symbol with a nonzero length.

    Raises `BadFileError` when the lengths over-subscribe the code space (Kraft sum > 1), which
    only a corrupt file produces.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) > MAX_ALPHABET or (len(lengths) and (lengths.min() < 0 or lengths.max() > MAX_CODE_LENGTH)):
        raise BadFileError("corrupt Huffman table: bad alphabet size or code length")
    used = np.flatnonzero(lengths > 0)
    kraft = np.sum(np.ldexp(1.0, -lengths[used])) if len(used) else 0.0
    if kraft > 1.0:
        raise BadFileError("corrupt Huffman table: code lengths over-subscribe the code space")
    order = used[np.lexsort((used, lengths[used]))]
    codes = np.zeros(len(lengths), dtype=np.int64)
    code, previous = 0, 0
    # Loop over the alphabet (<= 65,536), not the data: canonical assignment in (length, symbol) order.
    for symbol in order:
        length = int(lengths[symbol])
        code <<= length - previous
        codes[symbol] = code
        code += 1
        previous = length
    return codes


def huffman_encode(symbols: np.ndarray, alphabet_size: int | None = None) -> HuffmanCoded:
    """Huffman-code a 1-D array of non-negative integers (< 65,536).

    >>> huffman_encode(np.array([3, 3, 3])).bit_count  # one distinct symbol: 1 bit each
    3
    """
    symbols = np.asarray(symbols).astype(np.int64, copy=False).ravel()
    if len(symbols) and (symbols.min() < 0 or symbols.max() >= MAX_ALPHABET):
        raise ValueError(f"symbols must be in [0, {MAX_ALPHABET}), got [{symbols.min()}, {symbols.max()}]")
    size = alphabet_size if alphabet_size is not None else (int(symbols.max()) + 1 if len(symbols) else 0)
    lengths = code_lengths(np.bincount(symbols, minlength=size))
    if len(symbols) == 0:
        return HuffmanCoded(lengths, b"", 0, 0)
    codes = canonical_codes(lengths)
    sym_len = lengths.astype(np.int64)[symbols]
    sym_code = codes[symbols]
    total = int(sym_len.sum())
    starts = np.cumsum(sym_len) - sym_len
    rep_len = np.repeat(sym_len, sym_len)
    offset = np.arange(total, dtype=np.int64) - np.repeat(starts, sym_len)
    bits = (np.repeat(sym_code, sym_len) >> (rep_len - 1 - offset)) & 1
    return HuffmanCoded(lengths, np.packbits(bits.astype(np.uint8)).tobytes(), len(symbols), total)


def _lookup_tables(lengths: np.ndarray, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """table[w] = (symbol, length) of the code that prefixes the max_length-bit window w."""
    codes = canonical_codes(lengths)
    size = 1 << max_length
    table_symbol = np.zeros(size, dtype=np.int64)
    table_length = np.zeros(size, dtype=np.int64)  # 0: no code starts with these bits
    for symbol in np.flatnonzero(lengths):
        length = int(lengths[symbol])
        first = int(codes[symbol]) << (max_length - length)
        last = first + (1 << (max_length - length))
        table_symbol[first:last] = symbol
        table_length[first:last] = length
    return table_symbol, table_length


def huffman_decode(lengths: np.ndarray, payload: bytes, count: int, bit_count: int) -> np.ndarray:
    """Decode `count` symbols; raises `BadFileError` if the bits do not decode to exactly that.

    >>> code = huffman_encode(np.arange(256))
    >>> bool((huffman_decode(code.lengths, code.payload, 256, code.bit_count) == np.arange(256)).all())
    True
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if count < 0 or bit_count < 0 or bit_count > len(payload) * 8:
        raise BadFileError("corrupt Huffman stream: bad symbol or bit count")
    if count == 0:
        if bit_count:
            raise BadFileError("corrupt Huffman stream: bits present for zero symbols")
        return np.zeros(0, dtype=np.int64)
    used = np.flatnonzero(lengths > 0)
    if len(used) == 0:
        raise BadFileError("corrupt Huffman stream: symbols present but the code table is empty")
    max_length = int(lengths.max())
    if max_length > MAX_CODE_LENGTH or count > bit_count:
        raise BadFileError("corrupt Huffman stream: code lengths and counts do not fit the data")
    table_symbol, table_length = _lookup_tables(lengths, max_length)
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))[:bit_count].astype(np.int64)
    padded = np.concatenate([bits, np.zeros(max_length, dtype=np.int64)])
    window = np.zeros(bit_count, dtype=np.int64)
    for j in range(max_length):  # <= 16 passes over the bits, one per window bit
        window = (window << 1) | padded[j : j + bit_count]
    step = table_length[window]
    jump = np.append(np.arange(bit_count, dtype=np.int64) + step, bit_count)
    jump = np.where(np.append(step, 1) == 0, bit_count + 1, jump)  # invalid code -> poison
    jump = np.minimum(jump, bit_count + 1)
    jump = np.append(jump, bit_count + 1)  # index bit_count+1 is an absorbing "error" state
    positions = np.zeros(1, dtype=np.int64)
    while len(positions) < count:
        positions = np.concatenate([positions, jump[positions]])
        if len(positions) < count:
            jump = jump[jump]
    positions = positions[:count]
    if positions.max() >= bit_count:
        raise BadFileError("corrupt Huffman stream: the bits end before all symbols are decoded")
    end = positions[-1] + step[positions[-1]]
    if end != bit_count:
        raise BadFileError("corrupt Huffman stream: the bits do not decode to the stored symbol count")
    return table_symbol[window[positions]]
