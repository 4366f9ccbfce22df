"""lstmkit.data: padding with lengths, length-grouped batching (datasets and loaders follow)."""

from .collate import LengthBucketSampler, pad_sequences

__all__ = ["LengthBucketSampler", "pad_sequences"]
