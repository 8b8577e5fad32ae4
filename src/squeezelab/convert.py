"""`squeezelab convert`: the paper's released Deep Compression SqueezeNet as squeezelab files.

`models.released` decodes the file; this module turns it into a model carrying its record (the
1000 ImageNet classes with their WordNet ids, Caffe's input convention, its provenance) and writes
it as a checkpoint or a .sqz. It sits above the file formats it writes (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from squeezelab.errors import SqueezelabError
from squeezelab.models.record import Provenance
from squeezelab.models.released import ReleasedLayer, provenance, read_released, released_state_dict

RECORD_NAME = "squeezenet1_0.DC_IMAGENET1K"  # the `Weights` record of this file (models/weights.py)


def released_model(layers: list[ReleasedLayer], *, shared: bool = False):
    """A runnable squeezenet1_0 with ImageNet class names/ids and Caffe preprocessing.

    `shared=True` keeps the file's own codebooks, indices and pruning masks as weight-sharing
    parametrizations (what the .sqz codec stores), so the .sqz holds the same 256-entry codebooks
    and the same kept weights: it computes exactly what the dense model computes.
    """
    import torch
    from torch.nn.utils import parametrize

    from squeezelab.compress.quantize import SharedWeight
    from squeezelab.models.imagenet_classes import IMAGENET1K_IDS, IMAGENET1K_NAMES
    from squeezelab.models.config import ModelConfig
    from squeezelab.preprocessing import CAFFE_IMAGENET

    model = ModelConfig("squeezenet1_0", {"num_classes": len(IMAGENET1K_NAMES)}).build()
    model.load_state_dict(released_state_dict(layers), strict=True)
    if shared:
        modules = dict(model.named_modules())
        for layer in layers:
            share = SharedWeight(torch.from_numpy(layer.codebook.copy()), torch.from_numpy(layer.index),
                                 torch.from_numpy(layer.mask.astype(np.float32)))
            parametrize.register_parametrization(modules[layer.name], "weight", share, unsafe=True)
    model.record = model.record.replace(classes=IMAGENET1K_NAMES, class_ids=IMAGENET1K_IDS, preprocessing=CAFFE_IMAGENET,
                                        provenance=Provenance(weights=RECORD_NAME))
    return model.eval()


def convert_released(path: str | os.PathLike, out: str | os.PathLike, *, raw_dtype: str = "float32") -> dict:
    """Write the released file at `path` as a squeezelab checkpoint (.pt) or a .sqz file.

    Both keep the pruning (415,921 of 1,244,448 weights non-zero) and the Caffe input convention.
    A .sqz stores the file's 256-entry codebooks and indices Huffman-coded, biases as `raw_dtype`
    (float32 keeps them exact). Returns a summary: output, format, bytes, non-zero and total weights.

    >>> convert_released("compressed_SqueezeNet.net", "m.pt")["nonzero_weights"]  # doctest: +SKIP
    415921
    """
    from squeezelab.train.checkpoint import record_entries, save_checkpoint

    layers = read_released(path)
    source = provenance(path)
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".pt", ".pth", ".sqz"):
        raise SqueezelabError(f"{out}: unknown output type {out.suffix!r}; use .pt (checkpoint) or .sqz")
    model = released_model(layers, shared=suffix == ".sqz")
    if suffix == ".sqz":
        from squeezelab.compress.codec import save

        save(model, out, raw_dtype=raw_dtype, deflate_header=True, metadata={"source": source})
    else:
        save_checkpoint(out, {**record_entries(model.record), "state_dict": model.state_dict(), "source": source})
    return {
        "output": str(out), "format": "sqz" if suffix == ".sqz" else "checkpoint", "bytes": out.stat().st_size,
        "source_bytes": source["bytes"], "nonzero_weights": int(sum(layer.mask.sum() for layer in layers)),
        "weights": int(sum(layer.mask.size for layer in layers)), "classes": model.record.num_classes,
    }
