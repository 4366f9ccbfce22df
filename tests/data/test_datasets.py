import numpy as np
import pytest

from lstmkit.data import list_datasets, load_dataset


def test_digits_fixed_stratified_split():
    train, test = load_dataset("digits")
    assert (len(train), len(test)) == (1347, 450)
    assert train.sequences[0].shape == (8, 8) and train.num_features == 8
    assert 0.0 <= min(s.min() for s in train.sequences) and max(s.max() for s in train.sequences) <= 1.0
    for part in (train, test):  # every class in both parts, in proportion
        counts = np.bincount(part.labels, minlength=10)
        assert counts.min() > 0
    frac = np.bincount(test.labels) / (np.bincount(train.labels) + np.bincount(test.labels))
    assert np.all(np.abs(frac - 0.25) < 0.02)
    again, _ = load_dataset("DIGITS")  # deterministic, case-insensitive
    assert np.array_equal(again.labels, train.labels)


def test_unknown_dataset_suggests():
    assert "digits" in list_datasets()
    with pytest.raises(ValueError, match=r"unknown dataset 'digit'; did you mean 'digits'"):
        load_dataset("digit")


def test_mnist1d_generated_offline_with_default_args(monkeypatch):
    import mnist1d.data

    def no_download(*a, **k):
        raise AssertionError("mnist1d must be generated, never downloaded")

    monkeypatch.setattr(mnist1d.data, "get_dataset", no_download)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    train, test = load_dataset("mnist1d")
    assert np.array_equal(np.random.get_state()[1], before)  # global RNG untouched
    assert (len(train), len(test)) == (4000, 1000)
    assert train.sequences[0].shape == (40, 1) and set(np.unique(train.labels)) == set(range(10))
    again, _ = load_dataset("mnist1d")
    assert np.array_equal(again.sequences[7], train.sequences[7])


@pytest.mark.parametrize(
    "name,sizes,steps,features,n_classes",
    [
        ("gunpoint", (50, 150), {150}, 1, 2),
        ("ucr:ItalyPowerDemand", (67, 1029), {24}, 1, 2),
        ("basicmotions", (40, 40), {100}, 6, 4),
        ("japanesevowels", (270, 370), None, 12, 9),
    ],
)
def test_ucr_uea_official_splits_offline(name, sizes, steps, features, n_classes):
    train, test = load_dataset(name)
    assert (len(train), len(test)) == sizes
    assert train.num_features == features
    lengths = set(train.lengths.tolist()) | set(test.lengths.tolist())
    if steps is None:
        assert len(lengths) > 1  # variable length kept, not truncated or resampled
    else:
        assert lengths == steps
    assert len(np.unique(train.labels)) == n_classes


def test_ucr_not_shipped_needs_download_and_never_touches_network():
    with pytest.raises(ValueError, match=r"'GunPointt' is not shipped with aeon .* Did you mean 'GunPoint'"):
        load_dataset("ucr:GunPointt")
    with pytest.raises(ValueError, match="bad UCR/UEA dataset name"):
        load_dataset("ucr:../etc")
