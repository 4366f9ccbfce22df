"""Fuzzed user files: every loader either returns sane data or raises a clear error of its own.

The property, for each loader and each generated (often corrupted) file: the call succeeds with
a result that satisfies the loader's contract, or raises ``ValueError``/``TypeError`` from a frame
inside lstmkit whose message names the file. Nothing else escapes (no ``zlib.error``,
``UnicodeDecodeError`` from codecs, ``csv.Error``, ``OverflowError``, ``IndexError``...), and
forged size fields never make a loader allocate what the file does not hold.
"""

import gzip
import io
import json
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.helpers import assert_raised_in, fuzz_settings
from lstmkit.checkpoint import _model_json, load_checkpoint, save_checkpoint
from lstmkit.data import LabelMap, Standardizer, load_csv, load_idx, load_mnist_idx, load_npz, load_ts, stratified_split
from lstmkit.data.collate import pad_sequences
from lstmkit.data.series import load_series_csv, load_series_long
from lstmkit.data.text import load_text_csv

FUZZ = fuzz_settings(60)


def attempt(fn, *args, errors=(ValueError, TypeError), names=None, **kwargs):
    """(True, result) or (False, error) for an allowed error raised inside lstmkit whose message
    is non-empty (and holds ``names`` when given); any other exception propagates."""
    try:
        return True, fn(*args, **kwargs)
    except errors as e:
        assert_raised_in(e)
        assert str(e).strip(), f"{type(e).__name__} with an empty message"
        if names is not None:
            assert str(names) in str(e), f"message does not name {names}: {e}"
        return False, e


def sane_series_set(s, labelled: bool) -> None:
    assert len(s) >= 1
    d = s.sequences[0].shape[1]
    for a in s.sequences:
        assert a.dtype == np.float32 and a.ndim == 2 and a.shape[0] >= 1 and a.shape[1] == d >= 1
        assert np.isfinite(a).all()
    if labelled:
        assert s.labels is not None and len(s.labels) == len(s)
        if s.labels.dtype.kind == "f":
            assert np.isfinite(s.labels).all()
        if s.labels.dtype.kind in "US":
            assert all(str(v).strip() for v in s.labels)


def mutate(data: bytes, draw) -> bytes:
    """Truncate, flip bytes, splice garbage into, or replace ``data``."""
    how = draw(st.sampled_from(["truncate", "flip", "splice", "replace"]))
    if how == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if how == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(out) - 1))
            out[i] ^= draw(st.integers(1, 255))
        return bytes(out)
    if how == "splice":
        i = draw(st.integers(0, len(data)))
        return data[:i] + draw(st.binary(min_size=1, max_size=16)) + data[i:]
    return draw(st.binary(max_size=64))


# ----------------------------------------------------------------------------------- .npz

DTYPES = ["int8", "int64", "uint8", "float16", "float32", "float64", "bool", "complex64", "<U3"]
SPECIAL = [0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, 1e300, -1e39, 65504.0, 2.5]


@st.composite
def arrays(draw, max_dims=4, max_side=3):
    shape = tuple(draw(st.lists(st.integers(0, max_side), max_size=max_dims)))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    n = int(np.prod(shape))
    if dtype.kind in "fc":
        values = draw(st.lists(st.sampled_from(SPECIAL) | st.floats(-10, 10), min_size=n, max_size=n))
    elif dtype.kind == "U":
        values = draw(st.lists(st.sampled_from(["a", "", "1", "nan", "b c"]), min_size=n, max_size=n))
    else:
        values = draw(st.lists(st.integers(-3, 5), min_size=n, max_size=n))
    with np.errstate(all="ignore"):
        if dtype.kind in "iub":
            return np.array(values, dtype=np.int64).astype(dtype).reshape(shape)
        return np.array(values).astype(dtype).reshape(shape)


@st.composite
def npz_members(draw):
    members = {"X": draw(arrays())}
    if draw(st.booleans()):
        members["y"] = draw(arrays(max_dims=2, max_side=4))
    if draw(st.booleans()):
        members["lengths"] = draw(arrays(max_dims=2, max_side=4))
    if draw(st.booleans()) and len(members["X"].shape) >= 1:  # a consistent y more often than by chance
        members["y"] = draw(st.sampled_from([np.arange(members["X"].shape[0]), np.array(["a", "b", "c"])[
            np.arange(members["X"].shape[0]) % 3]]))
    return members


