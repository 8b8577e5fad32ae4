"""The `.sqz` file: a pruned, weight-shared, Huffman-coded model that rebuilds itself (Deep
Compression, Sections 2-4; layout in docs/SQZ_FORMAT.md).

    magic "\\x89SQZ\\r\\n\\x1a\\n" | version u16 | flags u16 | header length u32 | file length u64
    header: UTF-8 JSON (the model record: config incl. layer table, classes, preprocessing,
            provenance; then the tensor directory)
    body:   the blobs the directory points at (codebooks, Huffman code lengths and bits, raw tensors)
    SHA-256 of everything before it (32 bytes)

Shared weights are stored sparse as Deep Compression does: for each kept weight, its cluster
index and the gap (number of zeros) since the previous kept weight. Gaps are bounded by
2**gap_bits - 1; a longer run of zeros gets filler entries (a zero weight, index symbol = the
codebook size). Both streams are Huffman-coded per layer. Version 2 may deflate the header
(flag bit 0) and writes a tensor of one repeated value as that value ("fill").

Reading never executes anything from the file: the header is JSON, every size, offset, count,
dtype and shape is checked against limits and against the architecture (built first on the
`meta` device, which allocates nothing) before any tensor is made, the model is built only from
the registry by name, and options that would read other files (`weights`, `weights_file`) are
refused. Every problem is a `BadFileError` with one line naming the file and the fix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from squeezelab.compress.huffman import MAX_CODE_LENGTH, HuffmanCoded, huffman_decode, huffman_encode
from squeezelab.compress.config import DEFAULT_GAP_BITS, MAX_BITS, RAW_FLOAT_DTYPES
from squeezelab.compress.quantize import shared_layers
from squeezelab.errors import BadFileError, SqueezelabError
from squeezelab.models.rebuild import expected_shapes, rebuild, record_of
from squeezelab.models.record import ModelRecord, Provenance
from squeezelab.preprocessing import Preprocessing
from squeezelab.utils.atomic import atomic_write_bytes

MAGIC = b"\x89SQZ\r\n\x1a\n"  # PNG-style: catches text-mode transfers and truncation at line ends
VERSION = 2  # 2 added the deflated header (flag bit 0) and constant raw tensors ("fill"); reads 1 too
READABLE_VERSIONS = (1, 2)
FLAG_DEFLATED_HEADER = 1
PREFIX = struct.Struct("<8sHHIQ")  # magic, version, flags, header length, file length
DIGEST_BYTES = 32

# Limits checked before anything is allocated: far above any SqueezeNet, far below harm.
MAX_FILE_BYTES = 512 << 20
MAX_HEADER_BYTES = 16 << 20
MAX_TENSOR_ELEMENTS = 1 << 28
MAX_TOTAL_ELEMENTS = 1 << 29
RAW_DTYPES = {"float32": np.float32, "float16": np.float16, "int64": np.int64}
FORBIDDEN_OPTIONS = ("weights", "weights_file")  # would make the loader read other files


@dataclasses.dataclass(frozen=True)
class LayerStats:
    """What one tensor costs in the file."""

    name: str
    kind: str  # "shared" (codebook + Huffman codes) or "raw"
    elements: int
    nonzero: int
    bits: int | None
    bytes: int

    @property
    def density(self) -> float:
        return self.nonzero / max(1, self.elements)


# ---------------------------------------------------------------------------------- encoding


class _Body:
    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> list[int]:
        self.parts.append(data)
        self.size += len(data)
        return [self.size - len(data), len(data)]


def _stream(body: _Body, coded: HuffmanCoded) -> dict:
    return {
        "lengths": body.add(coded.lengths.astype(np.uint8).tobytes()),
        "payload": body.add(coded.payload),
        "count": coded.count,
        "bits": coded.bit_count,
    }


def sparse_entries(mask: np.ndarray, index: np.ndarray, codebook_size: int, gap_bits: int):
    """(gaps, symbols) of the kept positions of flat `mask`, with filler entries for long gaps.

    >>> g, s = sparse_entries(np.array([0, 0, 0, 0, 0, 1]), np.array([0, 0, 0, 0, 0, 7]), 8, 2)
    >>> g.tolist(), s.tolist()  # gap 5 > 3: one filler (index 8 = zero) at position 3, then gap 1
    ([3, 1], [8, 7])
    """
    positions = np.flatnonzero(mask)
    limit = (1 << gap_bits) - 1
    gaps = np.diff(positions, prepend=-1) - 1
    fillers = gaps // (limit + 1)
    per_entry = fillers + 1
    total = int(per_entry.sum())
    out_gaps = np.full(total, limit, dtype=np.int64)
    out_symbols = np.full(total, codebook_size, dtype=np.int64)
    last = np.cumsum(per_entry) - 1  # each real entry comes after its fillers
    out_gaps[last] = gaps - fillers * (limit + 1)
    out_symbols[last] = index[positions]
    return out_gaps, out_symbols


def _shared_tensor(body: _Body, name: str, shared, gap_bits: int) -> tuple[dict, LayerStats]:
    centroids = shared.centroids.detach().float().cpu().numpy()
    mask = shared.mask.detach().cpu().numpy().ravel() != 0
    index = shared.index.detach().cpu().numpy().ravel()
    gaps, symbols = sparse_entries(mask, index, len(centroids), gap_bits)
    start = body.size
    entry = {
        "name": name,
        "kind": "shared",
        "shape": list(shared.mask.shape),
        "bits": max(1, int(np.ceil(np.log2(max(2, len(centroids)))))),
        "codebook": body.add(centroids.astype("<f4").tobytes()),
        "entries": len(gaps),
        "index": _stream(body, huffman_encode(symbols, len(centroids) + 1)),
        "gap": _stream(body, huffman_encode(gaps, 1 << gap_bits)),
    }
    stats = LayerStats(name, "shared", mask.size, int(mask.sum()), entry["bits"], body.size - start)
    return entry, stats


def _raw_tensor(body: _Body, name: str, tensor: torch.Tensor, float_dtype: str) -> tuple[dict, LayerStats]:
    dtype = str(tensor.dtype).removeprefix("torch.")
    if tensor.is_floating_point() and dtype != float_dtype:
        converted = tensor.to(getattr(torch, float_dtype))
        if torch.isfinite(converted).all() or not torch.isfinite(tensor).all():  # keep fp32 if fp16 overflows
            tensor, dtype = converted, float_dtype
    if dtype not in RAW_DTYPES:
        tensor, dtype = tensor.float(), "float32"
    data = tensor.detach().cpu().contiguous().numpy().astype(np.dtype(RAW_DTYPES[dtype]).newbyteorder("<"))
    entry = {"name": name, "kind": "raw", "shape": list(tensor.shape), "dtype": dtype}
    flat = data.reshape(-1)
    if flat.size and (flat == flat[0]).all() and np.isfinite(flat[0]):  # one value: say it once
        entry["fill"] = flat[0].item()
        return entry, LayerStats(name, "raw", tensor.numel(), int((tensor != 0).sum()), None, 0)
    entry["data"] = body.add(data.tobytes())
    return entry, LayerStats(name, "raw", tensor.numel(), int((tensor != 0).sum()), None, len(data.tobytes()))


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict the model would have without parametrizations (masked / shared weights
    evaluated), in the model's own order; the model is left untouched."""
    modules = dict(model.named_modules())
    plain = {}
    for key, value in model.state_dict().items():
        if ".parametrizations." not in key:
            plain[key] = value
        elif key.endswith(".original"):
            owner, _, rest = key.partition(".parametrizations.")
            name = rest.removesuffix(".original")
            with torch.no_grad():
                plain[f"{owner}.{name}"] = getattr(modules[owner], name).detach().clone()
    return plain


