"""The LSTM core on CUDA: parity with the float64 CPU reference, lengths, every variant forward and
backward (eager and replayed from CUDA graphs), and LSTMStream's torch backend.

Tolerance: float32 on CUDA (TF32 off) against float64 on the CPU, T <= 20 steps, H <= 32: every
output, state and gradient within 1e-4 x max(1, the reference tensor's largest magnitude) of the
reference, element by element (float32 rounding of sums over T steps and B rows; measured on the
CPU's float32 at 6e-6 of the largest gradient for the all-variants model. It still fails on any
wrong gate, mask or state)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmkit.nn import LSTM, LSTMStream, cuda_graphs

TOL = dict(atol=1e-4, rtol=1e-4)  # outputs and states, all of magnitude <= 1


def _close(got, want, name=""):
    got = got.detach().double().cpu()
    scale = max(1.0, want.abs().max().item())
    err = (got - want).abs().max().item()
    assert err <= 1e-4 * scale, f"{name}: max |error| {err:.3g} > 1e-4 x {scale:.3g}"
CUDA = torch.device("cuda")


def _pair(**kw):
    """(the CUDA float32 model, its float64 CPU copy)."""
    torch.manual_seed(0)
    ref = LSTM(5, 16, **kw).double()
    m = LSTM(5, 16, **kw)
    m.load_state_dict(ref.state_dict())
    return m.to(CUDA), ref


def _check_grads(m, ref, x, lengths=None):
    xc = x.detach().float().to(CUDA).requires_grad_()
    xr = x.detach().double().requires_grad_()
    kw = {} if lengths is None else {"lengths": lengths}
    out, (h, c) = m(xc, **kw)
    want, (h_r, c_r) = ref(xr, **kw)
    torch.testing.assert_close(out.double().cpu(), want, **TOL)
    torch.testing.assert_close(h.double().cpu(), h_r, **TOL)
    torch.testing.assert_close(c.double().cpu(), c_r, **TOL)
    w = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(want)
    ((out * w.float().to(CUDA)).sum() + h.sum() + c.sum()).backward()
    ((want * w).sum() + h_r.sum() + c_r.sum()).backward()
    _close(xc.grad, xr.grad, "input gradient")
    for (name, p), q in zip(m.named_parameters(), ref.parameters()):
        assert p.grad is not None, name
        _close(p.grad, q.grad, name)


@pytest.mark.parametrize("kw", [dict(), dict(num_layers=2, bidirectional=True), dict(proj_size=8),
                                dict(num_layers=2, batch_first=True)], ids=str)
def test_fast_path_parity_with_the_float64_reference(kw):
    m, ref = _pair(**kw)
    assert m.weight_ih_l0.device.type == CUDA.type
    x = torch.randn(12, 4, 5, dtype=torch.float64)
    if kw.get("batch_first"):
        x = x.transpose(0, 1).contiguous()
    _check_grads(m, ref, x)


def test_flatten_parameters_gives_cudnn_one_buffer():
    m = LSTM(5, 16, num_layers=2, bidirectional=True).cuda()
    storages = {p.untyped_storage().data_ptr() for p in m._flat_weights}
    assert len(storages) == 1  # views into one cuDNN weight buffer, as torch.nn.LSTM's
    m.half().float()  # re-flattened after every move, like torch's
    assert len({p.untyped_storage().data_ptr() for p in m._flat_weights}) == 1


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lengths_path_matches_the_reference_and_packed_cudnn(bidirectional):
    m, ref = _pair(bidirectional=bidirectional, num_layers=2)
    x = torch.randn(20, 6, 5, dtype=torch.float64)
    lengths = torch.tensor([20, 17, 9, 9, 3, 1])
    _check_grads(m, ref, x, lengths)
    torch_lstm = nn.LSTM(5, 16, num_layers=2, bidirectional=bidirectional).cuda()
    torch_lstm.load_state_dict({k: v.float() for k, v in ref.state_dict().items()})
    packed = pack_padded_sequence(x.float().cuda(), lengths, enforce_sorted=False)
    want = pad_packed_sequence(torch_lstm(packed)[0], total_length=20)[0]
    with torch.no_grad():
        got = m(x.float().cuda(), lengths=lengths.cuda())[0]
    torch.testing.assert_close(got, want, **TOL)


DETERMINISTIC = {"peephole": dict(peephole=True), "layer_norm": dict(layer_norm=True),
                 "forget_bias": dict(forget_bias=1.0), "projection+peephole": dict(proj_size=8, peephole=True),
                 "all": dict(peephole=True, layer_norm=True, num_layers=2, bidirectional=True)}
RANDOM = {"recurrent_dropout": dict(recurrent_dropout=0.3), "input_dropout": dict(input_dropout=0.3),
          "zoneout": dict(zoneout=0.2), "all_random": dict(recurrent_dropout=0.2, zoneout=(0.1, 0.2), peephole=True)}


@pytest.mark.parametrize("graphs", ["1", "0"])
@pytest.mark.parametrize("name", list(DETERMINISTIC))
def test_deterministic_variants_forward_and_backward(name, graphs, monkeypatch):
    """Called three times so that the graph route captures (second call) and replays (third)."""
    monkeypatch.setenv("LSTMKIT_CUDA_GRAPHS", graphs)
    cuda_graphs.clear()
    m, ref = _pair(**DETERMINISTIC[name])
    x = torch.randn(15, 4, 5, dtype=torch.float64)
    lengths = torch.tensor([15, 11, 6, 2])
    for _ in range(3):
        m.zero_grad()
        ref.zero_grad()
        _check_grads(m, ref, x, lengths)
    assert bool(cuda_graphs._pairs) == (graphs == "1" and m.variant.needs_loop)  # forget_bias: the fused path


@pytest.mark.parametrize("name", list(RANDOM))
def test_random_variants_train_on_cuda_and_match_the_reference_in_eval(name):
    m, ref = _pair(**RANDOM[name])
    x = torch.randn(15, 4, 5, device=CUDA, requires_grad=True)
    for _ in range(3):  # masks are drawn on the device, outside the (graphed) recurrence
        m.zero_grad()
        out, (h, c) = m.train()(x, lengths=torch.tensor([15, 11, 6, 2]))
        (out.sum() + c.sum()).backward()
        assert torch.isfinite(out).all()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    m.eval(), ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(x)[0].double().cpu(), ref(x.detach().double().cpu())[0], **TOL)


def test_graphed_recurrence_equals_eager_on_cuda(monkeypatch):
    """The replayed graph runs the eager path's kernels: same numbers, to float32 round-off."""
    torch.manual_seed(0)
    m = LSTM(8, 32, num_layers=2, bidirectional=True, peephole=True, layer_norm=True, proj_size=16).cuda()
    x = torch.randn(30, 8, 8, device=CUDA, requires_grad=True)

    def step():
        m.zero_grad()
        x.grad = None
        out, (h, c) = m(x)
        (out.square().sum() + c.sum()).backward()
        return [out.detach().clone(), x.grad.clone(), *(p.grad.clone() for p in m.parameters())]

    monkeypatch.setenv("LSTMKIT_CUDA_GRAPHS", "0")
    want = step()
    monkeypatch.setenv("LSTMKIT_CUDA_GRAPHS", "1")
    cuda_graphs.clear()
    for _ in range(3):
        got = step()
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert sum(len(p) for p in cuda_graphs._pairs.values()) == 4  # 2 layers x 2 directions, busy in turn