@FUZZ
@given(members=npz_members())
def test_npz_members_of_any_shape_and_dtype(tmp_path_factory, members):
    path = tmp_path_factory.mktemp("npz") / "d.npz"
    np.savez(path, **members)
    ok, s = attempt(load_npz, path, names=path)
    if ok:
        sane_series_set(s, "y" in members)
        assert len(s) == members["X"].shape[0]


def _valid_npz_bytes(compressed: bool) -> bytes:
    buf = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buf, X=np.arange(24, dtype=np.float32).reshape(4, 3, 2), y=np.array([0, 1, 0, 1]), lengths=np.array([3, 2, 1, 3]))
    return buf.getvalue()


NPZ = {c: _valid_npz_bytes(c) for c in (False, True)}


@FUZZ
@given(data=st.data(), compressed=st.booleans())
def test_corrupted_npz(tmp_path_factory, data, compressed):
    path = tmp_path_factory.mktemp("npz") / "c.npz"
    path.write_bytes(mutate(NPZ[compressed], data.draw))
    ok, s = attempt(load_npz, path, names=path)
    if ok:  # a flipped member name can turn y into an unknown array: then it is unlabelled
        sane_series_set(s, s.labels is not None)


def _npy(shape, descr="<f8", body=b"") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + body


@FUZZ
@given(shape=st.lists(st.integers(0, 2**40), min_size=1, max_size=3).map(tuple), body=st.integers(0, 256),
       descr=st.sampled_from(["<f8", "<f4", "|u1", "<i8", "|O"]))