def encode(
    model: nn.Module,
    *,
    classes: list[str] | None = None,
    preprocessing: Preprocessing | None = None,
    gap_bits: int = DEFAULT_GAP_BITS,
    metadata: dict | None = None,
    raw_dtype: str = "float32",
    deflate_header: bool = False,
) -> tuple[bytes, list[LayerStats]]:
    """The `.sqz` bytes of `model` and what each tensor costs.

    Layers quantized with `quantize_` are stored as codebook + Huffman-coded indices and gaps;
    every other tensor (biases, batch norm, unshared layers) is stored raw, floats as `raw_dtype`
    ("float16" halves them; the defaults round-trip exactly), a constant tensor as one number.
    `deflate_header` zlib-compresses the JSON header (its tensor directory repeats the same keys).
    """
    if not 1 <= gap_bits <= 8:
        raise SqueezelabError(f"gap_bits must be between 1 and 8, got {gap_bits}")
    if raw_dtype not in RAW_FLOAT_DTYPES:
        raise SqueezelabError(f"raw_dtype must be 'float32' or 'float16', got {raw_dtype!r}")
    record = record_of(model).stamped()
    shared = {f"{name}.weight": p for name, p in shared_layers(model).items()}
    plain = plain_state_dict(model)
    body, directory, stats = _Body(), [], []
    for name, tensor in plain.items():
        entry, stat = _shared_tensor(body, name, shared[name], gap_bits) if name in shared else _raw_tensor(body, name, tensor, raw_dtype)
        directory.append(entry)
        stats.append(stat)
    header = {
        "model": {"name": record.name, "options": record.options},
        "classes": list(classes or record.classes),
        "preprocessing": (preprocessing or record.preprocessing).to_dict(),
        "provenance": record.provenance.to_dict(),
        **({"class_ids": list(record.class_ids)} if record.class_ids else {}),
        "gap_bits": gap_bits,
        "body_bytes": body.size,
        "tensors": directory,
        "metadata": metadata or {},
    }
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    if deflate_header:
        header_bytes = zlib.compress(header_bytes, 9)
    total = PREFIX.size + len(header_bytes) + body.size + DIGEST_BYTES
    flags = FLAG_DEFLATED_HEADER if deflate_header else 0
    head = PREFIX.pack(MAGIC, VERSION, flags, len(header_bytes), total) + header_bytes
    content = head + b"".join(body.parts)
    return content + hashlib.sha256(content).digest(), stats


