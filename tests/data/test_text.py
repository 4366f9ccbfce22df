"""Tokenizer, vocabulary and text CSV loading, on small files the tests write themselves."""

import csv
import json

import numpy as np
import pytest

from lstmkit.data.text import Vocabulary, load_text_csv, tokenize


# -- tokenize -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,tokens",
    [
        ("Hello, World!", ["hello", ",", "world", "!"]),
        ("Don't stop!!", ["don't", "stop", "!", "!"]),
        ("the dog's o'clock", ["the", "dog's", "o'clock"]),
        ("'quoted'", ["'", "quoted", "'"]),  # a bare apostrophe is punctuation
        ("rock'n'roll", ["rock'n", "'", "roll"]),  # at most one apostrophe part
        ("it’s", ["it", "’", "s"]),  # only the ASCII apostrophe joins
        ("ÉCOLE Straße ΣΟΦΙΑ", ["école", "strasse", "σοφια"]),  # casefold, Unicode letters
        ("日本語 テキスト", ["日本語", "テキスト"]),
        ("x=3.14 a_b", ["x", "=", "3", ".", "14", "a_b"]),
        ("  \t\n ", []),
        ("", []),
        ("<pad> <unk>", ["<", "pad", ">", "<", "unk", ">"]),
    ],
)
def test_tokenize_examples(text, tokens):
    assert tokenize(text) == tokens


def test_tokenize_rejects_non_str():
    with pytest.raises(TypeError, match="got bytes"):
        tokenize(b"abc")
    with pytest.raises(TypeError, match="got NoneType"):
        tokenize(None)


# -- Vocabulary.fit --------------------------------------------------------------------------
TEXTS = ["b a c a", "a b d", "c, a!"]  # a:4  b:2  c:2  d:1  ,:1  !:1


def test_fit_orders_by_count_then_alphabetically():
    v = Vocabulary.fit(TEXTS)
    assert v.tokens == ("<pad>", "<unk>", "a", "b", "c", "!", ",", "d")
    assert len(v) == 8 and v.pad_id == 0 and v.unk_id == 1


def test_fit_does_not_depend_on_text_order():
    assert Vocabulary.fit(TEXTS) == Vocabulary.fit(TEXTS[::-1])


