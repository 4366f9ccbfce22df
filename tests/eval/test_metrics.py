import sys

import numpy as np
import pytest
from sklearn import metrics as skm

from lstmkit.eval.metrics import classification_metrics, confusion_matrix, format_confusion, per_class_report
from lstmkit.eval.plots import plot_confusion_matrix, plot_learning_curves


# scikit-learn warns that class 4 is predicted but never true: that case is the point of the test.
@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true:UserWarning")
@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    k = 5
    y_true = rng.integers(0, k - 1, 60)  # class 4 never true
    y_pred = np.where(rng.random(60) < 0.6, y_true, rng.integers(0, k, 60))
    m = classification_metrics(y_true, y_pred, k)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    labels = np.union1d(y_true, y_pred)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, k), skm.confusion_matrix(y_true, y_pred, labels=range(k)))
    rows = per_class_report(y_true, y_pred, list("abcde"))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=range(k), zero_division=0)
    for i, row in enumerate(rows):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[i], r[i], f[i], s[i]))


def test_metrics_by_hand():
    # class 3 is predicted but never true; class 4 is neither (left out of every average)
    y_true = [0, 0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 0, 1, 1, 1, 2, 3, 3]
    m = classification_metrics(y_true, y_pred, 5)
    assert m == pytest.approx({"accuracy": 5 / 8, "macro_f1": (0.8 + 0.8 + 0.5 + 0) / 4,
                               "balanced_accuracy": (2 / 3 + 1 + 1 / 3) / 3, "n": 8})
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, 5),
                                  [[2, 1, 0, 0, 0], [0, 2, 0, 0, 0], [0, 0, 1, 2, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    rows = per_class_report(y_true, y_pred, list("abcde"))
    assert [(r["class"], r["support"]) for r in rows] == [("a", 3), ("b", 2), ("c", 3), ("d", 0), ("e", 0)]
    assert [r["precision"] for r in rows] == pytest.approx([1, 2 / 3, 1, 0, 0])
    assert [r["recall"] for r in rows] == pytest.approx([2 / 3, 1, 1 / 3, 0, 0])
    assert [r["f1"] for r in rows] == pytest.approx([0.8, 0.8, 0.5, 0, 0])
    np.testing.assert_array_equal(confusion_matrix([0, 0, 0], [0, 0, 0], 1), [[3]])  # one class: no warning


def test_metric_input_errors():
    with pytest.raises(ValueError, match="empty"):
        classification_metrics([], [], 3)
    with pytest.raises(ValueError, match=r"y_pred must hold class indices in \[0, 3\)"):
        classification_metrics([0, 1], [0, 3], 3)
    with pytest.raises(ValueError, match="same length"):
        confusion_matrix([0, 1], [0], 2)


def test_missing_scikit_learn_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match="classification metrics need scikit-learn: pip install scikit-learn"):
        classification_metrics([0, 1], [0, 1], 2)


def test_format_confusion_is_aligned():
    text = format_confusion(np.array([[12, 0], [3, 100]]), ["cat", "dog"])
    lines = text.splitlines()
    assert len(lines) == 3 and len({len(line) for line in lines}) == 1
    assert lines[2].split() == ["dog", "3", "100"]


def test_plots_write_png(tmp_path):
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "lr": 1e-3, "val_accuracy": 0.5 + e / 20,
                "grad_norm_mean": 0.5} for e in range(1, 6)]
    plot_learning_curves(history, tmp_path / "c.png", best_epoch=4)
    plot_confusion_matrix(np.eye(3, dtype=int) * 5, ["a", "b", "c"], tmp_path / "m.png")
    for name in ("c.png", "m.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"\(2, 2\) for 2 class names"):
        plot_confusion_matrix(np.eye(3), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="history is empty"):
        plot_learning_curves([], tmp_path / "y.png")
