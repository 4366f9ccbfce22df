"""Autoregressive image models: registry, shapes, likelihood, sampling, completion, save/load."""

import math

import pytest
import torch

from lstmkit.checkpoint import load_checkpoint, save_checkpoint
from lstmkit.models import create_model, list_models
from lstmkit.models.pixelrnn import IndependentPixels, check_binary_images

SMALL = {"pixel_rnn": dict(hidden_size=4, output_size=8), "pixel_cnn": dict(hidden_size=4, num_layers=2, output_size=8),
         "independent_pixels": {}}
CASES = [("pixel_rnn", dict(layer="diagonal")), ("pixel_rnn", dict(layer="row")), ("pixel_cnn", {}),
         ("independent_pixels", {})]
IDS = ["diagonal", "row", "pixel_cnn", "independent"]


def build(name, kw, H=5, W=6):
    return create_model(name, height=H, width=W, **SMALL[name], **kw)


def binary(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < 0.4).float()


def test_all_three_are_registered():
    assert {"pixel_rnn", "pixel_cnn", "independent_pixels"} <= set(list_models())


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_shapes_finite_gradients_everywhere(name, kw):
    m = build(name, kw)
    x = binary(3, 1, 5, 6)
    logits = m(x)
    assert logits.shape == (3, 1, 5, 6) and torch.isfinite(logits).all()
    nll = m.nll(x)
    assert nll.shape == (3,) and torch.isfinite(nll).all() and (nll > 0).all()
    nll.sum().backward()
    for n, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{n} gets no gradient"


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_nll_is_the_sum_of_per_pixel_bernoulli_terms(name, kw):
    m = build(name, kw).double()
    x = binary(2, 1, 5, 6).double()
    p = torch.sigmoid(m(x))
    expected = -(x * p.log() + (1 - x) * (1 - p).log()).sum(dim=(1, 2, 3))
    torch.testing.assert_close(m.nll(x), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_probabilities_sum_to_one_over_all_images(name, kw):
    """Exact likelihood: summed over all 2^(H*W) binary images of a 3x3 grid, p(x) is 1."""
    m = create_model(name, height=3, width=3, **SMALL[name], **kw).double()
    codes = torch.arange(2**9)
    x = ((codes[:, None] >> torch.arange(9)) & 1).double().view(-1, 1, 3, 3)
    with torch.no_grad():
        total = torch.logsumexp(-m.nll(x), 0).exp().item()
    assert math.isclose(total, 1.0, rel_tol=1e-9)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_sample_and_complete(name, kw):
    m = build(name, kw)
    s1 = m.sample(4, torch.Generator().manual_seed(3))
    s2 = m.sample(4, torch.Generator().manual_seed(3))
    assert s1.shape == (4, 1, 5, 6) and torch.equal(s1, s2)
    assert ((s1 == 0) | (s1 == 1)).all()
    x = binary(3, 1, 5, 6, seed=1)
    c = m.complete(x, 2, torch.Generator().manual_seed(0))
    assert c.shape == x.shape and torch.equal(c[:, :, :2], x[:, :, :2]) and ((c == 0) | (c == 1)).all()
    assert torch.equal(m.complete(x, 5), x)  # nothing left to sample
    assert m.training  # sampling restores the mode


def test_sampling_follows_the_model():
    """Independent pixels fit to the data: sample frequencies match the fitted probabilities."""
    torch.manual_seed(0)
    x = (torch.rand(400, 1, 2, 3) < torch.tensor([0.1, 0.5, 0.9, 0.2, 0.7, 0.3]).view(1, 1, 2, 3)).float()
    m = IndependentPixels(height=2, width=3).fit_mean(x)
    torch.testing.assert_close(torch.sigmoid(m.logits), (x.sum(0, keepdim=True) + 0.5) / 401)
    freq = m.sample(4000, torch.Generator().manual_seed(1)).mean(0)
    assert (freq - torch.sigmoid(m.logits)[0]).abs().max() < 0.03


def test_a_pixel_rnn_learns_a_deterministic_pattern():
    """Each row copies the row above: a Row LSTM can drive the NLL of such images towards 0 bits
    beyond the first row (8 free pixels: at most 8 ln 2 = 5.5 nats)."""
    torch.manual_seed(0)
    first = (torch.rand(64, 1, 1, 4) < 0.5).float()
    x = first.expand(64, 1, 4, 4).contiguous()
    m = create_model("pixel_rnn", layer="row", height=4, width=4, hidden_size=8, output_size=16)
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    for _ in range(150):
        loss = m.nll(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert m.nll(x).mean().item() < 4 * math.log(2) + 0.5
    c = m.complete(x[:8], 1, torch.Generator().manual_seed(0))
    assert (c == x[:8]).float().mean() > 0.95


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_save_load_round_trip(name, kw, tmp_path):
    m = build(name, kw)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    save_checkpoint(tmp_path, m.state_dict(), {"model": {"name": name, **kw}})
    state, meta = load_checkpoint(tmp_path)
    m2 = build(meta["model"]["name"], {k: v for k, v in meta["model"].items() if k != "name"})
    m2.load_state_dict(state)
    x = binary(2, 1, 5, 6)
    torch.testing.assert_close(m2(x), m(x), rtol=0, atol=0)


def test_binary_checks_name_the_problem():
    m = build("pixel_rnn", dict(layer="row"))
    with pytest.raises(ValueError, match=r"binary pixels \(0 or 1\), found 0.5"):
        m.nll(torch.full((1, 1, 5, 6), 0.5))
    with pytest.raises(ValueError, match="images of 8x8 .* this model is for 5x6"):
        m.complete(binary(1, 1, 8, 8), 2)
    with pytest.raises(ValueError, match=r"rows_known must be an int in \[0, 5\]"):
        m.complete(binary(1, 1, 5, 6), 6)
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        m.nll([[0, 1]])
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        m.nll(torch.zeros(2, 3, 5, 6))
    assert check_binary_images(torch.ones(2, 5, 6, dtype=torch.bool), 5, 6).shape == (2, 1, 5, 6)
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        m.sample(0)


@pytest.mark.parametrize("kw,match", [
    (dict(layer="column"), "layer must be 'row'"),
    (dict(height=0), "height must be an int >= 1, got 0"),
    (dict(hidden_size=2.5), "hidden_size must be an int >= 1, got 2.5"),
    (dict(kernel_size=4, layer="row"), "kernel_size must be odd"),
])
def test_constructor_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        create_model("pixel_rnn", **kw)


def test_independent_fit_errors():
    m = IndependentPixels(height=2, width=2)
    with pytest.raises(ValueError, match="pseudo_count must be a positive number"):
        m.fit_mean(torch.zeros(3, 1, 2, 2), pseudo_count=0)
