"""Poolers: padding never enters a result, and 'last' is right for both directions."""

import pytest
import torch

from lstmkit.nn import LSTM
from lstmkit.nn.pooling import create_pool, list_pools

from .helpers import assert_close

LENGTHS = [6, 2, 4]


def _bi_lstm_output():
    lstm = LSTM(3, 4, bidirectional=True, batch_first=True, dtype=torch.float64)
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    out, (h_n, _) = lstm(x, lengths=LENGTHS)
    return lstm, x, out, h_n


def test_last_equals_final_states_of_both_directions():
    _, _, out, h_n = _bi_lstm_output()
    pooled = create_pool("last", 8, 2)(out, torch.tensor(LENGTHS))
    assert_close(pooled, torch.cat([h_n[0], h_n[1]], dim=1))  # forward end and backward end (step 0)
    assert not torch.allclose(pooled, out[:, -1])  # the naive output[:, -1] is wrong here


@pytest.mark.parametrize("name", list_pools())
def test_padding_never_enters_the_result(name):
    torch.manual_seed(0)
    pool = create_pool(name, 8, 2).double()
    out = torch.randn(3, 6, 8, dtype=torch.float64)
    lens = torch.tensor(LENGTHS)
    garbage = out.clone()
    for b, n in enumerate(LENGTHS):
        garbage[b, n:] = 1e6  # anything past the length
    assert_close(pool(out, lens), pool(garbage, lens))
    for b, n in enumerate(LENGTHS):  # and equals pooling the sequence alone
        assert_close(pool(out, lens)[b], pool(out[b : b + 1, :n])[0])
    assert pool.out_features == 8


def test_mean_max_values_and_attention_weights():
    out = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [-1.0], [5.0]]])
    lens = torch.tensor([2, 3])
    assert create_pool("mean", 1)(out, lens).squeeze(1).tolist() == [2.0, 2.0]
    assert create_pool("max", 1)(out, lens).squeeze(1).tolist() == [3.0, 5.0]
    att = create_pool("attention", 1)
    att(out, lens)
    assert att.last_weights[0, 2] == 0 and torch.allclose(att.last_weights.sum(1), torch.ones(2))


def test_pool_errors():
    with pytest.raises(ValueError, match=r"unknown pooling 'avg'.*Valid: attention, last, max, mean"):
        create_pool("avg", 4)
    with pytest.raises(ValueError, match=r"unknown pooling 'lats'; did you mean 'last'"):
        create_pool("lats", 4)
    with pytest.raises(ValueError, match=r"output must be \(B, T, 4\)"):
        create_pool("mean", 4)(torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T=3\]"):
        create_pool("mean", 4)(torch.zeros(2, 3, 4), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="positive multiple of num_directions"):
        create_pool("last", 5, 2)
