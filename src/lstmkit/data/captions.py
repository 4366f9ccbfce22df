"""Captioned images: generated digit scenes, a Flickr8k-layout loader, and a caption vocabulary.

- :func:`caption_scenes`: a canvas with 1-3 real handwritten digits (from
  :func:`lstmkit.data.images.load_glyphs`; test scenes are built from test glyphs only) and
  several reference captions per scene from a small grammar of digits and spatial relations::

      one digit        "a single 3"  "just one 3"  "one 3 on its own"  "the digit 3 alone"
      two in a row     "a 3 to the left of a 7"  "a 7 to the right of a 3"
                       "a 3 and a 7 from left to right"  "a 3 left of a 7"
      two in a column  "a 5 above a 2"  "a 2 below a 5"  "a 5 and a 2 from top to bottom"  "a 5 on top of a 2"
      three in a row   "a 4 and a 9 and a 1 from left to right"  "a 4 , a 9 and a 1 from left to right"
                       "a 1 and a 9 and a 4 from right to left"  "the digits 4 9 1 in a row"

  Every reference is true of its scene (digits in a row never overlap horizontally, digits in a
  column never vertically), so multi-reference BLEU rewards any of the phrasings.
- :func:`load_flickr8k`: an image folder plus ``Flickr8k.token.txt`` (``IMAGE.jpg#N<TAB>caption``
  per line) and, when present, the split files ``Flickr_8k.{train,dev,test}Images.txt``.
  Malformed input raises ``ValueError`` naming the file and line (empty captions file, a line
  without a tab, an empty caption, a caption whose image is missing, a file that is not an image).
- :class:`CaptionVocab`: ``<pad> <start> <end> <unk>`` then the training tokens.
  :class:`lstmkit.data.text.Vocabulary` cannot hold ``<start>``/``<end>`` (it admits only tokens
  that :func:`~lstmkit.data.text.tokenize` produces, and has no start/end ids), so captions use
  this small vocabulary with the same tokenizer.

Images are returned channels-first, ``(N, C, H, W)`` float32 in [0, 1], ready for a model.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple, Sequence

import numpy as np
import torch

from ..checks import check_int
from .images import load_glyphs, read_image, resize
from .splits import random_split
from .text import Vocabulary, tokenize

__all__ = ["Placement", "Scenes", "CaptionSet", "caption_scenes", "scene_captions", "load_flickr8k", "CaptionVocab",
           "load_caption_data", "CaptionBatches"]

log = logging.getLogger(__name__)

LAYOUTS = ("single", "row2", "column2", "row3")
_LAYOUT_WEIGHTS = (0.16, 0.28, 0.28, 0.28)
_COUNT = {"single": 1, "row2": 2, "column2": 2, "row3": 3}


class Placement(NamedTuple):
    """One digit on a canvas: its value, top-left corner and the glyph it was drawn from."""

    digit: int
    top: int
    left: int
    glyph: int  # index into load_glyphs(split, glyph_size)


class Scenes(NamedTuple):
    images: np.ndarray  # (N, 1, H, W) float32 in [0, 1]
    captions: list[list[str]]  # reference captions per image
    layouts: list[tuple[str, tuple[Placement, ...]]]  # (layout kind, digits in reading order)


class CaptionSet(NamedTuple):
    images: np.ndarray  # (N, C, H, W) float32 in [0, 1]
    captions: list[list[str]]  # reference captions per image
    names: list[str]  # image file names


# ---------------------------------------------------------------------------------- scenes


def scene_captions(kind: str, digits: Sequence[int]) -> list[str]:
    """The reference captions of a scene of layout ``kind`` with ``digits`` in reading order
    (left to right, or top to bottom)."""
    d = [str(int(x)) for x in digits]
    if kind not in _COUNT:
        raise ValueError(f"kind must be one of {', '.join(LAYOUTS)}, got {kind!r}")
    if len(d) != _COUNT[kind]:
        raise ValueError(f"layout {kind!r} has {_COUNT[kind]} digit(s), got {len(d)}")
    if kind == "single":
        (a,) = d
        return [f"a single {a}", f"just one {a}", f"one {a} on its own", f"the digit {a} alone"]
    if kind == "row2":
        a, b = d
        return [f"a {a} to the left of a {b}", f"a {b} to the right of a {a}", f"a {a} and a {b} from left to right",
                f"a {a} left of a {b}"]
    if kind == "column2":
        a, b = d
        return [f"a {a} above a {b}", f"a {b} below a {a}", f"a {a} and a {b} from top to bottom",
                f"a {a} on top of a {b}"]
    a, b, c = d
    return [f"a {a} and a {b} and a {c} from left to right", f"a {a} , a {b} and a {c} from left to right",
            f"a {c} and a {b} and a {a} from right to left", f"the digits {a} {b} {c} in a row"]


def _offsets(rng: np.random.Generator, n: int, size: int, extent: int) -> list[int]:
    """Top-left coordinates of ``n`` non-overlapping spans of ``size`` along ``extent``."""
    gaps = rng.multinomial(extent - n * size, np.full(n + 1, 1.0 / (n + 1)))
    return [int(gaps[: i + 1].sum()) + i * size for i in range(n)]


def caption_scenes(n: int, seed: int = 0, split: Literal["train", "test"] = "train", canvas: tuple[int, int] = (40, 56),
                   glyph_size: int = 16, max_digits: int = 3, jitter: int = 3,
                   mnist: str | os.PathLike | None = None) -> Scenes:
    """``n`` captioned digit scenes on ``canvas`` (H, W), drawn from ``split``'s glyphs.

    Layouts (one digit; two in a row; two in a column; three in a row, limited by
    ``max_digits``) are drawn with fixed weights; digits in a row share a baseline up to
    ``jitter`` pixels, digits in a column a left edge up to ``jitter``. Same arguments, same scenes.
    """
    n = check_int("n", n)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if max_digits not in (1, 2, 3):
        raise ValueError(f"max_digits must be 1, 2 or 3, got {max_digits!r}")
    jitter = check_int("jitter", jitter, minimum=0)
    if not (isinstance(canvas, (tuple, list)) and len(canvas) == 2 and all(isinstance(v, int) for v in canvas)):
        raise ValueError(f"canvas must be (height, width) in pixels, got {canvas!r}")
    height, width = canvas
    kinds = [k for k in LAYOUTS if _COUNT[k] <= max_digits]
    g = glyph_size
    wide, tall = (3 if max_digits == 3 else 1), (2 if max_digits >= 2 else 1)
    need = (max(tall * g, g + 2 * jitter), max(wide * g, g + 2 * jitter))
    if height < need[0] or width < need[1]:
        raise ValueError(f"canvas {height}x{width} is too small for max_digits={max_digits} digits of {g} px with "
                         f"jitter {jitter}; it needs at least {need[0]}x{need[1]}")
    glyphs = load_glyphs(split, glyph_size, mnist=mnist)
    weights = np.array([_LAYOUT_WEIGHTS[LAYOUTS.index(k)] for k in kinds])
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 1, height, width), dtype=np.float32)
    captions, layouts = [], []
    for i in range(n):
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        count = _COUNT[kind]
        picks = rng.integers(0, len(glyphs), count)
        if kind == "column2":
            tops = _offsets(rng, 2, g, height)
            base = int(rng.integers(jitter, width - g - jitter + 1))
            lefts = [base + int(rng.integers(-jitter, jitter + 1)) for _ in tops]
        else:
            lefts = _offsets(rng, count, g, width) if count > 1 else [int(rng.integers(0, width - g + 1))]
            base = int(rng.integers(jitter, height - g - jitter + 1))
            tops = [base + int(rng.integers(-jitter, jitter + 1)) for _ in lefts]
        placed = tuple(Placement(int(glyphs.labels[p]), t, l, int(p)) for p, t, l in zip(picks, tops, lefts))
        for p in placed:
            np.maximum(images[i, 0, p.top:p.top + g, p.left:p.left + g], glyphs.images[p.glyph],
                       out=images[i, 0, p.top:p.top + g, p.left:p.left + g])
        captions.append(scene_captions(kind, [p.digit for p in placed]))
        layouts.append((kind, placed))
    return Scenes(images, captions, layouts)


# -------------------------------------------------------------------------------- flickr8k

_TOKEN_FILES = ("Flickr8k.token.txt", "Flickr8k_text/Flickr8k.token.txt")
_IMAGE_DIRS = ("Flicker8k_Dataset", "Flickr8k_Dataset", "Images", "images", "Flickr8k_Dataset/Flicker8k_Dataset")
_SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "dev": "Flickr_8k.devImages.txt",
                "test": "Flickr_8k.testImages.txt"}


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = e.object[: e.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: not valid UTF-8; save the file as UTF-8") from None


def read_caption_file(path: str | os.PathLike) -> dict[str, list[str]]:
    """``{image name: [captions]}`` from a Flickr8k token file (``IMAGE#N<TAB>caption`` lines,
    ``#N`` optional), in file order; blank lines are skipped, anything else malformed raises."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"captions file {str(path)!r} does not exist")
    out: dict[str, list[str]] = {}
    for number, line in enumerate(_read_text(p).splitlines(), start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ValueError(f"{p}, line {number}: no tab; expected 'IMAGE.jpg#N<TAB>caption', got {line[:80]!r}")
        key, caption = line.split("\t", 1)
        name = key.strip().split("#", 1)[0]
        if not name:
            raise ValueError(f"{p}, line {number}: no image name before the tab")
        if not caption.strip():
            raise ValueError(f"{p}, line {number}: empty caption for {name}")
        if not tokenize(caption):
            raise ValueError(f"{p}, line {number}: the caption for {name} has no words: {caption!r}")
        out.setdefault(name, []).append(caption.strip())
    if not out:
        raise ValueError(f"{p}: empty captions file; expected lines 'IMAGE.jpg#N<TAB>caption'")
    return out


def _find_first(directory: Path, candidates: Sequence[str], what: str, is_dir: bool) -> Path:
    for c in candidates:
        p = directory / c
        if p.is_dir() if is_dir else p.is_file():
            return p
    raise FileNotFoundError(f"{directory} has no {what}: looked for {', '.join(candidates)}")


def load_flickr8k(directory: str | os.PathLike, split: Literal["all", "train", "dev", "test"] = "all",
                  size: tuple[int, int] = (64, 64), channels: int = 3, captions_file: str | os.PathLike | None = None,
                  images_dir: str | os.PathLike | None = None, limit: int | None = None) -> CaptionSet:
    """Images resized to ``size`` (H, W) and their captions from a Flickr8k-layout ``directory``.

    The captions file is ``captions_file`` or ``Flickr8k.token.txt`` (also looked for under
    ``Flickr8k_text/``); images are in ``images_dir`` or ``Flicker8k_Dataset/`` (the original
    spelling), ``Flickr8k_Dataset/``, ``Images/``, or ``directory`` itself. ``split`` other than
    "all" keeps the names listed in ``Flickr_8k.<split>Images.txt``. ``limit``: the first
    ``limit`` images (in captions-file order) only.
    """
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"Flickr8k directory {str(directory)!r} does not exist")
    if split not in ("all", *_SPLIT_FILES):
        raise ValueError(f"split must be one of all, train, dev, test; got {split!r}")
    if limit is not None:
        limit = check_int("limit", limit)
    token_path = Path(captions_file) if captions_file is not None else _find_first(d, _TOKEN_FILES, "captions file",
                                                                                     False)
    captions = read_caption_file(token_path)
    if images_dir is not None:
        image_root = Path(images_dir)
        if not image_root.is_dir():
            raise FileNotFoundError(f"images_dir {str(images_dir)!r} is not a directory")
    else:
        try:
            image_root = _find_first(d, _IMAGE_DIRS, "image folder", True)
        except FileNotFoundError:
            image_root = d
    names = list(captions)
    if split != "all":
        split_path = d / _SPLIT_FILES[split]
        if not split_path.is_file():
            split_path = d / "Flickr8k_text" / _SPLIT_FILES[split]
        if not split_path.is_file():
            raise FileNotFoundError(f"split={split!r} needs {_SPLIT_FILES[split]} in {d}")
        listed = [s.strip() for s in _read_text(split_path).splitlines() if s.strip()]
        unknown = [s for s in listed if s not in captions]
        if unknown:
            raise ValueError(f"{split_path} lists {len(unknown)} image(s) without captions in {token_path}, "
                             f"e.g. {unknown[0]!r}")
        if not listed:
            raise ValueError(f"{split_path} lists no images")
        names = listed
    if limit is not None:
        names = names[:limit]
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    images = np.empty((len(names), channels, *size), dtype=np.float32)
    for i, name in enumerate(names):
        path = image_root / name
        if not path.is_file():
            raise FileNotFoundError(f"{token_path} has captions for {name}, but {path} does not exist")
        a = read_image(path, channels)  # a clear ValueError for a file that is not an image
        a = a[..., None] if a.ndim == 2 else a
        if a.shape[:2] != tuple(size):
            a = resize(a[None], size)[0]
        images[i] = a.transpose(2, 0, 1)
    return CaptionSet(images, [captions[n] for n in names], names)


# ------------------------------------------------------------------------------ vocabulary


class CaptionVocab(Vocabulary):
    """Caption tokens by id: ``<pad>`` 0, ``<start>`` 1, ``<end>`` 2, ``<unk>`` 3, then words.

    A :class:`~lstmkit.data.text.Vocabulary` with start and end tokens: :meth:`fit` counts
    :func:`~lstmkit.data.text.tokenize` tokens over training captions only (most frequent first,
    ties alphabetical); words outside it encode to ``<unk>``.
    """

    SPECIALS: ClassVar[tuple[str, ...]] = ("<pad>", "<start>", "<end>", "<unk>")
    pad_id: ClassVar[int] = 0
    start_id: ClassVar[int] = 1
    end_id: ClassVar[int] = 2
    unk_id: ClassVar[int] = 3

    @classmethod
    def fit(cls, captions: Sequence[str] | Sequence[Sequence[str]], min_freq: int = 1) -> "CaptionVocab":
        """From training captions: a flat list, or a list of reference lists."""
        flat = _flatten(captions)
        try:
            return super().fit(flat, min_freq)
        except ValueError as e:
            if str(e).startswith("no token occurs"):
                raise ValueError(f"no word occurs min_freq={min_freq} times in the {len(flat)} training captions") from None
            raise

    def encode(self, caption: str) -> np.ndarray:
        """``[<start>, words..., <end>]`` as int64 ids; unknown words become ``<unk>``."""
        if not isinstance(caption, str):
            raise TypeError(f"caption must be a str, got {type(caption).__name__}")
        words = tokenize(caption)
        if not words:
            raise ValueError(f"caption has no words (empty or whitespace only): {caption!r}")
        ids = [self._index.get(w, self.unk_id) for w in words]
        return np.array([self.start_id, *ids, self.end_id], dtype=np.int64)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """The words of ``ids`` joined by spaces: stops at ``<end>``, skips ``<pad>``/``<start>``."""
        words = []
        for i in np.asarray(ids, dtype=np.int64).reshape(-1):
            if not 0 <= i < len(self.tokens):
                raise ValueError(f"token id {int(i)} is out of range [0, {len(self.tokens)})")
            if i == self.end_id:
                break
            if i not in (self.pad_id, self.start_id):
                words.append(self.tokens[int(i)])
        return " ".join(words)

def _flatten(captions) -> list[str]:
    if isinstance(captions, str) or not isinstance(captions, Sequence) or len(captions) == 0:
        raise ValueError("captions must be a non-empty list of str (or of lists of str)")
    flat = []
    for i, c in enumerate(captions):
        items = [c] if isinstance(c, str) else c
        if not isinstance(items, Sequence) or not items or not all(isinstance(s, str) for s in items):
            raise TypeError(f"captions[{i}] must be a str or a non-empty list of str, got {c!r}")
        flat.extend(items)
    return flat


# ------------------------------------------------------------------------- a task's data and batches


def load_caption_data(cfg) -> tuple[tuple[np.ndarray, list], tuple[np.ndarray, list]]:
    """((train images (N, C, H, W), reference lists), (test images, reference lists)) of a caption
    config's ``data`` section (:class:`lstmkit.tasks.caption.CaptionDataConfig`)."""
    if cfg.source == "scenes":
        kw = {"canvas": tuple(cfg.canvas), "glyph_size": cfg.glyph_size, "max_digits": cfg.max_digits,
              "mnist": cfg.mnist}
        tr = caption_scenes(cfg.n_train, cfg.seed, "train", **kw)
        te = caption_scenes(cfg.n_test, cfg.seed + 1, "test", **kw)
        return (tr.images, tr.captions), (te.images, te.captions)
    kw = {"size": tuple(cfg.image_size), "channels": cfg.channels, "limit": cfg.limit}
    d = Path(cfg.directory)
    if (d / "Flickr_8k.trainImages.txt").is_file() or (d / "Flickr8k_text" / "Flickr_8k.trainImages.txt").is_file():
        tr, te = load_flickr8k(d, "train", **kw), load_flickr8k(d, "test", **kw)
        return (tr.images, tr.captions), (te.images, te.captions)
    everything = load_flickr8k(d, "all", **kw)
    tr_idx, te_idx = random_split(len(everything.captions), cfg.test_fraction, cfg.seed,
                                  f"{d}: data.test_fraction", min_kept=2)
    log.info(f"no Flickr_8k.trainImages.txt in {d}: carved a {cfg.test_fraction:.0%} test split (seed {cfg.seed})")
    pick = lambda idx: (everything.images[idx], [everything.captions[i] for i in idx])  # noqa: E731
    return pick(tr_idx), pick(te_idx)


def _pad(seqs: Sequence[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.from_numpy(s)
    return out, lengths


class CaptionBatches:
    """``(images, tokens, lengths)`` batches; ``batches(epoch)`` shuffles and draws one reference per
    image from ``numpy.random.default_rng(seed + epoch)`` (so a run is a function of its seed)."""

    def __init__(self, images: np.ndarray, encoded: list[list[np.ndarray]], batch_size: int, pad_id: int,
                 seed: int = 0) -> None:
        self.images, self.encoded, self.batch_size, self.pad_id, self.seed = images, encoded, batch_size, pad_id, seed

    def batches(self, epoch: int):
        rng = np.random.default_rng(self.seed + epoch)
        order = rng.permutation(len(self.encoded))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            seqs = [self.encoded[i][int(rng.integers(len(self.encoded[i])))] for i in idx]
            tokens, lengths = _pad(seqs, self.pad_id)
            yield torch.from_numpy(self.images[idx]), tokens, lengths

    def fixed(self, batch_size: int) -> list[tuple]:
        """Batches in image order, reference ``i % n_refs`` for image ``i`` (validation)."""
        out = []
        for start in range(0, len(self.encoded), batch_size):
            idx = np.arange(start, min(start + batch_size, len(self.encoded)))
            tokens, lengths = _pad([self.encoded[i][i % len(self.encoded[i])] for i in idx], self.pad_id)
            out.append((torch.from_numpy(self.images[idx]), tokens, lengths))
        return out
