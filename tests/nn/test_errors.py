"""Bad arguments raise ValueError/TypeError naming the argument and what is valid."""

import pytest
import torch

from lstmkit.nn import LSTM, LSTMCell


@pytest.fixture
def m():
    return LSTM(4, 6, 2, bidirectional=True)


def test_wrong_input_width(m):
    with pytest.raises(ValueError, match=r"input has 5 features .* expected input_size=4"):
        m(torch.randn(3, 2, 5))


@pytest.mark.parametrize("shape", [(4,), (2, 3, 2, 4)])
def test_wrong_number_of_dimensions(m, shape):
    with pytest.raises(ValueError, match=r"input must be 3-D \(T, B, input_size\)"):
        m(torch.randn(shape))


def test_non_tensor_and_integer_input(m):
    with pytest.raises(TypeError, match="input must be a Tensor"):
        m([[1.0, 2.0]])
    with pytest.raises(TypeError, match="floating-point"):
        m(torch.ones(3, 2, 4, dtype=torch.int64))


@pytest.mark.parametrize(
    "lengths,match,exc",
    [
        ([3, 0], r"lengths must be >= 1", ValueError),
        ([3, -1], r"lengths must be >= 1", ValueError),
        ([3, 4], r"lengths must be <= the padded length T=3", ValueError),
        ([3], r"lengths has 1 entries but the batch holds 2", ValueError),
        ([3, 2, 1], r"lengths has 3 entries", ValueError),
        (torch.tensor([[3, 2]]), r"lengths must be 1-D", ValueError),
        (torch.tensor([3.0, 2.0]), r"lengths must hold integers", TypeError),
        ("32", r"lengths must be a 1-D integer tensor", TypeError),
    ],
)
@pytest.mark.parametrize("impl", ["auto", "loop"])
def test_bad_lengths(lengths, match, exc, impl):
    m = LSTM(4, 6, implementation=impl)
    with pytest.raises(exc, match=match):
        m(torch.randn(3, 2, 4), lengths=lengths)


def test_bad_hx(m):
    x = torch.randn(3, 2, 4)
    with pytest.raises(ValueError, match=r"hx\[0\] \(h_0\) must have shape \(4, 2, 6\)"):
        m(x, (torch.zeros(2, 2, 6), torch.zeros(4, 2, 6)))
    with pytest.raises(ValueError, match=r"hx\[1\] \(c_0\) must have shape \(4, 2, 6\)"):
        m(x, (torch.zeros(4, 2, 6), torch.zeros(4, 2, 5)))
    with pytest.raises(TypeError, match="hx must be a pair"):
        m(x, torch.zeros(4, 2, 6))


@pytest.mark.parametrize("proj", [6, 7, -1])
def test_proj_size_must_be_below_hidden_size(proj):
    with pytest.raises(ValueError, match=r"proj_size must be 0 .* \[1, hidden_size=6\)"):
        LSTM(4, 6, proj_size=proj)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(input_size=0, hidden_size=3), ValueError, "input_size must be an int >= 1, got 0"),
        (dict(input_size=3, hidden_size=2.5), ValueError, "hidden_size must be an int >= 1, got 2.5"),
        (dict(input_size=3, hidden_size=4, num_layers=0), ValueError, "num_layers must be an int >= 1, got 0"),
        (dict(input_size=3, hidden_size=4, dropout=1.5), ValueError, r"dropout must be a float in \[0, 1\]"),
        (dict(input_size=3, hidden_size=4, implementation="cuda"), ValueError, "implementation must be one of"),
        (dict(input_size=3, hidden_size=4, zoneout=2.0), ValueError, "zoneout must be in"),
    ],
)
def test_bad_constructor_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        LSTM(**kwargs)


def test_lengths_with_packed_sequence(m):
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.randn(3, 2, 4), [3, 2])
    with pytest.raises(ValueError, match="lengths must not be given with a PackedSequence"):
        m(packed, lengths=[3, 2])


def test_cell_errors():
    cell = LSTMCell(4, 6)
    with pytest.raises(ValueError, match=r"expected input_size=4"):
        cell(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"input must be 2-D"):
        cell(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"hx\[1\] \(c\) must have shape \(2, 6\)"):
        cell(torch.randn(2, 4), (torch.zeros(2, 6), torch.zeros(3, 6)))
