"""Deep Compression for SqueezeNet (Han, Mao, Dally, ICLR 2016): prune, share weights, Huffman-code.

    model = prune(model, PruneConfig(sparsity=0.67))     # Section 2, masks hold while fine-tuning
    quantize_(model, QuantConfig(bits=8))                # Section 3, trainable shared centroids
    save(model, "model.sqz"); load("model.sqz")          # Section 4 + the .sqz file format
    recalibrate_batch_norm_(model, batches)              # batch-norm statistics after either step

`compress_model` runs the whole pipeline with fine-tuning (what `squeezelab compress` calls). The
configs are plain data (`compress.config`, no torch); the functions load on first use.
"""

from squeezelab.compress.config import ChannelPruneConfig, CompressConfig, PruneConfig, QuantConfig
from squeezelab.utils.lazy import lazy_exports

_FUNCTIONS = {
    "squeezelab.compress.batchnorm": ["fold_batch_norm_", "recalibrate_batch_norm_"],
    "squeezelab.compress.codec": ["LayerStats", "decode", "encode", "load", "save"],
    "squeezelab.compress.policy": ["paper_density_table"],
    "squeezelab.compress.prune": ["finalize_", "layer_densities", "overall_density", "prune", "prune_channels"],
    "squeezelab.compress.quantize": ["kmeans_1d", "quantize_", "shared_layers"],
    "squeezelab.compress.pipeline": ["compress_model"],
}

__all__ = ["ChannelPruneConfig", "CompressConfig", "PruneConfig", "QuantConfig",
           *(name for names in _FUNCTIONS.values() for name in names)]
__getattr__, __dir__ = lazy_exports(__name__, {name: module for module, names in _FUNCTIONS.items() for name in names})
