"""The CUDA-graph route of the variants' recurrence (lstmkit.nn.cuda_graphs), checked on the CPU.

``EagerGraph`` stands in for ``torch.cuda.CUDAGraph``: its "replay" re-runs the recorded function
into the same output buffers, so the keying, the static input buffers, busy pairs, the captured
backward and the gradients are exercised here; tests/cuda/ runs the real graphs."""

from __future__ import annotations

import pytest
import torch

from lstmkit.nn import cuda_graphs
from lstmkit.nn.fused_recurrence import recurrence_backend
from lstmkit.nn.recurrence import _Recurrence, lstm_recurrence

T, B, H = 5, 3, 4


@pytest.fixture(autouse=True)
def eager_graphs(monkeypatch):
    monkeypatch.setattr(cuda_graphs, "GRAPH", cuda_graphs.EagerGraph)
    cuda_graphs.clear()
    # the graph route replays the PyTorch recurrence (on CUDA the fused CPU kernel never runs); on this
    # CPU the fused kernel would otherwise take the tensors before the graph dispatch is reached
    with recurrence_backend("torch"):
        yield
    cuda_graphs.clear()


def _inputs(seed: int, peephole=False, layer_norm=False, zoneout=False, projection=False, dropout=False, valid=False):
    g = torch.Generator().manual_seed(seed)
    R = 2 if projection else H

    def p(*shape, scale=0.5):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).requires_grad_()

    lens = torch.tensor([T, 3, 1])
    steps = (torch.arange(T)[:, None] < lens[None, :]).to(torch.float64)[..., None]  # (T, B, 1)
    return (p(T, B, 4 * H), p(B, R), p(B, H), p(4 * H, R), p(R, H) if projection else None,
            p(3, H) if peephole else None,
            p(4 * H) if layer_norm else None, p(4 * H) if layer_norm else None,
            p(H) if layer_norm else None, p(H) if layer_norm else None,
            (torch.rand(T, B, H, generator=g, dtype=torch.float64) > 0.2).double() if zoneout else None,
            (torch.rand(T, B, R, generator=g, dtype=torch.float64) > 0.2).double() if zoneout else None,
            steps if valid else None,
            (torch.rand(B, R, generator=g, dtype=torch.float64) > 0.3).double() / 0.7 if dropout else None)


def _grads(out, inputs):
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in out)
    leaves = [t for t in inputs if t is not None and t.requires_grad]
    return torch.autograd.grad(loss, leaves)


VARIANTS = [dict(), dict(peephole=True), dict(layer_norm=True), dict(zoneout=True, valid=True),
            dict(projection=True, dropout=True), dict(peephole=True, layer_norm=True, zoneout=True, projection=True,
                                                      dropout=True, valid=True)]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "+".join(v) or "plain")