def test_npz_with_forged_header_sizes_allocates_nothing(tmp_path_factory, shape, body, descr):
    path = tmp_path_factory.mktemp("npz") / "f.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("X.npy", _npy(shape, descr, b"\x00" * body))
    tracemalloc.start()
    try:
        ok, s = attempt(load_npz, path, names=path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"loading a {body + 128}-byte file allocated {peak / 2**20:.0f} MiB"
    if ok:
        sane_series_set(s, False)


def test_npz_errors_that_used_to_escape(tmp_path):
    """Found by fuzzing: numpy's own errors (zlib.error, tokenize errors, 'EOF: reading array data'),
    and every non-zip file reported as 'pickled data'."""
    path = tmp_path / "bad.npz"
    path.write_bytes(b"garbage, not a zip")
    with pytest.raises(ValueError, match="not an .npz file"):
        load_npz(path)
    good = bytearray(NPZ[True])
    good[60] ^= 0xFF  # inside the deflate stream
    path.write_bytes(bytes(good))
    with pytest.raises(ValueError, match="not a readable .npz file"):
        load_npz(path)
    np.savez(path, X=np.ones((2, 3, 0)))
    with pytest.raises(ValueError, match=r"n, T, D >= 1"):
        load_npz(path)
    np.savez(path, X=np.ones((2, 3)), y=np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"y\[0\] is not a finite number"):
        load_npz(path)
    np.savez(path, X=np.full((1, 2), 1e300))
    with pytest.raises(ValueError, match="beyond float32's range"):
        load_npz(path)


# ------------------------------------------------------------------------------------ IDX

@st.composite
def idx_files(draw):
    magic = draw(st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x08\x00"]) if draw(st.integers(0, 9)) == 0
                 else st.just(b"\x00\x00"))
    code = draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07, 0xFF]))
    ndim = draw(st.integers(0, 4) | st.sampled_from([33, 100, 255]))
    dims = draw(st.lists(st.integers(0, 5) | st.sampled_from([2**16, 2**31, 2**32 - 1]), min_size=min(ndim, 8),
                         max_size=min(ndim, 8)))
    header = magic + bytes([code, ndim]) + struct.pack(f">{len(dims)}I", *dims)
    itemsize = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(code, 1)
    exact = int(np.prod(dims, dtype=object)) * itemsize if dims else 0
    size = draw(st.sampled_from([exact, exact + 1, max(exact - 1, 0)]) if exact <= 512 else st.integers(0, 64))
    if code in (0x0D, 0x0E):
        values = draw(st.lists(st.sampled_from(SPECIAL), min_size=size // itemsize + 1, max_size=size // itemsize + 1))
        with np.errstate(over="ignore"):
            body = np.array(values, dtype=">f4" if code == 0x0D else ">f8").tobytes()[:size]
    else:
        body = draw(st.binary(min_size=size, max_size=size))
    return header + body


@FUZZ
@given(data=idx_files(), gz=st.booleans(), cut=st.integers(0, 40), labels=st.booleans())
def test_idx_headers_bodies_and_gzip(tmp_path_factory, data, gz, cut, labels):
    root = tmp_path_factory.mktemp("idx")
    path = root / ("images.idx.gz" if gz else "images.idx")
    blob = gzip.compress(data) if gz else data
    if gz and cut:
        blob = blob[:-cut]  # a truncated gzip stream
    path.write_bytes(blob)
    label_path = None
    if labels:
        label_path = root / "labels.idx"
        label_path.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x00\x01")
    tracemalloc.start()
    try:
        ok, x = attempt(load_idx, path, names=path)
        ok_mnist, s = attempt(load_mnist_idx, path, label_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"a {len(blob)}-byte IDX file made the loader allocate {peak / 2**20:.0f} MiB"
    if ok:
        assert x.ndim >= 1 and x.nbytes == len(data) - 4 - 4 * x.ndim
    if ok_mnist:
        sane_series_set(s, labels)
        if x.dtype == np.uint8:
            assert all(0.0 <= a.min() and a.max() <= 1.0 for a in s.sequences)


def test_idx_forged_sizes_that_used_to_escape(tmp_path):
    """Found by fuzzing: a dimension product that overflowed int64 (then a numpy reshape error), more
    than numpy's 64 dimensions, and empty or NaN images accepted as data."""
    path = tmp_path / "x.idx"
    path.write_bytes(b"\x00\x00\x08\x04" + struct.pack(">4I", 2**16, 2**16, 2**16, 2**16))
    with pytest.raises(ValueError, match="IDX body has 0 bytes"):
        load_idx(path)
    path.write_bytes(b"\x00\x00\x08\x64" + struct.pack(">100I", *[1] * 100) + b"\x00")
    with pytest.raises(ValueError, match="declares 100 dimensions"):
        load_idx(path)
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3I", 0, 28, 28))
    with pytest.raises(ValueError, match="n, rows, cols >= 1"):
        load_mnist_idx(path)
    path.write_bytes(b"\x00\x00\x0D\x03" + struct.pack(">3I", 1, 1, 2) + struct.pack(">2f", float("nan"), 1.0))
    with pytest.raises(ValueError, match="NaN or inf"):
        load_mnist_idx(path)


# ------------------------------------------------------------------------------------ CSV

CELLS = st.sampled_from(["1", "2.5", "-3", "", " ", "nan", "inf", "-inf", "1e400", "1e39", "abc", "x y", '"q,1"',
                         "1_0", "0x1", "١", "NaN"]) | st.floats(-5, 5).map(repr)


def _encode(text: str, draw) -> bytes:
    how = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "junk"]))
    if how == "junk":
        return text.encode() + draw(st.binary(min_size=1, max_size=8))
    return text.encode(how, errors="replace")


@st.composite
def csv_bytes(draw, header=None):
    rows = draw(st.lists(st.lists(CELLS, max_size=5), max_size=5))
    lines = ([header] if header else []) + [",".join(r) for r in rows]
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["", "\n", '"', "\x00"]))
    return _encode(text, draw)


@FUZZ
@given(data=csv_bytes(), label_column=st.sampled_from([0, 1, 3, None, "label", "nope", -1, True, 1.5]),
       header=st.booleans())
def test_csv_rows_cells_and_encodings(tmp_path_factory, data, label_column, header):
    path = tmp_path_factory.mktemp("csv") / "d.csv"
    path.write_bytes((b"label,a,b,c\n" if header else b"") + data)
    ok, s = attempt(load_csv, path, label_column=label_column)
    if ok:
        sane_series_set(s, label_column is not None)
    elif isinstance(s, ValueError) and "label_column" not in str(s):
        assert str(path) in str(s)


