"""Variants: hand-written backward checked by gradcheck, neutral settings reduce to the plain
LSTM, masks behave as their papers say, and everything composes."""

import itertools

import pytest
import torch
from torch import nn

from lstmkit.nn import LSTM, LSTMCell, SequenceMasks, VariantConfig, lstm_recurrence, parse_variants

from .helpers import assert_close, grads_of, loss_of, record_masks, reference_forward, run_alone, twins

VARIANTS = {
    "peephole": dict(peephole=True),
    "layer_norm": dict(layer_norm=True),
    "forget_bias": dict(forget_bias=1.0),
    "recurrent_dropout": dict(recurrent_dropout=0.3),
    "input_dropout": dict(input_dropout=0.3),
    "zoneout": dict(zoneout=(0.3, 0.2)),
    "all": dict(peephole=True, layer_norm=True, forget_bias=1.0, recurrent_dropout=0.2, input_dropout=0.1, zoneout=0.2),
}


def _rand(*shape, grad=True):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize("proj", [False, True])
@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("masks", [False, True])
def test_recurrence_gradcheck(proj, peephole, layer_norm, masks, recurrence):
    T, B, H = 4, 3, 3
    R = 2 if proj else H
    args = [_rand(T, B, 4 * H), _rand(B, R), _rand(B, H), _rand(4 * H, R)]
    kw = {}
    if proj:
        kw["weight_hr"] = _rand(R, H)
    if peephole:
        kw["peephole"] = _rand(3, H)
    if layer_norm:
        kw["ln_hh"] = (_rand(4 * H), _rand(4 * H))
        kw["ln_c"] = (_rand(H), _rand(H))
    if masks:
        valid = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 0, 0]], dtype=torch.float64).unsqueeze(-1)
        kw["update_c"] = torch.rand(T, B, H, dtype=torch.float64).round() * valid
        kw["update_h"] = torch.rand(T, B, R, dtype=torch.float64).round() * valid
        kw["valid"] = valid
        kw["recurrent_mask"] = torch.rand(B, R, dtype=torch.float64).round() * 2
    flat, names = [], []
    for k, v in kw.items():
        if isinstance(v, tuple):
            flat += list(v)
            names += [k, k]
        else:
            flat.append(v)
            names.append(k)

    def fn(*tensors):
        a, rest = tensors[:4], list(tensors[4:])
        call = {}
        for k in kw:
            if isinstance(kw[k], tuple):
                call[k] = (rest.pop(0), rest.pop(0))
            else:
                call[k] = rest.pop(0)
        return lstm_recurrence(*a, **call)

    assert torch.autograd.gradcheck(fn, tuple(args + flat))


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("bidirectional,proj_size", [(False, 0), (True, 2)])
def test_variant_gradcheck_through_module(name, bidirectional, proj_size, monkeypatch, recurrence):
    m = LSTM(3, 4, 2, bidirectional=bidirectional, proj_size=proj_size, dtype=torch.float64, **VARIANTS[name])
    fixed = []  # draw the random masks once, then reuse them so the function is deterministic
    original, calls, per_call = m.sample_masks, itertools.count(), m.num_layers * m.num_directions

    def fixed_masks(*args):
        i = next(calls) % per_call
        if len(fixed) <= i:
            fixed.append(original(*args))
        return fixed[i]

    monkeypatch.setattr(m, "sample_masks", fixed_masks)
    x = _rand(5, 2, 3)

    def fn(x):
        out, (h, c) = m(x, lengths=[5, 3])
        return out, h, c

    assert torch.autograd.gradcheck(fn, (x,))


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("training", [True, False])
def test_layer_equals_autograd_step_reference(name, training, monkeypatch, recurrence):
    """The fast recurrence (hand-written backward) equals autograd through lstm_cell_step."""
    m = LSTM(3, 5, 2, bidirectional=True, proj_size=2, dtype=torch.float64, **VARIANTS[name])
    m.train(training)
    for p in m.parameters():  # move LN gains/shifts and biases off their neutral starts
        p.data.add_(0.1 * torch.randn_like(p))
    seen = record_masks(m, monkeypatch)
    x = _rand(6, 3, 3)
    hx = (_rand(4, 3, 2), _rand(4, 3, 5))
    out, st = m(x, hx)
    ref_out, ref_st = reference_forward(m, x, hx, masks=seen)
    assert_close(out, ref_out, what="output")
    assert_close(st.h, ref_st[0], what="h_n")
    assert_close(st.c, ref_st[1], what="c_n")
    ga = grads_of(m, loss_of(out, st), (x, *hx))
    gb = grads_of(m, loss_of(ref_out, ref_st), (x, *hx))
    for k in ga:
        assert_close(ga[k], gb[k], what=f"grad {k}")


