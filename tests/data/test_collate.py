import numpy as np
import pytest
import torch

from lstmkit.data import LengthBucketSampler, pad_sequences
from lstmkit.data.collate import SequenceBatches, TensorBatches


def test_pad_sequences_keeps_lengths_and_values():
    seqs = [np.ones((3, 2)), np.full((5, 2), 2.0), np.zeros((1, 2))]
    padded, lengths = pad_sequences(seqs)
    assert padded.shape == (3, 5, 2) and lengths.tolist() == [3, 5, 1]
    assert torch.equal(padded[1], torch.full((5, 2), 2.0))
    assert padded[0, 3:].abs().sum() == 0
    tm, _ = pad_sequences(seqs, batch_first=False)
    assert tm.shape == (5, 3, 2)


@pytest.mark.parametrize(
    "seqs,match",
    [
        ([], "sequences is empty"),
        ([np.ones(3)], r"sequences\[0\] must be 2-D"),
        ([np.ones((0, 2))], r"sequences\[0\] has no time steps"),
        ([np.ones((2, 2)), np.ones((2, 3))], r"sequences\[1\] has 3 features, sequences\[0\] has 2"),
        ([np.ones((2, 2)), np.array([[1.0, np.nan]])], r"sequences\[1\] contains NaN or inf"),
        ([np.array([[np.inf, 1.0]])], r"sequences\[0\] contains NaN or inf"),
    ],
)
def test_pad_sequences_errors(seqs, match):
    with pytest.raises(ValueError, match=match):
        pad_sequences(seqs)


def test_bucket_sampler_groups_by_length_and_covers_every_index():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, size=103)
    sampler = LengthBucketSampler(lengths, batch_size=10, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 11
    assert sorted(i for b in batches for i in b) == list(range(103))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 15  # random batches of 10 would spread ~80
    assert list(sampler) != batches  # a new order next epoch
    assert len(list(LengthBucketSampler(lengths, 10, drop_last=True))) == 10


def test_bucket_sampler_errors():
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        LengthBucketSampler([1, 2], 0)
    with pytest.raises(ValueError, match="lengths must be a non-empty 1-D"):
        LengthBucketSampler([], 4)


def test_sequence_batches_keep_padding_small_and_cover_every_sample_once():
    rng = np.random.default_rng(0)
    seqs = [np.ones((int(n), 2), dtype=np.float32) for n in rng.integers(10, 101, 640)]
    labels = np.arange(640) % 3
    batches = SequenceBatches(seqs, labels, batch_size=32, shuffle=True, seed=0)
    seen, padded, real = [], 0, 0
    for x, lengths, y in batches.batches(1):
        assert x.shape[1] == int(lengths.max())  # each batch cut to its own longest sequence
        padded += x.shape[0] * x.shape[1]
        real += int(lengths.sum())
        seen.extend(y.tolist())
    assert sorted(seen) == sorted(labels.tolist())
    assert 1 - real / padded < 0.05  # random batches of lengths 10..100 waste ~40%
    first = [b[2].tolist() for b in batches.batches(1)]
    assert first != [b[2].tolist() for b in batches.batches(2)]  # reshuffled per epoch


def test_sequence_batches_restore_order():
    seqs = [np.full((n, 1), float(i), dtype=np.float32) for i, n in enumerate([5, 2, 9, 2, 7])]
    batches = SequenceBatches(seqs, None, batch_size=2)
    rows = torch.cat([x[:, 0, 0] for x, _ in batches])  # grouped by length, not input order
    assert rows.tolist() != [0, 1, 2, 3, 4]
    assert batches.restore_order(rows).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="with batches\\(epoch\\)"):
        iter(SequenceBatches(seqs, None, batch_size=2, shuffle=True))


def test_tensor_batches_order_and_errors():
    x, y = torch.arange(10).reshape(5, 2), np.arange(5)
    b = TensorBatches([x, y], 2)
    assert len(b) == 3 and [t[1].tolist() for t in b] == [[0, 1], [2, 3], [4]]
    s = TensorBatches([x, y], 2, shuffle=True, seed=3)
    e0, e1 = [t[1].tolist() for t in s(0)], [t[1].tolist() for t in s.batches(1)]
    assert sorted(sum(e0, [])) == list(range(5)) and e0 != e1  # every row once, a new order per epoch
    assert e0 == [t[1].tolist() for t in s(0)]  # a function of seed + epoch
    assert all(torch.equal(xb[:, 0] // 2, yb) for xb, yb in s(0))  # rows stay aligned
    assert [t[1].tolist() for t in s] == [[0, 1], [2, 3], [4]]  # iteration: in order
    with pytest.raises(ValueError, match="share one non-zero first dimension"):
        TensorBatches([x, y[:4]], 2)
    with pytest.raises(ValueError, match="batch_size"):
        TensorBatches([x], 0)