def test_lstm_under_autocast_keeps_the_recurrence_float32():
    m = LSTM(5, 16, num_layers=2).cuda()
    x = torch.randn(10, 3, 5, device=CUDA)
    want = m(x)[0]
    for dtype in (torch.bfloat16, torch.float16):
        with torch.autocast("cuda", dtype=dtype):
            got = m(x)[0]
            head = nn.Linear(16, 2).cuda()(got)
        assert got.dtype == torch.float32 and head.dtype == dtype
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("proj_size", [0, 6])
def test_stream_torch_backend_on_cuda(proj_size):
    torch.manual_seed(0)
    m = LSTM(5, 16, num_layers=2, proj_size=proj_size).cuda().eval()
    if m.weight_ih_l0.is_cuda:  # (always, but for a dry run of this file on the CPU)
        assert LSTMStream(m, batch_size=3).backend == "torch"  # "auto" picks the only backend that runs on CUDA
    stream = LSTMStream(m, batch_size=3, backend="torch")
    x = torch.randn(9, 3, 5, device=CUDA)
    with torch.no_grad():
        want, (h, c) = m(x)
    steps = torch.stack([stream.step(x[t]) for t in range(9)])
    assert steps.device.type == CUDA.type
    torch.testing.assert_close(steps, want, **TOL)
    torch.testing.assert_close(stream.state[1], c, **TOL)
    stream.reset()
    torch.testing.assert_close(stream.run(x), want, **TOL)


def test_inference_mode_runs_eagerly_and_training_still_graphs():
    cuda_graphs.clear()
    m = LSTM(5, 16, peephole=True).cuda()
    x = torch.randn(10, 3, 5, device=CUDA)
    with torch.inference_mode():
        for _ in range(3):
            want = m(x)[0]
    assert not cuda_graphs._pairs  # inference tensors would poison the static buffers
    for _ in range(3):
        out = m(x)[0]
        out.sum().backward()
    assert cuda_graphs._pairs
    torch.testing.assert_close(out.detach(), want, atol=1e-6, rtol=1e-6)
