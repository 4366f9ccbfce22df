"""Fuzzed calls of ``lstmkit.nn.LSTM``: random shapes, dtypes, states and lengths.

The property: a forward call returns outputs of the documented shapes (zero past each length,
finite for finite input), or raises ``ValueError``/``TypeError`` from lstmkit's own checks with a
message naming the argument; never a RuntimeError from deep inside torch's kernels.
"""


import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.helpers import assert_raised_in, fuzz_settings
from lstmkit.nn import LSTM
from lstmkit.nn.lengths import check_lengths

FUZZ = fuzz_settings(80, slow_ok=False)


def attempt(fn, *args, names=(), **kwargs):
    """(True, result) or (False, error) for a ValueError/TypeError raised inside lstmkit whose
    message names one of ``names`` (when given); any other exception propagates."""
    try:
        return True, fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        assert_raised_in(e)
        assert not names or any(n in str(e) for n in names), f"message names none of {names}: {e}"
        return False, e


DTYPES = [torch.float32, torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.bool,
          torch.complex64]


@st.composite
def lstm_configs(draw):
    cfg = dict(input_size=draw(st.integers(1, 3)), hidden_size=draw(st.integers(2, 4)), num_layers=draw(st.integers(1, 2)),
               bidirectional=draw(st.booleans()), batch_first=draw(st.booleans()),
               implementation=draw(st.sampled_from(["auto", "loop"])), dtype=draw(st.sampled_from([torch.float32,
                                                                                                      torch.float64])))
    if draw(st.booleans()):
        cfg["proj_size"] = 1
    if draw(st.integers(0, 3)) == 0:
        cfg[draw(st.sampled_from(["peephole", "layer_norm"]))] = True
    return cfg


@st.composite
def lengths_for(draw, batch: int, total: int):
    kind = draw(st.sampled_from(["none", "list", "list", "tensor", "numpy", "odd"]))
    values = draw(st.lists(st.integers(-1, total + 1) | st.sampled_from([1, total]), min_size=batch, max_size=batch))
    if draw(st.integers(0, 5)) == 0:  # the wrong count
        values = values + [1] if draw(st.booleans()) or not values else values[:-1]
    if kind == "none":
        return None
    if kind == "list":
        return values
    if kind == "tensor":
        dtype = draw(st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.float32, torch.bool]))
        return torch.tensor([max(v, 0) for v in values] if dtype in (torch.uint8, torch.bool) else values, dtype=dtype)
    if kind == "numpy":
        return np.array(values, dtype=draw(st.sampled_from(["int64", "int32", "float64"])))
    return draw(st.sampled_from([[1.0] * batch, [True] * batch, [10**30] * batch, "1" * batch, torch.tensor(1),
                                 torch.ones(1, batch, dtype=torch.int64), {0: 1}]))


@FUZZ
@given(cfg=lstm_configs(), data=st.data())
def test_forward_with_random_inputs_states_and_lengths(cfg, data):
    torch.manual_seed(0)
    model = LSTM(**cfg).eval()
    rank = data.draw(st.sampled_from([3, 3, 3, 2, 1, 4]))
    shape = data.draw(st.lists(st.integers(0, 4), min_size=rank, max_size=rank))
    if rank >= 2 and data.draw(st.integers(0, 4)):
        shape[-1] = cfg["input_size"]  # mostly the right width, so the later checks are reached
    dtype = data.draw(st.sampled_from(DTYPES)) if data.draw(st.integers(0, 2)) == 0 else cfg["dtype"]
    x = torch.randn(*shape, dtype=torch.float64).to(dtype) if dtype != torch.bool else torch.ones(*shape, dtype=dtype)
    batched = rank == 3
    time_dim = 1 if cfg["batch_first"] and batched else 0
    total = shape[time_dim] if rank >= 2 else 0
    batch = shape[1 - time_dim] if batched else 1
    lengths = data.draw(lengths_for(batch, total)) if batched else None
    nan = data.draw(st.sampled_from(["none", "none", "anywhere", "padding"])) if x.is_floating_point() else "none"
    if nan == "anywhere" and x.numel():
        x.view(-1)[0] = float("nan")
    if nan == "padding" and batched and isinstance(lengths, list) and len(lengths) == batch \
            and all(type(n) is int for n in lengths):
        xt = x.transpose(0, 1) if cfg["batch_first"] else x  # a view: (T, B, D)
        for b, n in enumerate(lengths):
            xt[max(n, 0):, b] = float("nan")  # padding may hold anything: it must not reach the results
    hx = None
    if data.draw(st.integers(0, 3)) == 0:
        k = (2 if cfg["bidirectional"] else 1) * cfg["num_layers"]
        r = cfg.get("proj_size") or cfg["hidden_size"]
        h_shape = [k, batch, r] if batched else [k, r]
        c_shape = [k, batch, cfg["hidden_size"]] if batched else [k, cfg["hidden_size"]]
        if data.draw(st.booleans()):
            h_shape[-1] += 1
        state_dtype = data.draw(st.sampled_from([cfg["dtype"], torch.float16, torch.int64]))
        hx = (torch.zeros(h_shape, dtype=state_dtype), torch.zeros(c_shape, dtype=state_dtype))
    ok, out = attempt(model, x, hx, lengths=lengths,
                      names=("input", "lengths", "hx", "dtype", "time steps", "features"))
    if not ok:
        return
    y, (h, c) = out
    k = 2 if cfg["bidirectional"] else 1
    r = cfg.get("proj_size") or cfg["hidden_size"]
    if batched:
        expected = (batch, total, k * r) if cfg["batch_first"] else (total, batch, k * r)
        assert y.shape == expected and h.shape == (k * cfg["num_layers"], batch, r)
    else:
        assert y.shape == (total, k * r) and h.shape == (k * cfg["num_layers"], r)
    assert y.dtype == x.dtype == h.dtype == c.dtype
    if nan != "anywhere":
        assert torch.isfinite(y).all() and torch.isfinite(h).all() and torch.isfinite(c).all()
    if lengths is not None and batch and nan != "anywhere":  # NaN in a valid step may make its padding NaN too
        lens = torch.as_tensor(np.asarray(lengths)).long()
        yt = y if not cfg["batch_first"] else y.transpose(0, 1)
        for b in range(batch):
            assert (yt[int(lens[b]):, b] == 0).all(), "output past a sequence's length must be zero"


