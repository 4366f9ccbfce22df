"""lstmkit.data: user file formats, labels and normalisation fit on training data, padding with
lengths, length-grouped batching, training-time augmentation; images, scenes, clips, volumes
and captions for the vision pipelines."""

from .binary import BinaryImages, binarize, load_binary_images
from .captions import CaptionVocab, caption_scenes, load_flickr8k
from .clips import ClipSet, load_medmnist3d, motion_clips, shape_volumes
from .images import Glyphs, load_glyphs, read_image, resize
from .natural import PatchPairs, downscale, load_natural, natural_split
from .scenes import Scenes, digit_scenes, load_mask_folder
from .video import load_clip, moving_digits
from .augment import Augment, AugmentedBatches, list_augmentations, register_augmentation
from .collate import LengthBucketSampler, pad_sequences
from .datasets import list_datasets, load_dataset, register_dataset
from .files import SeriesSet, load_idx, load_mnist_idx, load_npz, load_ts
from .csvfiles import load_csv, load_long_csv
from .preprocess import LabelMap, Standardizer
from .splits import carve_validation, random_split, stratified_split
from .series import Series, list_series, load_series, load_series_csv, sliding_windows
from .text import Vocabulary, load_text_csv, tokenize

__all__ = ["BinaryImages", "binarize", "load_binary_images", "CaptionVocab", "caption_scenes", "load_flickr8k",
           "ClipSet", "load_medmnist3d", "motion_clips", "shape_volumes", "Glyphs", "load_glyphs", "read_image", "resize",
           "PatchPairs", "downscale", "load_natural", "natural_split", "Scenes", "digit_scenes", "load_mask_folder",
           "load_clip", "moving_digits",
           "Augment", "AugmentedBatches", "list_augmentations", "register_augmentation", "LabelMap", "LengthBucketSampler", "Standardizer", "stratified_split", "random_split", "carve_validation", "SeriesSet", "list_datasets", "load_csv", "load_long_csv", "load_dataset", "register_dataset", "load_idx", "load_mnist_idx", "load_npz", "load_ts",
           "pad_sequences", "Series", "list_series", "load_series", "load_series_csv", "sliding_windows", "Vocabulary",
           "load_text_csv", "tokenize"]