def test_csv_errors_that_used_to_escape(tmp_path):
    """Found by fuzzing: a raw UnicodeDecodeError from codecs, csv.Error for a huge field, a label
    of 1e400 silently stored as -9223372036854775808, NaN and empty labels kept as classes, and a
    negative label column read both as label and as data."""
    path = tmp_path / "d.csv"
    path.write_bytes(b"1,2,3\n\xe9,1,2\n")
    with pytest.raises(ValueError, match=r"line 2: not valid UTF-8"):
        load_csv(path)
    path.write_text('1,"' + "2" * 200_000 + '"\n')
    with pytest.raises(ValueError, match="malformed CSV"):
        load_csv(path)
    for label in ("1e400", "nan", "-inf"):
        path.write_text(f"{label},1,2\n1,2,3\n")
        with pytest.raises(ValueError, match="is not a finite number"):
            load_csv(path)
    path.write_text(",1,2\n1,2,3\n")
    with pytest.raises(ValueError, match="line 1: empty label"):
        load_csv(path)
    with pytest.raises(ValueError, match="label_column must be a column index >= 0"):
        load_csv(path, label_column=-1)
    with pytest.raises(TypeError, match="label_column must be"):
        load_csv(path, label_column=True)
    path.write_text("9007199254740993,1,2\n9007199254740992,1,2\n")  # distinct beyond 2**53: not merged
    assert load_csv(path).labels.tolist() == [9007199254740993, 9007199254740992]


# ------------------------------------------------------------------------------------ .ts

TS_HEADERS = st.sampled_from(["@problemName p", "@timeStamps false", "@timeStamps true", "@univariate true",
                              "@classLabel true a b", "@classLabel true", "@classLabel false", "@classLabel",
                              "# comment", "junk line", "", "@equalLength false"])
TS_VALUES = st.sampled_from(["1", "2.5", "-1", "?", "NaN", "inf", "1e39", "", "x", "3"])


@st.composite
def ts_bytes(draw):
    headers = draw(st.lists(TS_HEADERS, max_size=4))
    lines = headers + ([] if draw(st.integers(0, 9)) == 0 else ["@data"])
    for _ in range(draw(st.integers(0, 4))):
        dims = [",".join(draw(st.lists(TS_VALUES, min_size=1, max_size=4))) for _ in range(draw(st.integers(1, 3)))]
        label = draw(st.sampled_from(["a", "b", "c", "", "nan", "1e400", "1"]))
        lines.append(":".join(dims + ([label] if draw(st.integers(0, 4)) else [])))
    return _encode("\n".join(lines), draw)


