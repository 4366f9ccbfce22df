"""Caption metrics: corpus BLEU-1..4 (sacrebleu, on the 0-1 scale), the exact-match rate, and the two
retrieval baselines captioning is scored against (the most frequent training caption for every image;
the caption of the nearest training image in pixel space). Texts are compared token by token, split by
``tokenize`` (white space by default; the caption task passes :func:`lstmkit.data.text.tokenize`,
case-folded words and punctuation)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ..checks import require

__all__ = ["bleu_scores", "exact_match", "retrieval_baselines", "RETRIEVAL_BASELINES"]

RETRIEVAL_BASELINES = ("most_frequent_caption", "nearest_neighbour")
Tokenizer = Callable[[str], Sequence[str]]


def bleu_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]], tokenize: Tokenizer = str.split
                ) -> dict[str, float]:
    """Corpus BLEU-1..4 on the 0-1 scale (sacrebleu's score / 100) against every reference of each
    hypothesis; texts are compared as their ``tokenize`` tokens."""
    BLEU = require("sacrebleu.metrics", "BLEU needs sacrebleu", "vision").BLEU
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"need as many reference lists as hypotheses (and at least one), got {len(hypotheses)} "
                         f"hypotheses and {len(references)} reference lists")
    if any(not refs for refs in references):
        raise ValueError("every hypothesis needs at least one reference")
    _normal = lambda text: " ".join(tokenize(text))  # noqa: E731
    k = max(len(r) for r in references)
    # sacrebleu wants K reference streams; repeating a reference changes no count, so pad with it
    streams = [[_normal(refs[min(j, len(refs) - 1)]) for refs in references] for j in range(k)]
    hyps = [_normal(h) for h in hypotheses]
    return {f"bleu{n}": BLEU(max_ngram_order=n, tokenize="none", force=True).corpus_score(hyps, streams).score / 100
            for n in (1, 2, 3, 4)}


def exact_match(hypotheses: Sequence[str], references: Sequence[Sequence[str]], tokenize: Tokenizer = str.split
                ) -> float:
    """The share of hypotheses equal (as ``tokenize`` tokens) to one of their references."""
    tokens = lambda text: tuple(tokenize(text))  # noqa: E731
    return float(np.mean([tokens(h) in {tokens(r) for r in refs} for h, refs in zip(hypotheses, references)]))


def retrieval_baselines(train_images: np.ndarray, train_refs: list, test_images: np.ndarray, test_refs: list,
                        tokenize: Tokenizer = str.split) -> dict:
    """BLEU and exact match of the most frequent training caption (its tokens joined by spaces) for every
    image, and of the first caption of the nearest training image (Euclidean, in pixel space)."""
    _normal = lambda text: " ".join(tokenize(text))  # noqa: E731
    counts: dict[str, int] = {}
    for refs in train_refs:
        for r in refs:
            counts[_normal(r)] = counts.get(_normal(r), 0) + 1
    frequent = max(sorted(counts), key=lambda c: counts[c])
    a = torch.from_numpy(train_images.reshape(len(train_images), -1))
    nearest = []
    for start in range(0, len(test_images), 256):
        b = torch.from_numpy(test_images[start:start + 256].reshape(min(256, len(test_images) - start), -1))
        nearest.extend(torch.cdist(b, a).argmin(1).tolist())
    nn_hyps = [train_refs[j][0] for j in nearest]
    scores = lambda hyps: {**bleu_scores(hyps, test_refs, tokenize), "exact": exact_match(hyps, test_refs, tokenize)}  # noqa: E731
    return {"most_frequent_caption": {**scores([frequent] * len(test_refs)), "caption": frequent},
            "nearest_neighbour": scores(nn_hyps)}
