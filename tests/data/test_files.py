"""User file formats, on small files the tests write themselves."""

import gzip
import pickle
import struct

import numpy as np
import pytest

from lstmkit.data import load_csv, load_idx, load_mnist_idx, load_npz, load_ts


def _write_idx(path, arr: np.ndarray, code=0x08, gz=False):
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(">u1" if code == 0x08 else ">f4").tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)


# -- npz ------------------------------------------------------------------------------------
def test_npz_with_lengths_keeps_variable_lengths(tmp_path):
    X = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    X[1, 2:] = np.nan  # padding past the length may hold anything
    np.savez(tmp_path / "d.npz", X=X, y=np.array(["a", "b"]), lengths=np.array([4, 2]))
    s = load_npz(tmp_path / "d.npz")
    assert s.lengths.tolist() == [4, 2] and s.num_features == 3
    assert s.labels.tolist() == ["a", "b"]
    np.testing.assert_array_equal(s.sequences[1], X[1, :2])


def test_npz_univariate_and_unlabelled(tmp_path):
    np.savez(tmp_path / "u.npz", X=np.ones((3, 5)))
    s = load_npz(tmp_path / "u.npz")
    assert s.sequences[0].shape == (5, 1) and s.labels is None


@pytest.mark.parametrize(
    "arrays,match",
    [
        (dict(Z=np.ones((2, 3))), "no array 'X'"),
        (dict(X=np.ones(3)), r"X must be \(n, T\) or \(n, T, D\)"),
        (dict(X=np.ones((2, 3)), lengths=np.array([3, 4])), r"lengths must lie in \[1, T=3\]"),
        (dict(X=np.ones((2, 3)), lengths=np.array([3])), "lengths must be 2 integers"),
        (dict(X=np.array([[1.0, np.inf]])), "contains NaN or inf"),
        (dict(X=np.ones((2, 3)), y=np.ones(3)), r"y must have shape \(2,\)"),
        (dict(X=np.array([["a", "b"]])), "X must be numeric"),
    ],
)
def test_npz_errors(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        load_npz(tmp_path / "bad.npz")


def test_npy_instead_of_npz(tmp_path):
    with open(tmp_path / "a.npz", "wb") as f:
        np.save(f, np.ones((2, 3)))
    with pytest.raises(ValueError, match="a single .npy array, expected an .npz archive"):
        load_npz(tmp_path / "a.npz")


def test_npz_refuses_pickles_without_executing_them(tmp_path):
    class Boom:
        def __reduce__(self):
            return (pytest.fail, ("unpickled!",))

    np.savez(tmp_path / "p.npz", X=np.array([Boom()], dtype=object))
    with pytest.raises(ValueError, match="pickled data, which is refused"):
        load_npz(tmp_path / "p.npz")
    (tmp_path / "fake.npz").write_bytes(pickle.dumps({"X": Boom()}))  # a pickle posing as .npz
    with pytest.raises(ValueError, match="pickled data, which is refused"):
        load_npz(tmp_path / "fake.npz")
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "p.npz").read_bytes()[:30])
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_npz(tmp_path / "trunc.npz")


# -- IDX ------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_rows_as_steps(tmp_path, gz):
    imgs = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28)).astype(np.uint8)
    suffix = ".gz" if gz else ""
    _write_idx(tmp_path / f"img{suffix}", imgs, gz=gz)
    _write_idx(tmp_path / f"lab{suffix}", np.array([7, 0, 3], dtype=np.uint8), gz=gz)
    s = load_mnist_idx(tmp_path / f"img{suffix}", tmp_path / f"lab{suffix}")
    assert len(s) == 3 and s.sequences[0].shape == (28, 28)
    np.testing.assert_allclose(s.sequences[2], imgs[2] / 255.0, rtol=1e-6)
    assert s.labels.tolist() == [7, 0, 3]


def test_idx_float_type(tmp_path):
    a = np.array([[1.5, -2.0]], dtype=np.float32)
    _write_idx(tmp_path / "f", a, code=0x0D)
    np.testing.assert_array_equal(load_idx(tmp_path / "f"), a)


def test_idx_errors(tmp_path):
    imgs = np.zeros((2, 4, 4), dtype=np.uint8)
    _write_idx(tmp_path / "img", imgs)
    data = (tmp_path / "img").read_bytes()
    (tmp_path / "trunc").write_bytes(data[:-5])
    with pytest.raises(ValueError, match="IDX body has 27 bytes, the header \\(2, 4, 4\\) needs 32"):
        load_idx(tmp_path / "trunc")
    (tmp_path / "magic").write_bytes(b"\x01\x02" + data[2:])
    with pytest.raises(ValueError, match="bad magic number"):
        load_idx(tmp_path / "magic")
    _write_idx(tmp_path / "lab", np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="expected 2 labels"):
        load_mnist_idx(tmp_path / "img", tmp_path / "lab")


# -- CSV ------------------------------------------------------------------------------------
def test_csv_with_header_and_ragged_rows(tmp_path):
    (tmp_path / "d.csv").write_text("label,t0,t1,t2\ncat,1,2,3\ndog,4,5,\n")
    s = load_csv(tmp_path / "d.csv", label_column="label")
    assert s.labels.tolist() == ["cat", "dog"] and s.lengths.tolist() == [3, 2]
    (tmp_path / "n.csv").write_text("1,0.5,0.25\n2,1,2\n")
    s = load_csv(tmp_path / "n.csv")
    assert s.labels.tolist() == [1, 2] and s.sequences[0][:, 0].tolist() == [0.5, 0.25]


@pytest.mark.parametrize(
    "text,match",
    [
        ("a,1,,3\n", r"line 1: '' is not a number"),
        ("a,1,2\nb,1,x\n", r"line 2: 'x' is not a number"),
        ("a,1,nan\n", "contains NaN or inf"),
        ("", "no rows"),
        ("a,\n", "line 1: no values"),
    ],
)
def test_csv_errors(tmp_path, text, match):
    (tmp_path / "b.csv").write_text(text)
    with pytest.raises(ValueError, match=match):
        load_csv(tmp_path / "b.csv")


# -- .ts ------------------------------------------------------------------------------------
TS = """# comment
@problemName Toy
@timeStamps false
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
1,2,3:4,5,6:up
7,8:9,10:down
"""


def test_ts_multivariate_variable_length(tmp_path):
    (tmp_path / "t.ts").write_text(TS)
    s = load_ts(tmp_path / "t.ts")
    assert s.lengths.tolist() == [3, 2] and s.num_features == 2
    np.testing.assert_array_equal(s.sequences[1], [[7, 9], [8, 10]])
    assert s.labels.tolist() == ["up", "down"]


@pytest.mark.parametrize(
    "replace,match",
    [
        (("7,8:9,10:down", "7,8:9,10:left"), "class 'left' is not among"),
        (("7,8:9,10", "7,?:9,10"), "missing values"),
        (("7,8:9,10", "7,8:9"), "dimensions have different lengths"),
        (("7,8:9,10:down", "7:down"), "1 dimensions, earlier cases have 2"),
        (("@data\n1,2,3:4,5,6:up\n7,8:9,10:down\n", ""), "no @data line"),
        (("@data\n", ""), "expected a header line starting with '@' before @data"),
        (("7,8", "7,x"), "a value is not a number"),
    ],
)
def test_ts_errors(tmp_path, replace, match):
    (tmp_path / "t.ts").write_text(TS.replace(*replace))
    with pytest.raises(ValueError, match=match):
        load_ts(tmp_path / "t.ts")