@FUZZ
@given(data=ts_bytes())
def test_ts_headers_cases_and_encodings(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("ts") / "d.ts"
    path.write_bytes(data)
    ok, s = attempt(load_ts, path, names=path)
    if ok:
        sane_series_set(s, s.labels is not None)


# ------------------------------------------------------------------------------ text CSV

TEXT_CELLS = st.sampled_from(["good film", "", "  ", "1", "nan", "inf", "pos", "neg", '"a, b"', '"x\ny"', '"bad"q"',
                              "naïve", "\x00", "3.5"]) | st.text(max_size=6)


@FUZZ
@given(rows=st.lists(st.lists(TEXT_CELLS, min_size=1, max_size=3), max_size=5),
       header=st.sampled_from(["text,label", "label,text", "text", "a,b", "text,text", ""]),
       labelled=st.booleans(), data=st.data())
def test_text_csv(tmp_path_factory, rows, header, labelled, data):
    path = tmp_path_factory.mktemp("text") / "t.csv"
    body = "\n".join([header] + [",".join(r) for r in rows])
    path.write_bytes(_encode(body, data.draw))
    ok, out = attempt(load_text_csv, path, "text", "label" if labelled else None, names=path)
    if ok:
        texts, labels = out
        assert texts and all(isinstance(t, str) and t.strip() for t in texts)
        assert (labels is None) != labelled
        if labelled:
            assert len(labels) == len(texts)
            assert labels.dtype.kind not in "fc" or np.isfinite(labels).all()


def test_text_csv_missing_file_is_reported_by_lstmkit(tmp_path):
    ok, e = attempt(load_text_csv, tmp_path / "nope.csv", errors=(FileNotFoundError,))
    assert not ok and "nope.csv" in str(e)


# ------------------------------------------------------------------------------ series CSV

TIMES = st.sampled_from(["1", "2", "3", "4", "-1", "99999999999999999999", "2020-01-01", "2020-01-02", "2020-02-01",
                         "2020-01-01T00:00:01", "NaT", "nat", "", "yesterday", "1e3", "2020-13-01", "99999-01-01"])
VALUES = st.sampled_from(["1", "2.5", "", "nan", "inf", "1e400", "x", " 3 "])


@FUZZ
@given(times=st.lists(TIMES, min_size=0, max_size=5), data=st.data(), long=st.booleans(),
       gaps=st.sampled_from(["error", "interpolate", "bad"]))
def test_series_csv(tmp_path_factory, times, data, long, gaps):
    path = tmp_path_factory.mktemp("series") / "s.csv"
    rows = ["time,id,v,w"] + [f"{t},{data.draw(st.sampled_from(['a', 'b', '']))},{data.draw(VALUES)},"
                                 f"{data.draw(VALUES)}" for t in times]
    path.write_bytes(_encode("\n".join(rows), data.draw))
    targets = data.draw(st.sampled_from([["v"], ["v", "w"], ["nope"], [], "v"]))
    if long:
        ok, out = attempt(load_series_long, path, "time", "id", targets, gaps=gaps)
    else:
        ok, out = attempt(load_series_csv, path, "time", targets, gaps=gaps)
    if ok:
        for s in out if long else [out]:
            assert np.isfinite(s.values).all() and s.values.shape == (len(s.times), len(targets))
            assert s.times.dtype.kind in "iM" and not (s.times.dtype.kind == "M" and np.isnat(s.times).any())
            assert (np.diff(s.times).astype(np.int64) > 0).all()
    elif "targets" not in str(out) and "gaps" not in str(out):
        assert path.name in str(out)


def test_series_errors_that_used_to_escape(tmp_path):
    """Found by fuzzing: OverflowError for integer times beyond int64, a raw UnicodeDecodeError,
    csv.Error, NaT accepted as a time (reported as 'out of order'), and targets='v' read as a
    list of one-letter column names."""
    path = tmp_path / "s.csv"
    path.write_text("time,v\n99999999999999999999,1\n100000000000000000000,2\n")
    with pytest.raises(ValueError, match="row 1: time 99999999999999999999 is beyond the int64 range"):
        load_series_csv(path, "time", ["v"])
    path.write_bytes(b"time,v\n1,\xe9\n")
    with pytest.raises(ValueError, match="line 2: not valid UTF-8"):
        load_series_csv(path, "time", ["v"])
    path.write_text("time,v\n2020-01-01,1\nNaT,2\n")
    with pytest.raises(ValueError, match=r"row 2: time 'NaT' is not a date"):
        load_series_csv(path, "time", ["v"])
    with pytest.raises(TypeError, match="targets must be a list of column names"):
        load_series_csv(path, "time", "v")


# ------------------------------------------------------------------------------ collate, preprocess

@st.composite
def sequence_lists(draw):
    items = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["array", "array", "list", "tensor", "none", "str", "ragged", "scalar"]))
        if kind in ("array", "tensor", "list"):
            a = draw(arrays(max_dims=3))
            items.append(torch.as_tensor(a) if kind == "tensor" and a.dtype.kind in "biuf" else
                         a.tolist() if kind == "list" else a)
        else:
            items.append({"none": None, "str": "abc", "ragged": [[1.0], [2.0, 3.0]], "scalar": 1.5}[kind])
    return items


@FUZZ
@given(seqs=sequence_lists(), dtype=st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64,
                                                     torch.int32, torch.bool, "float32"]),
       batch_first=st.booleans(), padding=st.sampled_from([0.0, -1, "x", None]))
def test_pad_sequences(seqs, dtype, batch_first, padding):
    ok, out = attempt(pad_sequences, seqs, batch_first=batch_first, padding_value=padding, dtype=dtype)
    if ok:
        padded, lengths = out
        assert padded.dtype == dtype and lengths.tolist() == [len(s) for s in seqs] and (lengths >= 1).all()
        if dtype.is_floating_point:
            assert torch.isfinite(padded).all()
        x = padded if batch_first else padded.transpose(0, 1)
        for i, s in enumerate(seqs):
            np.testing.assert_array_equal(x[i, : len(s)].numpy(), torch.as_tensor(np.asarray(s)).to(dtype).numpy())


