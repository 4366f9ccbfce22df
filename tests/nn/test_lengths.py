"""Padded input with lengths equals running each sequence alone, on every path."""

import pytest
import torch

from lstmkit.nn import LSTM, reverse_padded
from lstmkit.nn.lengths import fused_lstm_by_length

from .helpers import assert_close, grads_of, run_alone

LENGTHS = [5, 9, 1, 9, 3]


@pytest.mark.parametrize("impl", ["auto", "loop"])
@pytest.mark.parametrize("num_layers,bidirectional,proj_size", [(1, False, 0), (2, False, 3), (1, True, 0), (3, True, 2)])
@pytest.mark.parametrize("batch_first", [False, True])
def test_padded_equals_alone(impl, num_layers, bidirectional, proj_size, batch_first, recurrence):
    m = LSTM(4, 6, num_layers, bidirectional=bidirectional, proj_size=proj_size, batch_first=batch_first,
             implementation=impl, dtype=torch.float64)
    T, B = 10, len(LENGTHS)
    x = torch.randn((B, T, 4) if batch_first else (T, B, 4), dtype=torch.float64, requires_grad=True)
    lens = torch.tensor(LENGTHS)
    out, (h_n, c_n) = m(x, lengths=lens)
    alone, h_alone, c_alone = run_alone(m, x, LENGTHS, batch_first)
    for b, n in enumerate(LENGTHS):
        ob = out[b : b + 1, :n] if batch_first else out[:n, b : b + 1]
        assert_close(ob, alone[b], what=f"output of sequence {b}")
        pad = out[b, n:] if batch_first else out[n:, b]
        assert torch.count_nonzero(pad) == 0, "outputs past a sequence's length must be zero"
    assert_close(h_n, h_alone, what="h_n at each own last step")
    assert_close(c_n, c_alone, what="c_n at each own last step")
    # Gradients: padded loss equals the sum of the per-sequence losses.
    g_pad = grads_of(m, out.pow(2).sum() + h_n.sum() + c_n.sum(), (x,))
    loss_alone = sum(o.pow(2).sum() for o in alone) + h_alone.sum() + c_alone.sum()
    g_alone = grads_of(m, loss_alone, (x,))
    for name in g_pad:
        assert_close(g_pad[name], g_alone[name], what=f"grad {name}")


def test_fused_and_loop_agree_with_initial_state(recurrence):
    fused = LSTM(3, 5, 2, bidirectional=True, dtype=torch.float64)
    loop = LSTM(3, 5, 2, bidirectional=True, dtype=torch.float64, implementation="loop")
    loop.load_state_dict(fused.state_dict())
    x = torch.randn(6, 4, 3, dtype=torch.float64)
    hx = (torch.randn(4, 4, 5, dtype=torch.float64), torch.randn(4, 4, 5, dtype=torch.float64))
    lens = [6, 2, 4, 4]
    a, sa = fused(x, hx, lens)
    b, sb = loop(x, hx, lens)
    assert_close(a, b)
    assert_close(sa.h, sb.h)
    assert_close(sa.c, sb.c)


def test_all_full_lengths_takes_the_plain_call():
    m = LSTM(3, 5, dtype=torch.float64)
    x = torch.randn(6, 4, 3, dtype=torch.float64)
    assert torch.equal(m(x, lengths=[6] * 4)[0], m(x)[0])


def test_lengths_shorter_than_padding_everywhere(recurrence):
    m = LSTM(3, 5, dtype=torch.float64)
    x = torch.randn(8, 2, 3, dtype=torch.float64)
    out, _ = m(x, lengths=torch.tensor([3, 5]))
    assert out.shape == (8, 2, 5)
    assert torch.count_nonzero(out[5:]) == 0


def test_reverse_padded_is_an_involution_within_lengths():
    x = torch.arange(12.0).view(4, 3, 1)
    lens = torch.tensor([4, 2, 1])
    r = reverse_padded(x, lens)
    assert r[:, 0, 0].tolist() == [9.0, 6.0, 3.0, 0.0]
    assert r[:, 1, 0].tolist() == [4.0, 1.0, 7.0, 10.0]  # steps past the length stay put
    assert torch.equal(reverse_padded(r, lens), x)


def test_fused_by_length_runs_one_chunk_per_distinct_length(monkeypatch):
    calls = []
    real = torch.lstm

    def counting(*args):
        calls.append(args[0].shape[:2])
        return real(*args)

    monkeypatch.setattr(torch, "lstm", counting)
    m = LSTM(3, 4)
    x = torch.randn(7, 5, 3)
    lens = torch.tensor([7, 3, 3, 5, 7])
    fused_lstm_by_length(x, torch.zeros(1, 5, 4), torch.zeros(1, 5, 4), lens, m._flat_weights, True, 1, 0.0, False)
    assert [tuple(c) for c in calls] == [(3, 5), (2, 3), (2, 2)]
