"""lstmkit.data: user file formats, labels and normalisation fit on training data, padding with
lengths, length-grouped batching."""

from .collate import LengthBucketSampler, pad_sequences
from .files import SeriesSet, load_csv, load_idx, load_mnist_idx, load_npz, load_ts
from .preprocess import LabelMap, Standardizer, stratified_split

__all__ = ["LabelMap", "LengthBucketSampler", "Standardizer", "stratified_split", "SeriesSet", "load_csv", "load_idx", "load_mnist_idx", "load_npz", "load_ts",
           "pad_sequences"]