def save(model: nn.Module, path: str | os.PathLike, **kwargs) -> list[LayerStats]:
    """Write `model` as a `.sqz` file atomically; returns the per-tensor costs.

    >>> from squeezelab import create_model
    >>> from squeezelab.compress import QuantConfig, quantize_
    >>> stats = save(quantize_(create_model("squeezenet1_1", num_classes=10), QuantConfig(bits=4)), "/tmp/m.sqz")
    >>> load("/tmp/m.sqz").classifier[1].weight.unique().numel() <= 16
    True
    """
    data, stats = encode(model, **kwargs)
    atomic_write_bytes(path, data)
    return stats


# ---------------------------------------------------------------------------------- decoding


def _fail(source: str, problem: str, fix: str = "re-create it with `squeezelab compress`") -> BadFileError:
    return BadFileError(f"{source}: {problem}; {fix}")


def _check_prefix(data: bytes, source: str) -> tuple[int, int]:
    if not data or data[:8] != MAGIC[: len(data[:8])]:
        raise _fail(source, "not a .sqz file (no SQZ magic bytes)", "pass a file written by `squeezelab compress`")
    if len(data) < PREFIX.size + DIGEST_BYTES:
        raise _fail(source, f"truncated .sqz file ({len(data)} bytes)")
    magic, version, flags, header_len, total = PREFIX.unpack_from(data)
    if version not in READABLE_VERSIONS:
        raise _fail(source, f".sqz format version {version}, this squeezelab reads versions 1 to {VERSION}",
                    "use the squeezelab version that wrote it, or re-compress the checkpoint")
    if total > MAX_FILE_BYTES or header_len > MAX_HEADER_BYTES:
        raise _fail(source, f"declared size {total} bytes / header {header_len} bytes is over the limit")
    if len(data) < total:
        raise _fail(source, f"truncated .sqz file: {len(data)} of {total} bytes")
    if len(data) > total:
        raise _fail(source, f"{len(data) - total} unexpected bytes after the end of the .sqz data")
    if PREFIX.size + header_len + DIGEST_BYTES > total:
        raise _fail(source, "header length does not fit the file")
    if hashlib.sha256(data[:-DIGEST_BYTES]).digest() != data[-DIGEST_BYTES:]:
        raise _fail(source, "checksum mismatch: the file is corrupted")
    if flags & ~FLAG_DEFLATED_HEADER or (flags and version < 2):
        raise _fail(source, f"unknown flags {flags:#x} for version {version}")
    return header_len, flags


def _expect(condition: bool, source: str, problem: str) -> None:
    if not condition:
        raise _fail(source, f"invalid header: {problem}")


