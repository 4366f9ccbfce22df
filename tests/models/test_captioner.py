import itertools

import pytest
import torch

from lstmkit.models import create_model
from lstmkit.models.captioner import AttentionCaptioner
from lstmkit.tasks.runs import load_model, save_model

MODELS = ["attention_captioner"]
SMALL = {"channels": [4, 8], "embed_size": 8, "hidden_size": 12, "attention_size": 6}


def _model(name="attention_captioner", vocab_size=9, **kw):
    return create_model(name, vocab_size=vocab_size, **{**SMALL, **kw})


def _batch(b=3, t=6, vocab_size=9, size=(12, 16)):
    images = torch.rand(b, 1, *size)
    tokens = torch.randint(3, vocab_size, (b, t))
    lengths = torch.tensor([t, 4, 2][:b])
    tokens[:, 0] = 1
    for i, n in enumerate(lengths):
        tokens[i, n - 1] = 2
        tokens[i, n:] = 0
    return images, tokens, lengths


@pytest.mark.parametrize("coords", [True, False])
@pytest.mark.parametrize("name", MODELS)
def test_shapes_no_nan_and_every_parameter_gets_a_gradient(name, coords):
    model = _model(name, coords=coords)
    images, tokens, lengths = _batch()
    logits, alpha = model(images, tokens, lengths)
    assert logits.shape == (3, 5, 9) and alpha.shape == (3, 5, 3 * 4)  # 12x16 / 4 -> 3x4 grid
    assert torch.isfinite(logits).all()
    loss = model.loss(images, tokens, lengths)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_coordinate_features_say_where_each_location_is():
    model = _model()
    features, _, (h, w) = model.encode(torch.rand(2, 1, 12, 16))
    assert features.shape == (2, h * w, 8 + 2) and (h, w) == (3, 4)
    coords = features[0, :, -2:].reshape(h, w, 2)
    torch.testing.assert_close(coords[:, 0, 0], torch.tensor([-1.0, 0.0, 1.0]))  # rows
    torch.testing.assert_close(coords[0, :, 1], torch.linspace(-1, 1, 4))  # columns
    torch.testing.assert_close(features[1, :, -2:], features[0, :, -2:])
    assert _model(coords=False).encode(torch.rand(2, 1, 12, 16))[0].shape == (2, 12, 8)


def test_attention_sums_to_one_on_valid_steps_and_is_zero_on_padding():
    model = _model()
    images, tokens, lengths = _batch()
    _, alpha = model(images, tokens, lengths)
    sums = alpha.sum(2)
    valid = torch.arange(5)[None, :] < (lengths - 1)[:, None]
    torch.testing.assert_close(sums[valid], torch.ones(int(valid.sum())))
    assert (alpha[~valid] == 0).all()
    assert (alpha >= 0).all()


def test_padded_equals_unpadded():
    model = _model().eval()  # eval: BatchNorm uses running statistics, so rows are independent
    images, tokens, lengths = _batch()
    logits, alpha = model(images, tokens, lengths)
    for i, n in enumerate(lengths.tolist()):
        alone, alone_alpha = model(images[i:i + 1], tokens[i:i + 1, :n], lengths[i:i + 1])
        torch.testing.assert_close(logits[i, : n - 1], alone[0])
        torch.testing.assert_close(alpha[i, : n - 1], alone_alpha[0])


def test_loss_is_masked_cross_entropy_plus_doubly_stochastic_term():
    model = _model(alpha_c=0.7).eval()
    images, tokens, lengths = _batch()
    logits, alpha = model(images, tokens, lengths)
    terms = [torch.nn.functional.cross_entropy(logits[i, t], tokens[i, t + 1], reduction="sum")
             for i, n in enumerate(lengths.tolist()) for t in range(n - 1)]
    expected = torch.stack(terms).sum() / len(terms) + 0.7 * ((1 - alpha.sum(1)) ** 2).mean()
    torch.testing.assert_close(model.loss(images, tokens, lengths), expected)


def test_greedy_equals_beam_search_of_width_one():
    model = _model().eval()
    images = torch.rand(4, 1, 12, 16)
    g, b = model.greedy(images, max_len=7), model.beam_search(images, beam=1, max_len=7)
    for x, y in zip(g, b):
        torch.testing.assert_close(x, y)
    assert g.attention.shape == (4, g.tokens.shape[1], 3, 4)


def _sequence_score(model, image, words):
    """Summed log-probability of words + <end> under the model, step by step (no beam code)."""
    features, projected, _ = model.encode(image[None])
    state = model.init_state(features)
    prev, total = torch.tensor([model.start_id]), 0.0
    for w in [*words, model.end_id]:
        logits, state, _ = model.step(prev, state, features, projected)
        logits[:, [model.pad_id, model.start_id]] = float("-inf")
        total += torch.log_softmax(logits, 1)[0, w].item()
        prev = torch.tensor([w])
    return total


