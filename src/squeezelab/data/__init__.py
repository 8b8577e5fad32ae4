"""Data sets: digits (default), synthetic, CIFAR-10/100 pickles, image folders and list files.

    >>> from squeezelab.data import DataConfig, open_dataset
    >>> data = open_dataset(DataConfig("digits", seed=0))
    >>> for images, labels in data.batches("train", 64, epoch=0):  # normalised, augmented
    ...     break
"""

from squeezelab.data.config import DataConfig
from squeezelab.data.dataset import Dataset
from squeezelab.data.datasets import open_dataset

__all__ = ["DataConfig", "Dataset", "open_dataset"]