def _is_int(value, low: int = 0, high: int = 1 << 62) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _header_text(data: bytes, header_len: int, flags: int, source: str) -> bytes:
    raw = data[PREFIX.size : PREFIX.size + header_len]
    if not flags & FLAG_DEFLATED_HEADER:
        return raw
    inflater = zlib.decompressobj()
    try:  # bounded: a small deflate stream must not expand into gigabytes
        text = inflater.decompress(raw, MAX_HEADER_BYTES)
    except zlib.error:
        raise _fail(source, "the compressed header is damaged") from None
    if inflater.unconsumed_tail:
        raise _fail(source, f"the header inflates to more than {MAX_HEADER_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise _fail(source, "the compressed header is damaged")
    return text


def _parse_header(data: bytes, header_len: int, flags: int, source: str) -> dict:
    try:
        header = json.loads(_header_text(data, header_len, flags, source).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _fail(source, "the header is not valid JSON") from None
    _expect(isinstance(header, dict), source, "not an object")
    model = header.get("model")
    _expect(isinstance(model, dict) and isinstance(model.get("name"), str), source, "no model name")
    _expect(isinstance(model.get("options", {}), dict), source, "model options are not an object")
    for key in FORBIDDEN_OPTIONS:
        _expect(key not in model.get("options", {}), source, f"model option {key!r} is not allowed in a .sqz file")
    classes = header.get("classes")
    _expect(isinstance(classes, list) and all(isinstance(c, str) for c in classes), source, "classes")
    _expect(header.get("preprocessing") is None or isinstance(header["preprocessing"], dict), source, "preprocessing")
    _expect(_is_int(header.get("gap_bits"), 1, 8), source, "gap_bits")
    body_bytes = header.get("body_bytes")
    _expect(_is_int(body_bytes) and PREFIX.size + header_len + body_bytes + DIGEST_BYTES == len(data), source, "body size")
    _expect(isinstance(header.get("tensors"), list), source, "tensor directory")
    return header


def _blob(body: memoryview, span, source: str, what: str) -> memoryview:
    _expect(isinstance(span, list) and len(span) == 2 and all(_is_int(v) for v in span), source, f"{what} span")
    offset, length = span
    _expect(offset + length <= len(body), source, f"{what} lies outside the file")
    return body[offset : offset + length]


def _decode_stream(body: memoryview, stream, alphabet: int, source: str, what: str) -> np.ndarray:
    _expect(isinstance(stream, dict), source, what)
    lengths = np.frombuffer(_blob(body, stream.get("lengths"), source, what), dtype=np.uint8)
    payload = bytes(_blob(body, stream.get("payload"), source, what))
    count, bits = stream.get("count"), stream.get("bits")
    _expect(_is_int(count) and _is_int(bits, 0, 8 * len(payload)), source, f"{what} counts")
    _expect(len(lengths) <= alphabet and (not len(lengths) or lengths.max() <= MAX_CODE_LENGTH), source, f"{what} code")
    try:
        return huffman_decode(lengths, payload, count, bits)
    except BadFileError as exc:
        raise _fail(source, f"{what}: {exc}") from None


def _decode_shared(body: memoryview, entry: dict, numel: int, gap_bits: int, source: str) -> np.ndarray:
    name = entry["name"]
    _expect(_is_int(entry.get("bits"), 1, MAX_BITS), source, f"{name} bits")
    codebook = _blob(body, entry.get("codebook"), source, f"{name} codebook")
    _expect(len(codebook) % 4 == 0 and 0 < len(codebook) // 4 <= 1 << entry["bits"], source, f"{name} codebook size")
    codebook = np.frombuffer(codebook, dtype="<f4").astype(np.float32)
    _expect(bool(np.isfinite(codebook).all()), source, f"{name} codebook holds NaN or inf")
    entries = entry.get("entries")
    _expect(_is_int(entries, 0, numel), source, f"{name} entry count")
    symbols = _decode_stream(body, entry.get("index"), len(codebook) + 1, source, f"{name} indices")
    gaps = _decode_stream(body, entry.get("gap"), 1 << gap_bits, source, f"{name} gaps")
    _expect(len(symbols) == entries and len(gaps) == entries, source, f"{name} stream lengths")
    positions = np.cumsum(gaps + 1) - 1
    _expect(not entries or positions[-1] < numel, source, f"{name} sparse indices run past the tensor")
    weights = np.zeros(numel, dtype=np.float32)
    real = symbols < len(codebook)
    weights[positions[real]] = codebook[symbols[real]]
    return weights


def _decode_raw(body: memoryview, entry: dict, numel: int, source: str) -> np.ndarray:
    dtype = entry.get("dtype")
    _expect(isinstance(dtype, str) and dtype in RAW_DTYPES, source, f"{entry['name']} dtype {dtype!r}")
    if "fill" in entry:
        fill = entry["fill"]
        _expect(isinstance(fill, (int, float)) and not isinstance(fill, bool) and math.isfinite(fill)
                and (dtype != "int64" or isinstance(fill, int)) and abs(fill) < 2**62, source, f"{entry['name']} fill")
        with np.errstate(over="ignore"):
            values = np.full(numel, fill, dtype=RAW_DTYPES[dtype])
        _expect(dtype == "int64" or bool(np.isfinite(values[:1]).all()), source, f"{entry['name']} fill overflows {dtype}")
        return values
    blob = _blob(body, entry.get("data"), source, entry["name"])
    kind = np.dtype(RAW_DTYPES[dtype]).newbyteorder("<")
    _expect(len(blob) == numel * kind.itemsize, source, f"{entry['name']} data size")
    return np.frombuffer(blob, dtype=kind).astype(RAW_DTYPES[dtype])


def _expected_shapes(record: ModelRecord, source: str) -> dict[str, tuple[int, ...]]:
    try:
        return expected_shapes(record)
    except SqueezelabError as exc:
        raise _fail(source, f"its model config does not build ({exc})") from None
    except Exception as exc:  # arbitrary options reach a builder's own code: report, never crash
        raise _fail(source, f"its model config does not build ({type(exc).__name__})") from None


def decode(data: bytes, source: str = "<bytes>") -> nn.Module:
    """Rebuild the runnable model (eval mode, `model.record`) from `.sqz` bytes."""
    if len(data) > MAX_FILE_BYTES:
        raise _fail(source, f"{len(data)} bytes is over the {MAX_FILE_BYTES}-byte limit for .sqz files")
    header_len, flags = _check_prefix(data, source)
    header = _parse_header(data, header_len, flags, source)
    record = _record(header, source)
    shapes = _expected_shapes(record, source)
    directory = header["tensors"]
    _expect(all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in directory), source, "tensor entries")
    names = [e["name"] for e in directory]
    _expect(sorted(names) == sorted(shapes) and len(set(names)) == len(names), source,
            "its tensors do not match the model's architecture")
    total = 0
    for entry in directory:
        _expect(entry.get("shape") == list(shapes[entry["name"]]), source, f"{entry['name']} shape")
        total += int(np.prod(shapes[entry["name"]], dtype=np.int64))
        _expect(total <= MAX_TOTAL_ELEMENTS, source, "too many weights")
    body = memoryview(data)[PREFIX.size + header_len : len(data) - DIGEST_BYTES]
    state = {}
    for entry in directory:
        shape = shapes[entry["name"]]
        numel = int(np.prod(shape, dtype=np.int64))
        _expect(numel <= MAX_TENSOR_ELEMENTS, source, f"{entry['name']} is too large")
        if entry.get("kind") == "shared":
            array = _decode_shared(body, entry, numel, header["gap_bits"], source)
        else:
            _expect(entry.get("kind") == "raw", source, f"{entry['name']} kind")
            array = _decode_raw(body, entry, numel, source)
        state[entry["name"]] = torch.from_numpy(array.reshape(shape))
    try:
        return rebuild(record, state)  # names and shapes were checked above
    except SqueezelabError as exc:
        raise _fail(source, f"invalid header: {exc}") from None


def _record(header: dict, source: str) -> ModelRecord:
    """The header's model record; its `notes` are the compression metadata (data set, source)."""
    model = header["model"]
    preprocessing = _preprocessing(header["preprocessing"], source) if header["preprocessing"] else None
    metadata = header.get("metadata") if isinstance(header.get("metadata"), dict) else {}
    provenance = header.get("provenance")
    _expect(provenance is None or isinstance(provenance, dict), source, "provenance")
    record = ModelRecord(model["name"], dict(model.get("options", {})), tuple(header["classes"]),
                         provenance=Provenance.from_dict(provenance), notes=metadata,
                         class_ids=tuple(header.get("class_ids") or ()))
    return record.replace(preprocessing=preprocessing) if preprocessing else record


def _preprocessing(data: dict, source: str) -> Preprocessing:
    numbers = all(
        isinstance(data.get(k), list) and 0 < len(data[k]) <= 16
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data[k])
        for k in ("mean", "std")
    )
    numbers = numbers and all(math.isfinite(v) for v in data["mean"] + data["std"]) and 0 not in data["std"]
    sizes = all(_is_int(data.get(k), 1, 1 << 14) for k in ("resize", "crop"))
    _expect(numbers and sizes and isinstance(data.get("pixel_range"), (int, float)), source, "preprocessing")
    try:
        return Preprocessing.from_dict(data)
    except (TypeError, ValueError):
        raise _fail(source, "invalid header: preprocessing") from None


def load(path: str | os.PathLike) -> nn.Module:
    """The runnable model stored in a `.sqz` file, from that file alone.

    Example (with the file from `save`'s example): `load("/tmp/m.sqz").record.classes[:2] == ('0', '1')`.
    """
    path = Path(path)
    if not path.is_file():
        raise SqueezelabError(f"{path} does not exist; pass the .sqz file that `squeezelab compress` wrote")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise _fail(str(path), f"{size} bytes is over the {MAX_FILE_BYTES}-byte limit for .sqz files")
    return decode(path.read_bytes(), str(path))