def test_wide_beam_finds_the_exact_best_caption():
    torch.manual_seed(3)
    model = _model(vocab_size=5).eval()  # words 3 and 4, <end> 2
    image = torch.rand(1, 12, 16)
    with torch.no_grad():
        best = max((_sequence_score(model, image, list(ws)), list(ws)) for n in range(3)
                   for ws in itertools.product([3, 4], repeat=n))
        out = model.beam_search(image[None], beam=32, max_len=3)
    if out.ended[0]:  # the exhaustive best finished caption
        assert out.tokens[0, : out.lengths[0]].tolist() == best[1]
        assert out.scores[0].item() == pytest.approx(best[0], abs=1e-4)
    else:  # no caption finished within the beam: impossible with a beam this wide
        pytest.fail("a 32-wide beam over 2 words and 3 steps must keep a finished caption")


@pytest.mark.parametrize("beam", [1, 3])
def test_a_model_that_never_emits_end_returns_its_best_unfinished_caption(beam):
    model = _model().eval()
    with torch.no_grad():
        model.out.bias[model.end_id] = -1e4  # <end> is never the best word
    images = torch.rand(2, 1, 12, 16)
    out = model.beam_search(images, beam=beam, max_len=6)
    assert not out.ended.any()
    assert out.tokens.shape == (2, 6) and out.lengths.tolist() == [6, 6]
    assert (out.tokens >= 3).all()  # words only: no <end>, <pad> or <start>
    assert out.attention.shape == (2, 6, 3, 4) and torch.isfinite(out.scores).all()
    torch.testing.assert_close(out.attention.sum((2, 3)), torch.ones(2, 6))
    greedy = model.greedy(images, max_len=6)
    assert not greedy.ended.any() and greedy.lengths.tolist() == [6, 6]


def test_a_model_that_ends_at_once_gives_empty_captions():
    model = _model().eval()
    with torch.no_grad():
        model.out.bias[model.end_id] = 1e4
    for out in (model.greedy(torch.rand(2, 1, 12, 16), 5), model.beam_search(torch.rand(2, 1, 12, 16), 4, 5)):
        assert out.ended.all() and out.lengths.tolist() == [0, 0] and out.tokens.shape == (2, 0)
        assert out.attention.shape == (2, 0, 3, 4)


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip(name, tmp_path):
    model = _model(name, dropout=0.1).eval()
    spec = {"name": name, "vocab_size": 9, **SMALL, "dropout": 0.1}
    save_model(tmp_path, model, spec, "caption")
    loaded, meta = load_model(tmp_path, "caption")
    assert meta["model"] == spec and isinstance(loaded, AttentionCaptioner)
    images = torch.rand(2, 1, 12, 16)
    a, b = model.beam_search(images, 3, 5), loaded.beam_search(images, 3, 5)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


def test_can_overfit_a_tiny_batch():
    model = _model(alpha_c=0.0, dropout=0.0)
    images, tokens, lengths = _batch()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    first = model.loss(images, tokens, lengths).item()
    for _ in range(60):
        opt.zero_grad()
        loss = model.loss(images, tokens, lengths)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="vocab_size must be an int >= 1, got 0"):
        AttentionCaptioner(vocab_size=0)
    with pytest.raises(ValueError, match=r"end_id must be an int in \[0, vocab_size=5\)"):
        AttentionCaptioner(vocab_size=5, end_id=7)
    with pytest.raises(ValueError, match="pad_id, start_id and end_id must differ"):
        AttentionCaptioner(vocab_size=5, start_id=0)
    with pytest.raises(ValueError, match="coords must be true or false"):
        AttentionCaptioner(vocab_size=5, coords="yes")
    with pytest.raises(ValueError, match="channels must be a non-empty list"):
        AttentionCaptioner(vocab_size=5, channels=[])
    model = _model()
    images, tokens, lengths = _batch()
    with pytest.raises(ValueError, match="images have 3 channels, this model takes in_channels=1"):
        model.loss(torch.rand(3, 3, 12, 16), tokens, lengths)
    with pytest.raises(ValueError, match=r"lengths must be \(B,\) values in \[2, T=6\]"):
        model.loss(images, tokens, torch.tensor([6, 1, 2]))
    with pytest.raises(ValueError, match="at least 4x4 pixels for 2 encoder blocks"):
        model.greedy(torch.rand(1, 1, 3, 16))
    with pytest.raises(ValueError, match="beam must be an int >= 1, got 0"):
        model.beam_search(images, beam=0)
    with pytest.raises(ValueError, match="max_len must be an int >= 1, got 0"):
        model.greedy(images, max_len=0)