def test_neutral_variants_reduce_exactly_to_torch(recurrence):
    """Zero peepholes, zoneout 0, dropouts 0 on the recurrence path == nn.LSTM."""
    ours, theirs = twins(4, 6, 2, bidirectional=True, proj_size=3, implementation="loop",
                         variants=dict(peephole=True, recurrent_dropout=0.0, input_dropout=0.0, zoneout=0.0))
    with torch.no_grad():
        for name, p in ours.named_parameters():
            if name.startswith("peephole"):
                p.zero_()
    x = _rand(5, 3, 4)
    out_a, st_a = ours(x, lengths=[5, 2, 4])
    out_b, st_b = theirs(torch.nn.utils.rnn.pack_padded_sequence(x, [5, 2, 4], enforce_sorted=False))
    out_b = torch.nn.utils.rnn.pad_packed_sequence(out_b, total_length=5)[0]
    assert_close(out_a, out_b)
    assert_close(st_a.h, st_b[0])
    ga, gb = grads_of(ours, loss_of(out_a, st_a), (x,)), grads_of(theirs, loss_of(out_b, st_b), (x,))
    for k in gb:
        assert_close(ga[k], gb[k], what=k)


def test_layer_norm_at_identity_is_not_plain_lstm_but_matches_reference():
    m = LSTM(3, 4, layer_norm=True, dtype=torch.float64)
    names = {n for n, _ in m.named_parameters()}
    assert {"ln_ih_weight_l0", "ln_ih_bias_l0", "ln_hh_weight_l0", "ln_hh_bias_l0", "ln_c_weight_l0", "ln_c_bias_l0"} <= names
    assert torch.equal(m.ln_c_weight_l0, torch.ones(4, dtype=torch.float64))


def test_recurrent_dropout_mask_is_constant_across_time(monkeypatch, recurrence):
    m = LSTM(3, 8, 2, bidirectional=True, recurrent_dropout=0.5, input_dropout=0.5, dtype=torch.float64)
    seen = record_masks(m, monkeypatch)
    x = _rand(7, 4, 3)
    m(x)
    assert len(seen) == 4  # one draw per layer and direction
    for masks in seen:
        assert masks.recurrent.shape == (4, 8)  # no time axis: one mask per sequence
        assert set(masks.recurrent.unique().tolist()) <= {0.0, 2.0}
        assert masks.input.dim() == 2
    assert seen[0].input.shape == (4, 3) and seen[2].input.shape == (4, 16)
    # The same recorded mask applied at every step by the reference reproduces the output exactly.
    seen.clear()
    out, _ = m(x)
    assert_close(out, reference_forward(m, x, masks=seen)[0])
    m.eval()
    assert m.sample_masks(7, 4, 3, x).recurrent is None  # identity at eval time


def test_dropout_changes_training_output_only():
    m = LSTM(3, 8, recurrent_dropout=0.5, zoneout=0.3, input_dropout=0.2, dtype=torch.float64)
    x = _rand(6, 4, 3, grad=False)
    m.eval()
    assert torch.equal(m(x)[0], m(x)[0])
    m.train()
    assert not torch.equal(m(x)[0], m(x)[0])


def test_zoneout_eval_uses_expectation(recurrence):
    m = LSTM(3, 4, zoneout=(0.25, 0.5), dtype=torch.float64).eval()
    masks = m.sample_masks(6, 2, 3, torch.zeros(1, dtype=torch.float64))
    assert torch.all(masks.update_c == 0.75) and torch.all(masks.update_h == 0.5)
    x = _rand(6, 2, 3, grad=False)
    ref, _ = reference_forward(m, x, masks=[masks])
    assert_close(m(x)[0], ref)
    m.train()
    tm = m.sample_masks(6, 2, 3, x)
    assert tm.update_c.shape == (6, 2, 4) and set(tm.update_c.unique().tolist()) <= {0.0, 1.0}
    assert abs(tm.update_c.mean().item() - 0.75) < 0.3


