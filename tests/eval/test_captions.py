"""Caption metrics (lstmkit.eval.captions)."""

import pytest

from lstmkit.data.text import tokenize
from lstmkit.eval.captions import bleu_scores


def test_bleu_matches_sacrebleu_and_uses_every_reference():
    from sacrebleu.metrics import BLEU

    refs = [["a 3 to the left of a 7", "a 7 to the right of a 3"], ["a single 5"]]
    assert bleu_scores(["a 7 to the right of a 3", "a single 5"], refs, tokenize) == pytest.approx(
        {"bleu1": 1.0, "bleu2": 1.0, "bleu3": 1.0, "bleu4": 1.0})
    hyps = ["a 3 left of a 7", "just one 5"]
    streams = [["a 3 to the left of a 7", "a single 5"], ["a 7 to the right of a 3", "a single 5"]]
    got = bleu_scores(hyps, refs, tokenize)
    for n in (1, 2, 3, 4):
        expected = BLEU(max_ngram_order=n, tokenize="none").corpus_score(hyps, streams).score / 100
        assert got[f"bleu{n}"] == pytest.approx(expected)
    assert 0 < got["bleu4"] < got["bleu1"] < 1
    assert bleu_scores(["A 3 , Left"], [["a 3, left"]], tokenize)["bleu1"] == pytest.approx(1.0)  # tokenize() on both sides
    with pytest.raises(ValueError, match="need as many reference lists as hypotheses"):
        bleu_scores(["a"], [], tokenize)


def test_texts_split_on_white_space_unless_a_tokenizer_is_given():
    from lstmkit.eval.captions import exact_match

    assert bleu_scores(["A 3 , Left"], [["a 3, left"]])["bleu1"] < 1  # "A" and "3," are tokens of their own
    assert exact_match(["A 3 , Left", "a 5"], [["a 3, left"], ["a 5"]]) == 0.5
    assert exact_match(["A 3 , Left", "a 5"], [["a 3, left"], ["a 5"]], tokenize) == 1.0
