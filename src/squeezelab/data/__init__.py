"""Data sets: digits (default), synthetic, CIFAR-10/100 pickles, image folders and list files.

    >>> from squeezelab.data import DataConfig, open_dataset
    >>> data = open_dataset(DataConfig("digits", seed=0))
    >>> for images, labels in data.batches("train", 64, epoch=0):  # normalised, augmented
    ...     break
"""

from squeezelab.data.config import DataConfig
from squeezelab.utils.lazy import lazy_exports

__all__ = ["DataConfig", "Dataset", "open_dataset"]
__getattr__, __dir__ = lazy_exports(__name__, {"Dataset": "squeezelab.data.dataset",
                                               "open_dataset": "squeezelab.data.datasets"})