@pytest.mark.parametrize("bidirectional", [False, True])
def test_forget_bias_is_set_once_in_every_layer_and_direction(bidirectional):
    m = LSTM(3, 4, 3, bidirectional=bidirectional, forget_bias=1.5)
    n = 0
    for layer in range(3):
        for sfx in ([""] + (["_reverse"] if bidirectional else [])):
            b_ih, b_hh = getattr(m, f"bias_ih_l{layer}{sfx}"), getattr(m, f"bias_hh_l{layer}{sfx}")
            assert torch.allclose(b_ih[4:8] + b_hh[4:8], torch.full((4,), 1.5))
            assert not torch.allclose(b_ih[:4] + b_hh[:4], torch.full((4,), 1.5))
            n += 1
    assert n == 3 * (2 if bidirectional else 1)
    assert not m.variant.needs_loop  # an initialisation only: the fused path still runs
    cell = LSTMCell(3, 4, forget_bias=2.0)
    assert torch.allclose(cell.bias_ih[4:8] + cell.bias_hh[4:8], torch.full((4,), 2.0))


@pytest.mark.parametrize("name", ["peephole", "layer_norm", "zoneout", "all"])
def test_variants_compose_with_lengths(name, recurrence):
    """Padded == alone for deterministic (eval-mode) variants, stacked + bidirectional + proj."""
    m = LSTM(3, 5, 2, bidirectional=True, proj_size=2, dtype=torch.float64, **VARIANTS[name]).eval()
    lens = [6, 2, 4]
    x = _rand(6, 3, 3, grad=False)
    out, (h, c) = m(x, lengths=lens)
    alone, h_a, c_a = run_alone(m, x, lens)
    for b, n in enumerate(lens):
        assert_close(out[:n, b : b + 1], alone[b])
    assert_close(h, h_a)
    assert_close(c, c_a)


def test_cell_variants_match_layer_step(recurrence):
    cell = LSTMCell(3, 4, peephole=True, layer_norm=True, zoneout=0.3, dtype=torch.float64).eval()
    layer = LSTM(3, 4, peephole=True, layer_norm=True, zoneout=0.3, dtype=torch.float64).eval()
    layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x = _rand(5, 2, 3, grad=False)
    out, (h, c) = layer(x)
    state = None
    for t in range(5):
        state = cell(x[t], state)
        assert_close(state.h, out[t])
    assert_close(state.c, c[0])


def test_parse_variants_and_config_validation():
    assert parse_variants({"peephole": True, "zoneout": 0.1}) == VariantConfig(peephole=True, zoneout=0.1)
    with pytest.raises(ValueError, match=r"unknown LSTM variant 'peepole'.*did you mean 'peephole'"):
        parse_variants({"peepole": True})
    with pytest.raises(ValueError, match="zoneout must be in"):
        VariantConfig(zoneout=1.0)
    with pytest.raises(ValueError, match="recurrent_dropout"):
        LSTM(3, 4, recurrent_dropout=-0.1)
    with pytest.raises(TypeError, match="peephole must be True or False"):
        VariantConfig(peephole="yes")
    with pytest.raises(ValueError, match="zoneout must be a float or a pair"):
        VariantConfig(zoneout=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="forget_bias needs bias=True"):
        LSTM(3, 4, bias=False, forget_bias=1.0)
    with pytest.raises(ValueError, match="implementation='fused' cannot run"):
        LSTM(3, 4, peephole=True, implementation="fused")
    with pytest.raises(TypeError, match="peepole"):
        LSTM(3, 4, peepole=True)
    assert isinstance(SequenceMasks(), SequenceMasks)


def test_variant_model_loads_torch_weights_non_strict():
    theirs = nn.LSTM(3, 4, 2)
    ours = LSTM.from_torch(theirs, peephole=True)
    assert torch.equal(ours.weight_hh_l1, theirs.weight_hh_l1)
    assert ours.variant.peephole


@pytest.mark.parametrize("keep", [0.9, 0.3])
def test_bernoulli_mask_has_the_asked_rate(keep):
    from lstmkit.nn.cell import bernoulli_mask

    m = bernoulli_mask((100, 300, 101), keep, torch.zeros(1, dtype=torch.float64))
    assert m.shape == (100, 300, 101) and m.dtype == torch.float64
    assert set(m.unique().tolist()) == {0.0, 1.0}
    assert abs(m.mean().item() - keep) < 2e-3  # 3M draws: the standard error is < 3e-4