def test_fit_min_freq_and_max_size():
    assert Vocabulary.fit(TEXTS, min_freq=2).tokens == ("<pad>", "<unk>", "a", "b", "c")
    assert Vocabulary.fit(TEXTS, min_freq=4).tokens == ("<pad>", "<unk>", "a")
    assert Vocabulary.fit(TEXTS, max_size=4).tokens == ("<pad>", "<unk>", "a", "b")  # specials count
    assert Vocabulary.fit(TEXTS, max_size=3).tokens == ("<pad>", "<unk>", "a")
    assert len(Vocabulary.fit(TEXTS, max_size=100)) == 8


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(texts=[]), "texts is empty"),
        (dict(texts=["a"], min_freq=0), r"min_freq must be an int >= 1, got 0"),
        (dict(texts=["a"], min_freq=1.5), r"min_freq must be an int >= 1, got 1.5"),
        (dict(texts=["a"], min_freq=True), r"min_freq must be an int >= 1, got True"),
        (dict(texts=["a"], max_size=2), r"max_size must be an int >= 3, got 2"),
        (dict(texts=["a"], max_size=5.0), r"max_size must be an int >= 3, got 5.0"),
        (dict(texts=["a b", "a"], min_freq=3), r"no token occurs min_freq=3 times.*most frequent occurs 2"),
        (dict(texts=["   ", ""]), r"no token occurs min_freq=1 times"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Vocabulary.fit(**kwargs)


def test_fit_rejects_non_text_input():
    with pytest.raises(TypeError, match="single str"):
        Vocabulary.fit("a b c")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        Vocabulary.fit(["a", 3])


# -- encode / decode -------------------------------------------------------------------------
def test_encode_maps_unknown_tokens_to_unk():
    v = Vocabulary.fit(TEXTS)
    ids = v.encode("A b ZEBRA d?")
    assert ids.dtype == np.int64 and ids.ndim == 1
    assert ids.tolist() == [2, 3, 1, 7, 1]  # "zebra" and "?" unseen
    assert v.decode(ids) == ["a", "b", "<unk>", "d", "<unk>"]


def test_encode_many_and_decode_round_trip():
    v = Vocabulary.fit(TEXTS)
    out = v.encode_many(["a b", "c , d !"])
    assert [o.tolist() for o in out] == [[2, 3], [4, 6, 7, 5]]
    assert v.decode(out[1]) == ["c", ",", "d", "!"]
    assert v.decode([0, 1]) == ["<pad>", "<unk>"]
    assert v.decode([]) == []


def test_encode_errors_name_the_text_or_row():
    v = Vocabulary.fit(TEXTS)
    with pytest.raises(ValueError, match="text has no tokens"):
        v.encode("  \n")
    with pytest.raises(ValueError, match="text has no tokens"):
        v.encode("")
    with pytest.raises(ValueError, match=r"^texts\[2\] has no tokens"):
        v.encode_many(["a", "b", "\t"])
    with pytest.raises(TypeError, match=r"texts\[1\] is NoneType"):
        v.encode_many(["a", None])
    with pytest.raises(TypeError, match="got int"):
        v.encode(5)


@pytest.mark.parametrize(
    "ids,match",
    [
        ([2, 8], r"ids\[1\] = 8 is out of range \[0, 8\)"),
        ([-1], r"ids\[0\] = -1 is out of range"),
        ([1.0, 2.0], "ids must be integers"),
        ([[1, 2]], "ids must be 1-D"),
    ],
)
def test_decode_rejects_bad_ids(ids, match):
    with pytest.raises(ValueError, match=match):
        Vocabulary.fit(TEXTS).decode(ids)


# -- to_dict / from_dict ---------------------------------------------------------------------
def test_dict_round_trip_through_json():
    v = Vocabulary.fit(TEXTS + ["don't école 日本"])
    d = json.loads(json.dumps(v.to_dict()))
    assert d == {"tokens": list(v.tokens)}
    w = Vocabulary.from_dict(d)
    assert w == v and w.tokens == v.tokens
    assert w.encode("don't École").tolist() == v.encode("don't école").tolist()


@pytest.mark.parametrize(
    "d,match",
    [
        ({"tokens": ["<unk>", "<pad>", "a"]}, "must start with '<pad>', '<unk>'"),
        ({"tokens": ["<pad>", "<unk>"]}, "at least one more token"),
        ({"tokens": ["<pad>", "<unk>", "a", "b", "a"]}, "'a' occurs more than once"),
        ({"tokens": ["<pad>", "<unk>", "a", 3]}, r"tokens\[3\] is int, expected str"),
        ({"tokens": ["<pad>", "<unk>", "Apple"]}, r"tokens\[2\] = 'Apple' is not a single token"),
        ({"tokens": ["<pad>", "<unk>", "a b"]}, r"tokens\[2\] = 'a b' is not a single token"),
        ({"tokens": ["<pad>", "<unk>", ""]}, "is not a single token"),
        ({"tokens": "<pad><unk>a"}, "'tokens' must be a list"),
        ({"tokens": ["<pad>", "<unk>", "a"], "extra": 1}, "single key 'tokens'"),
        ({"words": ["<pad>", "<unk>", "a"]}, "single key 'tokens'"),
        (["<pad>", "<unk>", "a"], "expected a dict"),
    ],
)
def test_from_dict_rejects_tampered_data(d, match):
    with pytest.raises(ValueError, match=match):
        Vocabulary.from_dict(d)


def test_vocabulary_is_frozen_and_hashable():
    v = Vocabulary.fit(TEXTS)
    with pytest.raises(AttributeError):
        v.tokens = ("<pad>", "<unk>", "x")
    assert hash(v) == hash(Vocabulary(v.tokens))


# -- load_text_csv ---------------------------------------------------------------------------
def _write_rows(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def test_csv_quoted_commas_multiline_and_int_labels(tmp_path):
    p = _write_rows(
        tmp_path / "d.csv",
        [["id", "text", "label"], ["1", "good, very good", "1"], ["2", "line one\nline two", "0"], ["3", 'say "hi"', " 2 "]],
    )
    texts, labels = load_text_csv(p)
    assert texts == ["good, very good", "line one\nline two", 'say "hi"']
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0, 2]


def test_csv_float_and_string_labels(tmp_path):
    p = _write_rows(tmp_path / "f.csv", [["text", "label"], ["a", "0.5"], ["b", "2"]])
    assert load_text_csv(p)[1].dtype.kind == "f"
    p = _write_rows(tmp_path / "s.csv", [["label", "text"], ["pos", "a"], ["neg", "b"], ["1", "c"]])
    texts, labels = load_text_csv(p)
    assert texts == ["a", "b", "c"]
    assert labels.dtype.kind == "U" and labels.tolist() == ["pos", "neg", "1"]


def test_csv_custom_columns_unlabelled_and_bom(tmp_path):
    p = tmp_path / "u.csv"
    p.write_text("\ufeffreview,stars\nnice,5\nbad,1\n\n", encoding="utf-8")  # BOM and a trailing blank line
    texts, labels = load_text_csv(p, text_column="review", label_column=None)
    assert texts == ["nice", "bad"] and labels is None
    texts, labels = load_text_csv(p, text_column="review", label_column="stars")
    assert labels.tolist() == [5, 1]


def test_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_text_csv(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    "content,kwargs,match",
    [
        (b"", {}, r"x\.csv: empty file; expected a header row"),
        (b"\n\n", {}, "empty file"),
        (b"text,label\n", {}, r"x\.csv: a header but no data rows"),
        (b"body,label\nhi,1\n", {}, r"x\.csv: no column named 'text'.*columns found: \['body', 'label'\]"),
        (b"text,y\nhi,1\n", {}, r"no column named 'label'.*columns found: \['text', 'y'\]"),
        (b"text,text,label\na,b,1\n", {}, "column 'text' appears 2 times"),
        (b"text,label\nhi,1\nhello, world,0\n", {}, r"x\.csv, line 3: 3 fields, the header has 2"),
        (b"text,label\nhi,1\nhello\n", {}, r"x\.csv, line 3: 1 fields, the header has 2"),
        (b'text,label\n"multi\nline",1\n  ,0\n', {}, r"x\.csv, line 4: empty text in column 'text'"),
        (b"text,label\nhi,1\nyo,\n", {}, r"x\.csv, line 3: empty label in column 'label'"),
        (b"text,label\nhi,1\nyo,nan\n", {}, r"x\.csv, line 3: label nan .*not a finite number"),
        (b"text,label\nhi,1\nyo,inf\n", {}, r"x\.csv, line 3: label inf .*not a finite number"),
        (b'text,label\nhi,1\n"open quote,0\n', {}, r"x\.csv, line 3: malformed CSV"),
        (b'text,label\n"a"b,1\n', {}, r"x\.csv, line 2: malformed CSV"),
        (b"text,label\nhi,1\ncaf\xe9,0\n", {}, r"x\.csv, line 3: not valid UTF-8 \(byte 0xe9"),
        (b"text,label\nhi,1\n", dict(label_column="text"), "both 'text'"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path, content, kwargs, match):
    p = tmp_path / "x.csv"
    p.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load_text_csv(p, **kwargs)


def test_csv_then_vocabulary(tmp_path):
    p = _write_rows(tmp_path / "d.csv", [["text", "label"], ["Great movie!", "pos"], ["awful movie", "neg"]])
    texts, labels = load_text_csv(p)
    v = Vocabulary.fit(texts)
    assert v.tokens[2] == "movie"
    assert [v.decode(ids) for ids in v.encode_many(texts)] == [["great", "movie", "!"], ["awful", "movie"]]
