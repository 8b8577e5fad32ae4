"""The SqueezeNet paper's released Deep Compression model (`compressed_SqueezeNet.net`) as a
torchvision-layout `squeezenet1_0` state dict (Deep Compression, Sections 2-3: pruned, then 8-bit
weight sharing; the SqueezeNet paper's Table 2 "0.66 MB" row).

The file (little-endian) is 26 uint32 counts, one per convolution in network order (conv1, then
squeeze1x1, expand1x1, expand3x3 of fire2..fire9, then conv10), followed per convolution by a
float32 codebook of 256 values, the float32 biases, `count` uint8 codebook indices and `count`
4-bit gaps packed two per byte, low nibble first. A weight's flat position is the running sum of
(gap + 1) minus 1; runs of zeros longer than 15 are bridged by filler entries whose codebook value
is zero. The layout has no slack, so every size is checked: a file that is short, long, or whose
counts do not fit the network is refused with one line.

>>> state = decode_released_file("compressed_SqueezeNet.net")  # doctest: +SKIP
>>> sum(int((v != 0).sum()) for k, v in state.items() if k.endswith("weight"))  # doctest: +SKIP
415921
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from squeezelab.errors import BadFileError, SqueezelabError

CODEBOOK_SIZE = 256
GAP_LIMIT = 15  # 4-bit gaps
FILE_SIZE = 675_763  # the released file, for the error message only: any consistent size decodes
MAX_FILE_BYTES = 64 << 20

# (torchvision module name, out channels, in channels, kernel) in the file's order
_FIRES = [(3, 16, 64, 64), (4, 16, 64, 64), (5, 32, 128, 128), (7, 32, 128, 128),
          (8, 48, 192, 192), (9, 48, 192, 192), (10, 64, 256, 256), (12, 64, 256, 256)]


def _layer_shapes() -> list[tuple[str, tuple[int, int, int, int]]]:
    shapes = [("features.0", (96, 3, 7, 7))]
    channels = 96
    for index, squeeze, e1, e3 in _FIRES:
        shapes += [(f"features.{index}.squeeze", (squeeze, channels, 1, 1)),
                   (f"features.{index}.expand1x1", (e1, squeeze, 1, 1)),
                   (f"features.{index}.expand3x3", (e3, squeeze, 3, 3))]
        channels = e1 + e3
    return shapes + [("classifier.1", (1000, channels, 1, 1))]


LAYERS = _layer_shapes()


@dataclasses.dataclass(frozen=True)
class ReleasedLayer:
    """One convolution as stored: its codebook, biases, and per-weight codebook index (0 where pruned)."""

    name: str
    codebook: np.ndarray  # (256,) float32
    bias: np.ndarray  # (out,) float32
    index: np.ndarray  # (out, in, kh, kw) int64; meaningful where `mask`
    mask: np.ndarray  # (out, in, kh, kw) bool: the weights the file holds with a non-zero value

    @property
    def weight(self) -> np.ndarray:
        return np.where(self.mask, self.codebook[self.index], np.float32(0)).astype(np.float32)


def _fail(source: str, problem: str) -> BadFileError:
    return BadFileError(f"{source}: {problem}; pass the released compressed_SqueezeNet.net ({FILE_SIZE:,} bytes)")


def _layer_bytes(count: int, out_channels: int) -> int:
    return 4 * CODEBOOK_SIZE + 4 * out_channels + count + (count + 1) // 2


def _decode_layer(data: bytes, offset: int, name: str, shape, count: int, source: str) -> ReleasedLayer:
    numel = int(np.prod(shape))
    codebook = np.frombuffer(data, "<f4", CODEBOOK_SIZE, offset).astype(np.float32)
    offset += 4 * CODEBOOK_SIZE
    bias = np.frombuffer(data, "<f4", shape[0], offset).astype(np.float32)
    offset += 4 * shape[0]
    symbols = np.frombuffer(data, np.uint8, count, offset).astype(np.int64)
    offset += count
    packed = np.frombuffer(data, np.uint8, (count + 1) // 2, offset)
    gaps = np.stack([packed & 0x0F, packed >> 4], axis=1).reshape(-1)[:count].astype(np.int64)
    if count % 2 and packed[-1] >> 4:
        raise _fail(source, f"{name}: the unused high nibble of the last gap byte is not zero")
    if not (np.isfinite(codebook).all() and np.isfinite(bias).all()):
        raise _fail(source, f"{name}: its codebook or biases hold NaN or inf")
    positions = np.cumsum(gaps + 1) - 1
    if count and positions[-1] >= numel:
        raise _fail(source, f"{name}: its sparse positions run past the layer's {numel} weights")
    index = np.zeros(numel, dtype=np.int64)
    index[positions] = symbols
    mask = np.zeros(numel, dtype=bool)
    mask[positions] = codebook[symbols] != 0
    return ReleasedLayer(name, codebook, bias, index.reshape(shape), mask.reshape(shape))


def decode_released(data: bytes, source: str = "<bytes>") -> list[ReleasedLayer]:
    """The 26 convolutions of a `compressed_SqueezeNet.net` byte string, in network order."""
    header = 4 * len(LAYERS)
    if len(data) < header:
        raise _fail(source, f"truncated: {len(data)} bytes, shorter than the {header}-byte header")
    counts = np.frombuffer(data, "<u4", len(LAYERS)).astype(np.int64)
    for (name, shape), count in zip(LAYERS, counts):
        if count > int(np.prod(shape)):
            raise _fail(source, f"{name} declares {count} weights but has only {int(np.prod(shape))}")
    expected = header + sum(_layer_bytes(int(c), s[0]) for (_, s), c in zip(LAYERS, counts))
    if len(data) < expected:
        raise _fail(source, f"truncated: {len(data)} of the {expected} bytes its counts declare")
    if len(data) > expected:
        raise _fail(source, f"{len(data) - expected} unexpected bytes after the {expected} bytes its counts declare")
    layers, offset = [], header
    for (name, shape), count in zip(LAYERS, counts):
        layers.append(_decode_layer(data, offset, name, shape, int(count), source))
        offset += _layer_bytes(int(count), shape[0])
    return layers


def read_released(path: str | os.PathLike) -> list[ReleasedLayer]:
    """`decode_released` of a file, with one-line errors for a missing or oversized file."""
    path = Path(path)
    if not path.is_file():
        raise SqueezelabError(f"{path} does not exist; pass the released compressed_SqueezeNet.net")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise _fail(str(path), f"{path.stat().st_size} bytes is far larger than the format allows")
    return decode_released(path.read_bytes(), str(path))


def released_state_dict(layers: list[ReleasedLayer]) -> dict:
    """torchvision `squeezenet1_0` keys -> float32 tensors, loadable with `strict=True`."""
    import torch

    state = {}
    for layer in layers:
        state[f"{layer.name}.weight"] = torch.from_numpy(layer.weight)
        state[f"{layer.name}.bias"] = torch.from_numpy(layer.bias.copy())
    return state


def decode_released_file(path: str | os.PathLike) -> dict:
    """The state dict of the released file at `path` (see the module docstring)."""
    return released_state_dict(read_released(path))


def is_released_file(path: str | os.PathLike) -> bool:
    """Whether `path` looks like the released format (by suffix: the format has no magic bytes)."""
    return Path(path).suffix.lower() == ".net"


def provenance(path: str | os.PathLike) -> dict:
    """Where converted weights came from: the file, its size and SHA-256, and the release."""
    import hashlib

    data = Path(path).read_bytes()
    return {
        "source": "SqueezeNet paper's Deep Compression release, songhan/SqueezeNet-Deep-Compression "
                  "fb13faa2cf121ced9999f8a9d538ec6c56084733 (BSD licence)",
        "file": Path(path).name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "converted_by": "squeezelab.models.released",
    }
