"""CSV files as pandas and sensors write them: wide headers, index columns, long format."""

import numpy as np
import pytest

from lstmkit.data import load_csv, load_long_csv, load_npz
from lstmkit.data.inputs import load_inputs

pd = pytest.importorskip("pandas")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((6, 5)).round(3)


def _frame(labels, columns=None):
    df = pd.DataFrame(X, columns=columns)
    df.insert(0, "label", labels)
    return df


# -- wide: the header rule ------------------------------------------------------------------
@pytest.mark.parametrize("write, label_column, labels", [
    (lambda p: _frame(["a", "b"] * 3).to_csv(p, index=False), 0, ["a", "b"] * 3),  # label,0,1,...
    (lambda p: _frame([1, 2] * 3, columns=range(1, 6)).to_csv(p, index=False), 0, [1, 2] * 3),  # label,1,2,...
    (lambda p: _frame([1, 2] * 3).to_csv(p, index=False), "label", [1, 2] * 3),
    (lambda p: pd.DataFrame(np.column_stack([[0, 1] * 3, X])).to_csv(p, index=False), 0, [0, 1] * 3),  # 0,1,...,5
    (lambda p: pd.DataFrame(X).to_csv(p, index=False), None, None),  # unlabelled 0,1,...
])
def test_pandas_numbered_headers_are_headers_not_samples(tmp_path, write, label_column, labels):
    write(tmp_path / "d.csv")
    s = load_csv(tmp_path / "d.csv", label_column)
    assert len(s) == 6 and s.lengths.tolist() == [5] * 6
    np.testing.assert_allclose(s.sequences[2][:, 0], X[2], rtol=1e-6)
    assert (s.labels is None) if labels is None else s.labels.tolist() == labels


def test_a_name_above_numeric_labels_is_a_header(tmp_path):
    (tmp_path / "d.csv").write_text("class,0.5,0.25\n1,0.5,0.25\n2,1,2\n")
    assert load_csv(tmp_path / "d.csv").labels.tolist() == [1, 2]


def test_data_rows_stay_data(tmp_path):
    (tmp_path / "d.csv").write_text("a,0.5,0.25\nb,1,2\na,3,4\n")  # string labels over numbers: no header
    assert load_csv(tmp_path / "d.csv").labels.tolist() == ["a", "b", "a"]
    (tmp_path / "e.csv").write_text("a,0,1,2\na,5,6,7\nb,1,2,3,4\n")  # a ramp narrower than the widest row
    assert len(load_csv(tmp_path / "e.csv")) == 3


def test_header_argument_overrides_detection(tmp_path):
    (tmp_path / "d.csv").write_text("x,0,1,2\na,5,6,7\nb,1,2,3\n")
    assert len(load_csv(tmp_path / "d.csv")) == 2  # detected: x over positions 0, 1, 2
    s = load_csv(tmp_path / "d.csv", header=False)
    assert s.labels.tolist() == ["x", "a", "b"] and s.sequences[0][:, 0].tolist() == [0, 1, 2]
    (tmp_path / "n.csv").write_text("1,5,6,7\n2,1,2,3\n")
    assert load_csv(tmp_path / "n.csv", header=True).labels.tolist() == [2]
    with pytest.raises(ValueError, match="label_column='label' names a column, which needs a header row, but header=False"):
        load_csv(tmp_path / "d.csv", "label", header=False)
    with pytest.raises(TypeError, match=r"header must be True, False or None \(detect it\), got 'yes'"):
        load_csv(tmp_path / "d.csv", header="yes")


@pytest.mark.parametrize("label_column", [0, None, "label"])
def test_pandas_index_column_is_refused(tmp_path, label_column):
    _frame([1, 2] * 3).to_csv(tmp_path / "i.csv")  # index=True: ",label,0,1,..." over 0, 1, 2, ...
    with pytest.raises(ValueError, match=r"i.csv: the first column has no name and numbers the rows .*pandas index "
                                         r"column.*index=False"):
        load_csv(tmp_path / "i.csv", label_column)
    pd.DataFrame(X).sample(frac=1, random_state=0).to_csv(tmp_path / "u.csv")  # shuffled index, unlabelled
    with pytest.raises(ValueError, match="pandas index column"):
        load_csv(tmp_path / "u.csv", None)


