"""record_gates: outputs bit-identical with and without recording; the recorded gates replay the result."""

import pytest
import torch

from lstmkit.nn import LSTM
from lstmkit.nn.gates import record_gates, replay_lstm

CASES = [
    pytest.param({}, id="fused"),
    pytest.param({"implementation": "loop"}, id="loop"),
    pytest.param({"peephole": True}, id="peephole"),
    pytest.param({"layer_norm": True}, id="layer_norm"),
    pytest.param({"zoneout": 0.3}, id="zoneout-eval"),
    pytest.param({"proj_size": 3}, id="projection"),
]


@pytest.mark.parametrize("variants", CASES)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("lengths", [None, [7, 3, 5, 1]])
def test_recording_leaves_outputs_identical_and_replays_them(variants, bidirectional, lengths):
    torch.manual_seed(0)
    m = LSTM(4, 6, num_layers=2, bidirectional=bidirectional, batch_first=True, dtype=torch.float64, **variants).eval()
    x = torch.randn(4, 7, 4, dtype=torch.float64)
    out, (h, c) = m(x, lengths=lengths)
    with record_gates(m) as rec:
        out2, (h2, c2) = m(x, lengths=lengths)
    assert torch.equal(out, out2) and torch.equal(h, h2) and torch.equal(c, c2)
    traces = rec.of()
    k = 2 if bidirectional else 1
    assert [(t.layer, t.direction) for t in traces] == [(l, d) for l in range(2) for d in range(k)]
    assert max(t.replay_error for t in traces) < 1e-12
    top = traces[-k:]
    replayed = torch.cat([t.h for t in top], -1)  # (B, T, K*R), NaN past each length
    valid = top[0].valid
    assert torch.allclose(replayed[valid], out[valid], atol=1e-12, rtol=0)
    if lengths is not None:
        for b, n in enumerate(lengths):
            assert valid[b].sum() == n and torch.isnan(top[0].f[b, n:]).all() and not torch.isnan(top[0].f[b, :n]).any()
    for t in traces:
        for gate in (t.i, t.f, t.o):
            g = gate[valid]
            assert ((g > 0) & (g < 1)).all()


def test_replay_matches_the_final_state_per_sequence():
    torch.manual_seed(1)
    m = LSTM(3, 5, bidirectional=True, dtype=torch.float64).eval()  # time-major
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    _, (h, c) = m(x, lengths=lengths)
    _, _, h_r, c_r = replay_lstm(m, x, None, lengths)
    assert torch.allclose(h, h_r, atol=1e-12) and torch.allclose(c, c_r, atol=1e-12)


def test_gradients_are_unchanged_by_recording():
    torch.manual_seed(2)
    m = LSTM(3, 4, batch_first=True).eval()
    x = torch.randn(2, 5, 3)
    g1 = torch.autograd.grad(m(x)[0].sum(), m.weight_hh_l0)[0]
    with record_gates(m):
        g2 = torch.autograd.grad(m(x)[0].sum(), m.weight_hh_l0)[0]
    assert torch.equal(g1, g2)


def test_torch_lstm_inside_a_model_is_recorded_by_name():
    torch.manual_seed(3)
    model = torch.nn.Sequential()
    model.add_module("rnn", torch.nn.LSTM(3, 4, batch_first=True))
    with record_gates(model) as rec:
        model(torch.randn(2, 5, 3))
    assert list(rec.traces) == ["rnn"] and rec.of("rnn")[0].replay_error < 1e-6
    with pytest.raises(ValueError, match="no LSTM named 'x'"):
        rec.of("x")


def test_hooks_are_removed_and_errors_are_clear():
    m = LSTM(3, 4, num_layers=2, dropout=0.5)
    with pytest.raises(RuntimeError, match="model.eval"):
        with record_gates(m):
            m(torch.randn(5, 2, 3))
    assert not m._forward_hooks
    with pytest.raises(ValueError, match="contains no LSTM"):
        with record_gates(torch.nn.Linear(2, 2)):
            pass
