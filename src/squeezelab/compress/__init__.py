"""Deep Compression for SqueezeNet (Han, Mao, Dally, ICLR 2016): prune, share weights, Huffman-code.

    model = prune(model, PruneConfig(sparsity=0.67))     # Section 2, masks hold while fine-tuning
    quantize_(model, QuantConfig(bits=8))                # Section 3, trainable shared centroids
    save(model, "model.sqz"); load("model.sqz")          # Section 4 + the .sqz file format
    recalibrate_batch_norm_(model, batches)              # batch-norm statistics after either step

`compress_model` runs the whole pipeline with fine-tuning (what `squeezelab compress` calls).
"""

from squeezelab.compress.batchnorm import fold_batch_norm_, recalibrate_batch_norm_
from squeezelab.compress.codec import LayerStats, decode, encode, load, save
from squeezelab.compress.policy import paper_density_table
from squeezelab.compress.prune import (
    ChannelPruneConfig,
    PruneConfig,
    finalize_,
    layer_densities,
    overall_density,
    prune,
    prune_channels,
)
from squeezelab.compress.quantize import QuantConfig, kmeans_1d, quantize_, shared_layers

__all__ = [
    "ChannelPruneConfig", "LayerStats", "PruneConfig", "QuantConfig", "decode", "encode", "finalize_",
    "fold_batch_norm_", "kmeans_1d", "recalibrate_batch_norm_", "layer_densities", "load", "overall_density", "paper_density_table", "prune",
    "prune_channels", "quantize_", "save", "shared_layers",
]
