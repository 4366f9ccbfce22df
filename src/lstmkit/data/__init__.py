"""lstmkit.data: user file formats, labels and normalisation fit on training data, padding with
lengths, length-grouped batching, training-time augmentation."""

from .augment import Augment, AugmentedBatches, list_augmentations, register_augmentation
from .collate import LengthBucketSampler, pad_sequences
from .datasets import list_datasets, load_dataset, register_dataset
from .files import SeriesSet, load_csv, load_idx, load_mnist_idx, load_npz, load_ts
from .preprocess import LabelMap, Standardizer, stratified_split
from .series import Series, list_series, load_series, load_series_csv, sliding_windows
from .text import Vocabulary, load_text_csv, tokenize

__all__ = ["Augment", "AugmentedBatches", "list_augmentations", "register_augmentation", "LabelMap", "LengthBucketSampler", "Standardizer", "stratified_split", "SeriesSet", "list_datasets", "load_csv", "load_dataset", "register_dataset", "load_idx", "load_mnist_idx", "load_npz", "load_ts",
           "pad_sequences", "Series", "list_series", "load_series", "load_series_csv", "sliding_windows", "Vocabulary",
           "load_text_csv", "tokenize"]
