import numpy as np
import pytest

from lstmkit.data.preprocess import LabelMap, Standardizer
from lstmkit.data.splits import stratified_split


def test_label_map_round_trip_any_type():
    for labels in (["b", "a", "b"], [3, 1, 3], [0.5, 2.5, 0.5]):
        m = LabelMap.fit(labels)
        idx = m.encode(labels)
        assert m.decode(idx) == list(labels)
        assert LabelMap.from_dict(m.to_dict()) == m
    assert LabelMap.fit(np.array([2, 1])).classes == (1, 2)


def test_label_map_errors():
    with pytest.raises(ValueError, match="only one class"):
        LabelMap.fit(["a", "a"])
    with pytest.raises(ValueError, match="labels is empty"):
        LabelMap.fit([])
    with pytest.raises(ValueError, match=r"label 'c' \(position 1\) was not seen"):
        LabelMap.fit(["a", "b"]).encode(["a", "c"])


def test_standardizer_uses_valid_steps_only():
    seqs = [np.array([[1.0], [3.0]]), np.array([[5.0]])]
    st = Standardizer.fit(seqs)
    assert st.mean.tolist() == [3.0]  # (1 + 3 + 5) / 3: no padding zeros counted
    out = st.transform(seqs)
    np.testing.assert_allclose(np.concatenate(out).mean(), 0.0, atol=1e-6)
    assert Standardizer.from_dict(st.to_dict()).mean.tolist() == [3.0]
    const = Standardizer.fit([np.ones((3, 2))])
    assert const.std.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"expected \(T, 1\) features"):
        st.transform([np.ones((2, 2))])
    with pytest.raises(ValueError, match="NaN or inf"):
        Standardizer.fit([np.array([[np.nan]])])


def test_stratified_split_keeps_class_balance_and_is_disjoint():
    labels = np.array([0] * 80 + [1] * 20)
    tr, va = stratified_split(labels, 0.2, seed=0)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 100
    assert (labels[va] == 0).sum() == 16 and (labels[va] == 1).sum() == 4
    assert not np.array_equal(stratified_split(labels, 0.2, seed=1)[1], va)


def test_stratified_split_indices_are_pinned():
    # the presets' recorded results depend on these exact indices for a seed (why scikit-learn's
    # StratifiedShuffleSplit, which draws others, does not replace it: docs/architecture.md)
    labels = np.array([0] * 8 + [1] * 5 + [2] * 3 + [3] * 2)
    assert stratified_split(labels, 0.25, seed=0)[1].tolist() == [2, 4, 12, 13, 16]
    assert stratified_split(labels, 0.25, seed=1)[1].tolist() == [0, 5, 10, 14, 17]
    # at least one of every class with two or more members, even when the fraction rounds to 0
    assert stratified_split([0, 0, 0, 1, 1, 2, 2, 2, 2, 2], 0.1, seed=0)[1].tolist() == [2, 4, 5]


def test_stratified_split_errors():
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\)"):
        stratified_split([0, 1], 1.0)
    with pytest.raises(ValueError, match="need at least 2 samples"):
        stratified_split([0], 0.5)
    with pytest.raises(ValueError, match="no class has two or more samples"):
        stratified_split([0, 1, 2], 0.5)