LABELS = st.lists(st.sampled_from([0, 1, 2, -1, 2.5, np.nan, "a", "b", "", None, True, 10**20]), max_size=6)


@FUZZ
@given(labels=LABELS, as_array=st.booleans(), fraction=st.sampled_from([0.5, 0.0, 1.0, np.nan, "0.5", 0.3]),
       seed=st.sampled_from([0, 3, -1, 1.5, "s"]), nested=st.booleans())
def test_label_map_and_stratified_split(labels, as_array, fraction, seed, nested):
    y = [labels, labels] if nested else labels
    if as_array:
        y = np.asarray(y, dtype=object) if any(v is None or v == 10**20 for v in labels) else np.asarray(y)
    ok, lm = attempt(LabelMap.fit, y)
    if ok:
        idx = lm.encode(y)
        assert lm.decode(idx) == [v.item() if isinstance(v, np.generic) else v for v in y] or as_array
        assert ((0 <= idx) & (idx < len(lm))).all()
        assert not attempt(lm.decode, [len(lm)])[0] and not attempt(lm.decode, [-1])[0]
    ok, split = attempt(stratified_split, y, fraction, seed)
    if ok:
        train, val = split
        assert sorted(train.tolist() + val.tolist()) == list(range(len(y))) and len(val) >= 1


@FUZZ
@given(seqs=st.lists(arrays(max_dims=3), max_size=3), other=st.lists(arrays(max_dims=3), max_size=2))
def test_standardizer(seqs, other):
    ok, std = attempt(Standardizer.fit, seqs)
    if ok:
        assert np.isfinite(std.mean).all() and (std.std > 0).all() and np.isfinite(std.std).all()
        for batch in (seqs, other):
            ok, out = attempt(std.transform, batch)
            if ok:
                assert all(np.isfinite(z).all() and z.dtype == np.float32 for z in out)
        assert Standardizer.from_dict(std.to_dict()) is not None


# ------------------------------------------------------------------------------ checkpoints

def _checkpoint(root: Path) -> Path:
    save_checkpoint(root, {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(3, dtype=torch.float64)},
                    {"task": "classify", "n": 1})
    return root


@FUZZ
@given(data=st.data(), target=st.sampled_from(["weights", "weights+hash", "meta"]))
def test_tampered_checkpoint(tmp_path_factory, data, target):
    """Any change to a checkpoint is caught by the SHA-256 or refused as malformed; re-hashed
    weights still have to be valid safetensors, and a meta file still an lstmkit description."""
    root = _checkpoint(tmp_path_factory.mktemp("ckpt"))
    weights, meta = root / "model.safetensors", root / "model.json"
    if target == "meta":
        meta.write_bytes(mutate(meta.read_bytes(), data.draw))
    else:
        blob = mutate(weights.read_bytes(), data.draw)
        weights.write_bytes(blob)
        if target == "weights+hash":  # a model.json that matches the altered weights (format 2's both hashes)
            meta.write_bytes(_model_json(blob, json.loads(meta.read_text())["meta"]))
    ok, out = attempt(load_checkpoint, root)
    if ok:
        state, m = out
        assert isinstance(m, dict) and all(isinstance(v, torch.Tensor) for v in state.values())


@pytest.mark.parametrize("meta,match", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),  # was a RecursionError
    ('{"format_version": true, "weights_sha256": "x"}', "not an lstmkit checkpoint"),  # True == 1 passed
    (None, "'meta' must be a JSON object"),  # returned as is, callers then called .get on a list
])
def test_checkpoint_meta_errors_that_used_to_escape(tmp_path, meta, match):
    root = _checkpoint(tmp_path)
    if meta is None:
        info = json.loads((root / "model.json").read_text())
        meta = json.dumps({**info, "meta": [1, 2]})
    (root / "model.json").write_text(meta)
    with pytest.raises(ValueError, match=match):
        load_checkpoint(root)
    with pytest.raises(ValueError, match="map_location must be a device"):
        load_checkpoint(_checkpoint(tmp_path / "again"), map_location="nowhere")
