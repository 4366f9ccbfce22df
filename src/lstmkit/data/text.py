"""Text for classification: a tokenizer, a vocabulary fit on training texts, and a CSV loader.

Tokenizer rule (:func:`tokenize`): the text is lower-cased with :meth:`str.casefold`, then
split by the regular expression ``\\w+(?:'\\w+)?|[^\\w\\s]``. A token is either a word (a run
of Unicode letters, digits or ``_``, with at most one ASCII-apostrophe part joined on, as in
``don't`` or ``o'clock``) or one single punctuation or symbol character. Whitespace only
separates. So ``"Don't stop!!"`` gives ``["don't", "stop", "!", "!"]``. Only the ASCII
apostrophe ``'`` joins: a typographic ``’`` is a punctuation token of its own. No Unicode
normalisation is applied, so a letter written with a combining accent splits off the accent.

Vocabulary rules (:class:`Vocabulary`): index 0 is always ``<pad>`` and index 1 always
``<unk>``; neither can collide with a real token, since the tokenizer splits ``<`` and ``>``
off. :meth:`Vocabulary.fit` counts tokens over the training texts only, keeps those seen at
least ``min_freq`` times, orders them by descending count and then alphabetically (so the
result does not depend on the order of the texts), and keeps the first ``max_size`` entries
counting the two specials. Tokens outside the vocabulary encode to ``<unk>``.

:func:`load_text_csv` reads one text (and optionally one label) per row of a UTF-8 CSV file
with a header row; malformed input raises ``ValueError`` naming the file and, for a row, its
line. Nothing is dropped silently (only lines that are entirely blank are skipped).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np

from ..checks import check_int
from .files import parse_labels

__all__ = ["tokenize", "Vocabulary", "load_text_csv"]

_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Case-folded word and punctuation tokens of ``text`` (the rule is in the module docstring)."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
    return _TOKEN.findall(text.casefold())


@dataclass(frozen=True)
class Vocabulary:
    """Tokens by id: the :attr:`SPECIALS` first (here ``"<pad>"`` 0, ``"<unk>"`` 1), then the kept tokens.

    Build it with :meth:`fit`; save it with :meth:`to_dict` and load it with :meth:`from_dict`.
    A subclass may declare other specials (e.g. start/end tokens for captions).
    """

    PAD: ClassVar[str] = "<pad>"
    UNK: ClassVar[str] = "<unk>"
    SPECIALS: ClassVar[tuple[str, ...]] = ("<pad>", "<unk>")
    pad_id: ClassVar[int] = 0
    unk_id: ClassVar[int] = 1

    tokens: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tokens = self.tokens
        if not isinstance(tokens, (list, tuple)):
            raise ValueError(f"tokens must be a list or tuple of str, got {type(tokens).__name__}")
        tokens, n = tuple(tokens), len(self.SPECIALS)
        if len(tokens) <= n or tokens[:n] != self.SPECIALS:
            raise ValueError(f"tokens must start with {', '.join(map(repr, self.SPECIALS))} and hold at least one more "
                             f"token, got {list(tokens[:n + 1])}")
        for i, t in enumerate(tokens[n:], start=n):
            if not isinstance(t, str):
                raise ValueError(f"tokens[{i}] is {type(t).__name__}, expected str")
            if tokenize(t) != [t]:
                raise ValueError(f"tokens[{i}] = {t!r} is not a single token as tokenize() produces it")
        index = {t: i for i, t in enumerate(tokens)}
        if len(index) != len(tokens):
            dup = next(t for t, n in Counter(tokens).items() if n > 1)
            raise ValueError(f"tokens must be unique; {dup!r} occurs more than once")
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "_index", index)

    @classmethod
    def fit(cls, texts: Sequence[str], min_freq: int = 1, max_size: int | None = None) -> "Vocabulary":
        """Count tokens over the training ``texts``; keep those seen ``min_freq`` times or more,
        most frequent first (ties alphabetical), at most ``max_size`` entries with the specials."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of str, got a single str")
        if len(texts) == 0:
            raise ValueError("texts is empty; fit needs at least one training text")
        min_freq = check_int("min_freq", min_freq)
        n = len(cls.SPECIALS)
        if max_size is not None:  # the specials and at least one token
            max_size = check_int("max_size", max_size, minimum=n + 1)
        counts: Counter[str] = Counter()
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
            counts.update(tokenize(text))
        kept = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        if not kept:
            top = max(counts.values(), default=0)
            raise ValueError(f"no token occurs min_freq={min_freq} times in the {len(texts)} texts (the most frequent occurs {top} times)")
        if max_size is not None:
            kept = kept[: max_size - n]
        return cls((*cls.SPECIALS, *kept))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` as an int64 array (T,); unknown tokens map to :attr:`unk_id`."""
        tokens = tokenize(text)
        if not tokens:
            raise ValueError(f"text has no tokens (empty or whitespace only): {text!r}")
        index = self._index
        return np.array([index.get(t, self.unk_id) for t in tokens], dtype=np.int64)

    def encode_many(self, texts: Sequence[str]) -> list[np.ndarray]:
        """:meth:`encode` for each text; errors name the position, e.g. ``texts[3] has no tokens``."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of str, got a single str")
        out = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
            try:
                out.append(self.encode(text))
            except ValueError:
                raise ValueError(f"texts[{i}] has no tokens (empty or whitespace only): {text!r}") from None
        return out

    def decode(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """Tokens of ``ids`` (a 1-D sequence of ints in ``[0, len(self))``), specials included."""
        a = np.asarray(ids)
        if a.ndim != 1:
            raise ValueError(f"ids must be 1-D, got shape {a.shape}")
        if a.size and a.dtype.kind not in "iu":
            raise ValueError(f"ids must be integers, got dtype {a.dtype}")
        bad = (a < 0) | (a >= len(self.tokens))
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise ValueError(f"ids[{j}] = {int(a[j])} is out of range [0, {len(self.tokens)})")
        return [self.tokens[int(i)] for i in a]

    def to_dict(self) -> dict:
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        """Inverse of :meth:`to_dict`; raises ``ValueError`` when the data was altered into
        something :meth:`fit` cannot produce (wrong keys, specials moved, duplicates, non-tokens)."""
        if not isinstance(d, dict) or set(d) != {"tokens"}:
            raise ValueError(f"expected a dict with the single key 'tokens', got {sorted(d) if isinstance(d, dict) else type(d).__name__}")
        if not isinstance(d["tokens"], list):
            raise ValueError(f"'tokens' must be a list of str, got {type(d['tokens']).__name__}")
        return cls(tuple(d["tokens"]))


def load_text_csv(
    path: str | os.PathLike, text_column: str = "text", label_column: str | None = "label"
) -> tuple[list[str], np.ndarray | None]:
    """Texts (as written in the file) and labels from a UTF-8 CSV file with a header row.

    Quoted fields may hold commas and newlines. Labels go through
    :func:`lstmkit.data.files.parse_labels` (int64 when all are whole numbers, float when all
    are numbers, else str); ``label_column=None`` reads unlabelled texts (labels ``None``).
    Every row needs as many fields as the header, a non-blank text and, if labelled, a
    non-empty label. Entirely blank lines are skipped. A leading UTF-8 byte-order mark is ignored.
    """
    if not isinstance(text_column, str):
        raise TypeError(f"text_column must be a str, got {type(text_column).__name__}")
    if label_column is not None and not isinstance(label_column, str):
        raise TypeError(f"label_column must be a str or None, got {type(label_column).__name__}")
    if label_column == text_column:
        raise ValueError(f"text_column and label_column are both {text_column!r}")
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e})") from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: not valid UTF-8 (byte {e.object[e.start]:#04x} at offset {e.start}); save the file as UTF-8") from None

    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []  # (first line of the record, fields)
    start = 1
    try:
        for row in reader:
            if row:
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as e:
        raise ValueError(f"{path}, line {start}: malformed CSV ({e})") from None
    if not rows:
        raise ValueError(f"{path}: empty file; expected a header row naming the columns, e.g. 'text,label'")

    header_line, header = rows[0]
    names = [h.strip() for h in header]
    wanted = [text_column] if label_column is None else [text_column, label_column]
    for name in wanted:
        if name not in names:
            raise ValueError(f"{path}: no column named {name!r} in the header on line {header_line}; columns found: {names}")
        if names.count(name) > 1:
            raise ValueError(f"{path}: column {name!r} appears {names.count(name)} times in the header")
    t_col = names.index(text_column)
    l_col = None if label_column is None else names.index(label_column)

    texts: list[str] = []
    labels: list[str] = []
    lines: list[int] = []
    for line, row in rows[1:]:
        if len(row) != len(names):
            raise ValueError(f"{path}, line {line}: {len(row)} fields, the header has {len(names)} ({names}); quote fields that contain commas")
        if not row[t_col].strip():
            raise ValueError(f"{path}, line {line}: empty text in column {text_column!r}")
        texts.append(row[t_col])
        if l_col is not None:
            label = row[l_col].strip()
            if not label:
                raise ValueError(f"{path}, line {line}: empty label in column {label_column!r}")
            labels.append(label)
        lines.append(line)
    if not texts:
        raise ValueError(f"{path}: a header but no data rows")
    if label_column is None:
        return texts, None

    try:  # all-numeric labels: refuse NaN/inf rather than pass them on as classes
        values = [float(v) for v in labels]
    except ValueError:
        values = []
    for v, line in zip(values, lines):
        if not math.isfinite(v):
            raise ValueError(f"{path}, line {line}: label {v} in column {label_column!r} is not a finite number")
    return texts, parse_labels(labels)