def test_graphed_matches_eager_forward_and_backward(variant):
    inputs = _inputs(0, **variant)
    ref = _Recurrence.apply(*inputs)
    ref_grads = _grads(ref, inputs)
    assert cuda_graphs.graphed_recurrence(_Recurrence, inputs) is None  # a key seen once runs eagerly
    for call in range(3):  # captured on the second sight, replayed after
        other = _inputs(call + 1, **variant)  # new values into the same static buffers
        want = _Recurrence.apply(*other)
        got = cuda_graphs.graphed_recurrence(_Recurrence, other)
        assert got is not None
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        for a, b in zip(_grads(got, other), _grads(want, other)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert len(cuda_graphs._pairs[cuda_graphs._key(inputs)]) == 1  # one pair served every call
    assert ref_grads  # the reference itself had gradients to compare


def test_outputs_are_not_the_static_buffers():
    inputs = _inputs(0, peephole=True)
    cuda_graphs.graphed_recurrence(_Recurrence, inputs)
    with torch.no_grad():
        first = cuda_graphs.graphed_recurrence(_Recurrence, inputs)
        keep = first[0].clone()
        cuda_graphs.graphed_recurrence(_Recurrence, _inputs(7, peephole=True))
    torch.testing.assert_close(first[0], keep, rtol=0, atol=0)


def test_two_forwards_before_backward_use_two_pairs():
    """Layers and directions of one model share a key: the second forward must not overwrite
    the first one's saved activations."""
    a_in, b_in = _inputs(1, layer_norm=True), _inputs(2, layer_norm=True)
    cuda_graphs.graphed_recurrence(_Recurrence, a_in)  # seen once
    a = cuda_graphs.graphed_recurrence(_Recurrence, a_in)
    b = cuda_graphs.graphed_recurrence(_Recurrence, b_in)
    assert len(cuda_graphs._pairs[cuda_graphs._key(a_in)]) == 2
    for got, inputs in ((a, a_in), (b, b_in)):
        want = _Recurrence.apply(*inputs)
        for x, y in zip(_grads(got, inputs), _grads(want, inputs)):
            torch.testing.assert_close(x, y, rtol=0, atol=0)
    # both backwards ran: the pairs are free again and the next call reuses the first
    c = cuda_graphs.graphed_recurrence(_Recurrence, a_in)
    assert c is not None and len(cuda_graphs._pairs[cuda_graphs._key(a_in)]) == 2


def test_stale_backward_raises():
    inputs = _inputs(3)
    cuda_graphs.graphed_recurrence(_Recurrence, inputs)
    out = cuda_graphs.graphed_recurrence(_Recurrence, inputs)
    loss = out[0].sum()
    loss.backward(retain_graph=True)
    cuda_graphs.graphed_recurrence(_Recurrence, inputs)  # the pair is free, so this overwrites it
    with pytest.raises(RuntimeError, match="LSTMKIT_CUDA_GRAPHS=0"):
        loss.backward()


def test_pairs_are_bounded_and_all_busy_runs_eagerly(monkeypatch):
    monkeypatch.setattr(cuda_graphs, "PER_KEY", 2)
    inputs = _inputs(4)
    cuda_graphs.graphed_recurrence(_Recurrence, inputs)
    held = [cuda_graphs.graphed_recurrence(_Recurrence, inputs) for _ in range(2)]  # both pairs busy
    assert all(h is not None for h in held)
    assert cuda_graphs.graphed_recurrence(_Recurrence, inputs) is None
    monkeypatch.setattr(cuda_graphs, "MAX_ENTRIES", 2)
    del held  # the pairs are free once their autograd graphs are gone
    small = _inputs(5, peephole=True)
    cuda_graphs.graphed_recurrence(_Recurrence, small)
    assert cuda_graphs.graphed_recurrence(_Recurrence, small) is not None
    assert sum(len(p) for p in cuda_graphs._pairs.values()) <= 2


def test_dispatch_only_on_cuda(monkeypatch):
    x = torch.zeros(2, 1, 4)
    assert not cuda_graphs.wanted(x)
    called = []
    monkeypatch.setattr(cuda_graphs, "graphed_recurrence", lambda *a: called.append(1))
    inputs = _inputs(6)
    lstm_recurrence(inputs[0], inputs[1], inputs[2], inputs[3])
    assert not called  # the CPU path never goes through graphs


@pytest.mark.parametrize("kw", [dict(peephole=True, layer_norm=True, num_layers=2, bidirectional=True),
                                dict(proj_size=3, recurrent_dropout=0.3, zoneout=(0.1, 0.2), num_layers=2)], ids=str)
def test_whole_lstm_through_the_graph_route_equals_eager(kw, monkeypatch):
    """Layers and directions in turn, lengths, masks drawn per call: the model's numbers and
    gradients through the graph route (dispatch forced on the CPU) are the eager path's, bit for bit."""
    from lstmkit.nn import LSTM

    torch.manual_seed(0)
    m = LSTM(3, H, **kw).double()
    x = torch.randn(T, B, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([T, 3, 1])

    def step(seed):
        torch.manual_seed(seed)  # the same dropout/zoneout masks in both routes
        m.zero_grad()
        x.grad = None
        out, (h, c) = m.train()(x, lengths=lengths)
        (out.square().sum() + h.sum() + c.sum()).backward()
        return [out.detach(), x.grad, *(p.grad for p in m.parameters())]

    want = [step(seed) for seed in range(3)]
    monkeypatch.setattr(cuda_graphs, "wanted", lambda x: True)
    got = [step(seed) for seed in range(3)]
    assert sum(len(p) for p in cuda_graphs._pairs.values()) == 2 * (1 + kw.get("bidirectional", False))
    for g_step, w_step in zip(got, want):
        for a, b in zip(g_step, w_step):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
