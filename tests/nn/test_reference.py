"""The NumPy reference: forward equals torch, hand-written BPTT equals autograd and finite differences."""

import numpy as np
import pytest
import torch
from torch import nn

from lstmkit.nn.reference import LSTMParams, lstm_backward, lstm_forward


def _setup(T=6, B=3, D=4, H=5, seed=0):
    torch.manual_seed(seed)
    lstm = nn.LSTM(D, H, dtype=torch.float64)
    x = torch.randn(T, B, D, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, B, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(1, B, H, dtype=torch.float64, requires_grad=True)
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal((T, B, H))
    dh, dc = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    return lstm, x, h0, c0, dy, dh, dc


def test_forward_equals_torch():
    lstm, x, h0, c0, *_ = _setup()
    y, h, c, _ = lstm_forward(x.detach().numpy(), h0[0].detach().numpy(), c0[0].detach().numpy(), LSTMParams.from_torch(lstm))
    ty, (th, tc) = lstm(x, (h0, c0))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(h, th[0].detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(c, tc[0].detach().numpy(), rtol=0, atol=1e-12)


def test_backward_equals_autograd():
    lstm, x, h0, c0, dy, dh, dc = _setup()
    _, _, _, cache = lstm_forward(x.detach().numpy(), h0[0].detach().numpy(), c0[0].detach().numpy(), LSTMParams.from_torch(lstm))
    grads = lstm_backward(dy, dh, dc, cache)
    ty, (th, tc) = lstm(x, (h0, c0))
    loss = (ty * torch.from_numpy(dy)).sum() + (th[0] * torch.from_numpy(dh)).sum() + (tc[0] * torch.from_numpy(dc)).sum()
    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    auto = torch.autograd.grad(loss, [getattr(lstm, f"{n}_l0") for n in names] + [x, h0, c0])
    expected = dict(zip(names + ["x", "h0", "c0"], auto))
    for name, g in expected.items():
        g = g.numpy().reshape(grads[name].shape)
        np.testing.assert_allclose(grads[name], g, rtol=1e-8, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", ["weight_ih", "weight_hh", "bias_ih", "x", "h0", "c0"])
def test_backward_equals_finite_differences(name):
    lstm, x, h0, c0, dy, dh, dc = _setup(T=4, B=2, D=3, H=3, seed=1)
    p = LSTMParams.from_torch(lstm)
    arrays = {"x": x.detach().numpy().copy(), "h0": h0[0].detach().numpy().copy(), "c0": c0[0].detach().numpy().copy()}

    def loss():
        y, h, c, _ = lstm_forward(arrays["x"], arrays["h0"], arrays["c0"], p)
        return float((y * dy).sum() + (h * dh).sum() + (c * dc).sum())

    _, _, _, cache = lstm_forward(arrays["x"], arrays["h0"], arrays["c0"], p)
    analytic = lstm_backward(dy, dh, dc, cache)[name]
    target = arrays[name] if name in arrays else getattr(p, name)
    numeric = np.zeros_like(target)
    eps = 1e-6
    for idx in np.ndindex(target.shape):
        old = target[idx]
        target[idx] = old + eps
        up = loss()
        target[idx] = old - eps
        down = loss()
        target[idx] = old
        numeric[idx] = (up - down) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_reference_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"x must be \(T, B, D\)"):
        lstm_forward(np.zeros((3, 4)), np.zeros((1, 2)), np.zeros((1, 2)), LSTMParams.from_torch(nn.LSTM(4, 2)))