@FUZZ
@given(lengths=st.one_of(st.lists(st.integers(-3, 8) | st.sampled_from([2**63, -(2**64), 10**40]), max_size=4),
                         st.lists(st.sampled_from([1.0, True, None, "2", np.int64(2), np.uint8(1)]), max_size=3),
                         st.sampled_from([None, 3, "12", b"1", 2.0])),
       batch=st.integers(0, 3), total=st.integers(0, 6), as_tensor=st.booleans())
def test_check_lengths(lengths, batch, total, as_tensor):
    if as_tensor and isinstance(lengths, list):
        try:
            lengths = torch.tensor(lengths)
        except (ValueError, TypeError, RuntimeError, OverflowError):  # torch's own conversion: not ours to judge
            return
    ok, lens = attempt(check_lengths, lengths, batch, total, names=("lengths",))
    if ok:
        assert lens.dtype == torch.int64 and lens.shape == (batch,)
        assert batch == 0 or (1 <= int(lens.min()) and int(lens.max()) <= total)


@pytest.mark.parametrize("call,match", [
    (lambda m: m(torch.randn(4, 2, 3, dtype=torch.float64)), "input has dtype torch.float64 but the parameters"),
    (lambda m: m(torch.randn(4, 2, 3).half()), "input has dtype torch.float16"),
    (lambda m: m(torch.randn(0, 2, 3)), r"no time steps \(T=0\)"),
    (lambda m: m(torch.randn(4, 2, 3), (torch.zeros(1, 2, 5, dtype=torch.float64),) * 2), r"hx\[0\] \(h_0\) has dtype"),
    (lambda m: m(torch.randn(4, 2, 3), lengths=[10**30, 1]), "lengths must be <= the padded length"),
    (lambda m: LSTM(3, 5, dtype=torch.int64), "dtype must be a floating-point torch.dtype"),
])
def test_errors_that_used_to_come_from_inside_torch(call, match):
    """Found by fuzzing: each of these was a RuntimeError from torch's kernels (or its int64
    conversion) rather than an error naming the argument."""
    with pytest.raises((ValueError, TypeError), match=match):
        call(LSTM(3, 5))


@pytest.mark.parametrize("variant", [dict(implementation="loop"), dict(peephole=True), dict(layer_norm=True),
                                     dict(implementation="auto")])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_nan_in_padding_does_not_reach_outputs_or_states(variant, bidirectional):
    """Found by fuzzing: the recurrence path (any variant, or implementation='loop') masked padded
    steps by multiplying, so NaN/inf written past a length turned outputs and h_n/c_n into NaN."""
    torch.manual_seed(0)
    m = LSTM(2, 3, num_layers=2, bidirectional=bidirectional, **variant)
    x = torch.randn(5, 3, 2)
    lengths = [5, 2, 3]
    clean, (h, c) = m(x, lengths=lengths)
    for b, n in enumerate(lengths):
        x[n:, b] = float("nan")
    dirty, (h2, c2) = m(x, lengths=lengths)
    assert torch.equal(clean, dirty) and torch.equal(h, h2) and torch.equal(c, c2)


def test_numpy_lengths_are_accepted():
    m = LSTM(3, 5, batch_first=True)
    x = torch.randn(2, 4, 3)
    a, _ = m(x, lengths=np.array([4, 2]))
    b, _ = m(x, lengths=[np.int64(4), 2])
    c, _ = m(x, lengths=torch.tensor([4, 2]))
    assert torch.equal(a, c) and torch.equal(b, c)
