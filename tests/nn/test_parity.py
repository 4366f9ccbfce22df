"""Parity with torch.nn.LSTM / nn.LSTMCell in float64: outputs, states, every gradient."""

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmkit.nn import LSTM, LSTMCell

from .helpers import assert_close, grads_of, loss_of, twins

CONFIGS = [
    dict(num_layers=L, bidirectional=bd, proj_size=p, batch_first=bf)
    for L, bd, p, bf in itertools.product([1, 2, 3], [False, True], [0, 3], [False, True])
]


def _ids(c):
    return "L{num_layers}-{bi}-p{proj_size}-{bf}".format(
        bi="bi" if c["bidirectional"] else "uni", bf="bf" if c["batch_first"] else "tf", **c)


@pytest.mark.parametrize("impl", ["auto", "loop"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=_ids)
def test_lstm_matches_torch(cfg, impl, recurrence):
    ours, theirs = twins(4, 6, implementation=impl, **cfg)
    T, B = 5, 3
    shape = (B, T, 4) if cfg["batch_first"] else (T, B, 4)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    K = 2 if cfg["bidirectional"] else 1
    R = cfg["proj_size"] or 6
    h0 = torch.randn(cfg["num_layers"] * K, B, R, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(cfg["num_layers"] * K, B, 6, dtype=torch.float64, requires_grad=True)
    for hx in (None, (h0, c0)):
        out_a, st_a = ours(x, hx)
        out_b, st_b = theirs(x, hx)
        assert_close(out_a, out_b, what="output")
        assert_close(st_a[0], st_b[0], what="h_n")
        assert_close(st_a[1], st_b[1], what="c_n")
        inputs = (x,) if hx is None else (x, h0, c0)
        ga = grads_of(ours, loss_of(out_a, st_a), inputs)
        gb = grads_of(theirs, loss_of(out_b, st_b), inputs)
        assert ga.keys() == gb.keys()
        for name in ga:
            assert_close(ga[name], gb[name], what=f"grad {name}")


@pytest.mark.parametrize("impl", ["auto", "loop"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_continuing_from_returned_state(impl, bidirectional, recurrence):
    """Two calls carrying state equal one call over the concatenation (unidirectional)."""
    ours, theirs = twins(4, 6, 2, implementation=impl, proj_size=2, bidirectional=bidirectional)
    x = torch.randn(8, 3, 4, dtype=torch.float64)
    a1, s1 = ours(x[:5])
    a2, s2 = ours(x[5:], s1)
    b1, t1 = theirs(x[:5])
    b2, t2 = theirs(x[5:], t1)
    assert_close(torch.cat([a1, a2]), torch.cat([b1, b2]), what="continued output")
    assert_close(s2.h, t2[0], what="h_n")
    assert_close(s2.c, t2[1], what="c_n")
    if not bidirectional:
        whole, sw = ours(x)
        assert_close(torch.cat([a1, a2]), whole, what="split == whole")
        assert_close(s2.c, sw.c, what="split == whole c")


def test_state_dict_round_trip_without_renaming():
    theirs = nn.LSTM(5, 7, num_layers=2, bidirectional=True, proj_size=3)
    ours = LSTM(5, 7, num_layers=2, bidirectional=True, proj_size=3)
    ours.load_state_dict(theirs.state_dict())  # strict: same names, same shapes
    assert list(ours.state_dict()) == list(theirs.state_dict())
    back = nn.LSTM(5, 7, num_layers=2, bidirectional=True, proj_size=3)
    back.load_state_dict(ours.state_dict())
    for k, v in theirs.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)
    clone = LSTM.from_torch(theirs)
    x = torch.randn(4, 2, 5)
    assert torch.equal(clone(x)[0], theirs(x)[0])


def test_default_initialisation_matches_torch():
    torch.manual_seed(3)
    theirs = nn.LSTM(5, 7, 2)
    torch.manual_seed(3)
    ours = LSTM(5, 7, 2)
    for (na, a), (nb, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert na == nb and torch.equal(a, b)


def test_unbatched_input_matches_torch():
    ours, theirs = twins(4, 6, 2, bidirectional=True)
    x = torch.randn(5, 4, dtype=torch.float64)
    out_a, (h_a, c_a) = ours(x)
    out_b, (h_b, c_b) = theirs(x)
    assert out_a.shape == (5, 12) and h_a.shape == (4, 6)
    assert_close(out_a, out_b)
    assert_close(h_a, h_b)
    assert_close(c_a, c_b)
    out_l, _ = LSTM(4, 6, dtype=torch.float64, implementation="loop")(x)
    assert out_l.shape == (5, 6)


@pytest.mark.parametrize("impl", ["auto", "loop"])
def test_packed_sequence_input_matches_torch(impl, recurrence):
    ours, theirs = twins(4, 6, 2, bidirectional=True, implementation=impl)
    x = torch.randn(7, 3, 4, dtype=torch.float64)
    lens = torch.tensor([4, 7, 2])
    packed = pack_padded_sequence(x, lens, enforce_sorted=False)
    out_a, (h_a, c_a) = ours(packed)
    out_b, (h_b, c_b) = theirs(packed)
    pa, la = pad_packed_sequence(out_a)
    pb, lb = pad_packed_sequence(out_b)
    assert torch.equal(la, lb)
    assert_close(pa, pb)
    assert_close(h_a, h_b)
    assert_close(c_a, c_b)


@pytest.mark.parametrize("bias", [True, False])
def test_cell_matches_torch_cell(bias):
    ours = LSTMCell(4, 6, bias=bias, dtype=torch.float64)
    theirs = nn.LSTMCell(4, 6, bias=bias, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)
    sa = sb = None
    la = lb = 0.0
    for t in range(5):  # several steps, each continuing from the returned state
        sa = ours(x[t], sa)
        sb = theirs(x[t], sb)
        assert_close(sa.h, sb[0])
        assert_close(sa.c, sb[1])
        la = la + loss_of(sa.h, sa)
        lb = lb + loss_of(sb[0], sb)
    ga, gb = grads_of(ours, la, (x,)), grads_of(theirs, lb, (x,))
    for name in ga:
        assert_close(ga[name], gb[name], what=name)
    h1 = ours(x[0, 0])  # unbatched
    assert h1.h.shape == (6,)