# -- wide: a label column that holds data ---------------------------------------------------
def test_a_label_column_that_holds_data_is_refused(tmp_path):
    pd.DataFrame(X).to_csv(tmp_path / "nolabel.csv", index=False, header=False)
    with pytest.raises(ValueError, match=r"nolabel.csv: the label column \(the first column\) holds 6 distinct "
                                         r"non-integer numbers in 6 rows .*looks like data.*data.label_column"):
        load_inputs(tmp_path / "nolabel.csv")
    assert load_inputs(tmp_path / "nolabel.csv", labelled=False)[1] is None  # predicting: no labels read
    for labels in ([1.0, 2.0] * 3, [0.5, 1.5] * 3, [0.5, 1.5, 2.5] * 2):  # class labels that are numbers
        pd.DataFrame(np.column_stack([labels, X])).to_csv(tmp_path / "ok.csv", index=False, header=False)
        assert sorted(set(load_inputs(tmp_path / "ok.csv")[1].tolist())) == sorted(set(labels))


# -- long format ----------------------------------------------------------------------------
LONG = """id,time,ch1,ch2,label
b,2,1.5,-1,up
a,0,0.1,0.2,down
b,0,1.1,-3,up
a,1,0.3,0.4,down
b,1,1.3,-2,up
c,5,9,9,down
"""


def test_long_csv_groups_rows_by_id_and_sorts_them_by_time(tmp_path):
    (tmp_path / "l.csv").write_text(LONG)
    s = load_long_csv(tmp_path / "l.csv", "id", "label", time_column="time")
    assert s.ids.tolist() == ["b", "a", "c"] and s.labels.tolist() == ["up", "down", "down"]
    np.testing.assert_allclose(s.sequences[0], [[1.1, -3], [1.3, -2], [1.5, -1]], rtol=1e-6)
    assert s.lengths.tolist() == [3, 2, 1] and s.sequences[0].dtype == np.float32
    s = load_long_csv(tmp_path / "l.csv", "id", "label")  # no time column: file order, time is a feature
    np.testing.assert_allclose(s.sequences[0], [[2, 1.5, -1], [0, 1.1, -3], [1, 1.3, -2]], rtol=1e-6)
    s = load_long_csv(tmp_path / "l.csv", "id", None, "time", feature_columns=["ch2", "ch1"])
    assert s.labels is None
    np.testing.assert_allclose(s.sequences[1], [[0.2, 0.1], [0.4, 0.3]], rtol=1e-6)
    (tmp_path / "u.csv").write_text("id,time,ch1,ch2\na,0,1,2\n")
    assert load_long_csv(tmp_path / "u.csv", "id", "label", require_label=False).labels is None
    with pytest.raises(ValueError, match="no column named 'label'"):
        load_long_csv(tmp_path / "u.csv", "id", "label")


@pytest.mark.parametrize("edit, kwargs, match", [
    (("b,1,1.3,-2,up", "b,1,1.3,-2,down"), {}, r"id 'b' has label 'up' \(line 2\) and 'down' \(line 6\); the label "
                                               "must be the same"),
    (("b,1,1.3", "b,0,1.3"), {}, r"id 'b' has time '0' twice \(lines 4 and 6\)"),
    (("a,1,0.3,0.4", "a,1,,0.4"), {}, r"line 5, column 'ch1': is empty \(missing values are not supported\)"),
    (("a,1,0.3,0.4", "a,1,nan,0.4"), {}, r"line 5, column 'ch1': 'nan' is not a finite number"),
    (("a,1,0.3,0.4", "a,1,x,0.4"), {}, r"line 5, column 'ch1': 'x' is not a number"),
    (("a,1,0.3,0.4,down", "a,1,0.3,0.4"), {}, r"line 5: 4 cells, the header has 5"),
    (("c,5,9,9,down", ",5,9,9,down"), {}, r"line 7: empty 'id' cell"),
    (("c,5,9", "c,soon,9"), {}, r"line 7: time 'soon' in column 'time' is neither a number nor an ISO date"),
    (("", ""), {"id_column": "subject"}, r"no column named 'subject' \(columns: \['id', 'time', 'ch1', 'ch2', 'label'\]\)"),
    (("", ""), {"feature_columns": ["ch1", "time"]}, "a column is named twice among id, time, label and feature"),
    (("id,time", ",time"), {"id_column": "time", "time_column": None}, "column 0 has no name .*pandas index"),
])
def test_long_csv_errors_name_the_line_or_the_id(tmp_path, edit, kwargs, match):
    (tmp_path / "l.csv").write_text(LONG.replace(*edit))
    kw = {"id_column": "id", "label_column": "label", "time_column": "time", **kwargs}
    with pytest.raises(ValueError, match=match):
        load_long_csv(tmp_path / "l.csv", **kw)


