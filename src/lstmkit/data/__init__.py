"""lstmkit.data: user file formats, padding with lengths, length-grouped batching."""

from .collate import LengthBucketSampler, pad_sequences
from .files import SeriesSet, load_csv, load_idx, load_mnist_idx, load_npz, load_ts

__all__ = ["LengthBucketSampler", "SeriesSet", "load_csv", "load_idx", "load_mnist_idx", "load_npz", "load_ts",
           "pad_sequences"]