def test_a_long_file_read_as_wide_is_refused(tmp_path):
    (tmp_path / "l.csv").write_text(LONG)
    with pytest.raises(ValueError, match="column 'id' belongs to a long-format file .*data.format: long and "
                                         "data.id_column"):
        load_csv(tmp_path / "l.csv")
    rows = [f"s{i},{t},{RNG.normal():.3f},{RNG.normal():.3f},{i % 2}" for i in range(4) for t in range(5)]
    (tmp_path / "n.csv").write_text("subject,t,x,y,activity\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"looks like a long-format file .*'s0' x5, 's1' x5, .*column 't' counts up "
                                         "within every run; read it with data.format: long"):
        load_csv(tmp_path / "n.csv")
    (tmp_path / "h.csv").write_text("\n".join(rows) + "\n")  # no header either
    with pytest.raises(ValueError, match="looks like a long-format file"):
        load_csv(tmp_path / "h.csv")
    # a wide file sorted by class repeats its labels in runs too: that alone is no sign of long format
    (tmp_path / "w.csv").write_text("\n".join(f"{c},{RNG.normal():.3f},{RNG.normal():.3f}" for c in "aaabbb") + "\n")
    assert len(load_csv(tmp_path / "w.csv")) == 6


# -- .npz layout ----------------------------------------------------------------------------
def test_npz_layout_ndt_reads_aeon_arrays(tmp_path):
    Xd = RNG.standard_normal((4, 3, 20)).astype(np.float32)  # (n, channels, time), as aeon writes it
    np.savez(tmp_path / "a.npz", X=Xd, lengths=np.array([20, 5, 9, 20]))
    s = load_npz(tmp_path / "a.npz", layout="ndt")
    assert s.num_features == 3 and s.lengths.tolist() == [20, 5, 9, 20]
    np.testing.assert_array_equal(s.sequences[1], Xd[1, :, :5].T)
    np.savez(tmp_path / "b.npz", X=Xd)
    with pytest.warns(UserWarning, match=r"shape \(4, 3, 20\), read as n=4 series of T=3 steps with D=20 features.*"
                                         "pass layout='ndt'"):
        load_npz(tmp_path / "b.npz")
    assert load_npz(tmp_path / "b.npz", layout="ntd").num_features == 20  # stated: no warning (errors would)
    np.savez(tmp_path / "c.npz", X=Xd.transpose(0, 2, 1))
    np.testing.assert_array_equal(load_npz(tmp_path / "c.npz").sequences[0], Xd[0].T)  # no warning (errors would)
    with pytest.raises(ValueError, match=r"layout must be 'ntd' .* or 'ndt' .*got 'nt'"):
        load_npz(tmp_path / "c.npz", layout="nt")


def test_a_single_row_is_data_unless_it_names_its_columns(tmp_path):
    (tmp_path / "one.csv").write_text("1,2,3\n")  # one series to predict, a ramp: nothing to compare a header with
    assert load_csv(tmp_path / "one.csv", None).sequences[0][:, 0].tolist() == [1, 2, 3]
    (tmp_path / "h.csv").write_text("label,t0,t1\n")
    with pytest.raises(ValueError, match="a header but no data rows"):
        load_csv(tmp_path / "h.csv")
