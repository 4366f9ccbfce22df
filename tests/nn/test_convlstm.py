"""ConvLSTM: the paper's equations, torch.nn.LSTM parity at 1x1, peepholes, state carried
across calls, lengths, shapes and errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lstmkit.nn.convlstm import ConvLSTM, ConvLSTMCell

from .helpers import assert_close

D64 = torch.float64


def _gates(w, n):
    return w[:n], w[n:2 * n], w[2 * n:3 * n], w[3 * n:]


def hand_step(cell: ConvLSTMCell, x, h, c):
    """Shi et al.'s equations one gate at a time (separate convolutions per gate)."""
    n, pad = cell.hidden_channels, cell.kernel_size // 2
    wxi, wxf, wxc, wxo = _gates(cell.weight_ih, n)
    whi, whf, whc, who = _gates(cell.weight_hh, n)
    b = cell.bias_ih + cell.bias_hh
    bi, bf, bc, bo = (v[:, None, None] for v in _gates(b, n))
    wc = cell.weight_c if cell.weight_c is not None else torch.zeros(3, n, 1, 1, dtype=x.dtype)

    def conv(a, w):
        return F.conv2d(a, w, padding=pad)

    i = torch.sigmoid(conv(x, wxi) + conv(h, whi) + wc[0] * c + bi)
    f = torch.sigmoid(conv(x, wxf) + conv(h, whf) + wc[1] * c + bf)
    c_new = f * c + i * torch.tanh(conv(x, wxc) + conv(h, whc) + bc)
    o = torch.sigmoid(conv(x, wxo) + conv(h, who) + wc[2] * c_new + bo)
    return o * torch.tanh(c_new), c_new


@pytest.mark.parametrize("peephole", ["none", "channel", "pixel"])
def test_cell_matches_the_equations_in_float64(peephole):
    size = (5, 6) if peephole == "pixel" else None
    cell = ConvLSTMCell(3, 4, kernel_size=3, peephole=peephole, spatial_size=size).double()
    if cell.weight_c is not None:  # make the peepholes matter
        with torch.no_grad():
            cell.weight_c.normal_()
    x = torch.randn(2, 3, 5, 6, dtype=D64)
    h, c = torch.randn(2, 4, 5, 6, dtype=D64), torch.randn(2, 4, 5, 6, dtype=D64)
    ours = cell(x, (h, c))
    ref = hand_step(cell, x, h, c)
    assert_close(ours.h, ref[0], what="h")
    assert_close(ours.c, ref[1], what="c")


def test_layer_matches_stepping_the_cell_and_stacks():
    torch.manual_seed(1)
    net = ConvLSTM(2, [3, 4], kernel_size=3).double()
    x = torch.randn(2, 5, 2, 6, 6, dtype=D64)
    out, state = net(x)
    assert out.shape == (2, 5, 4, 6, 6) and len(state) == 2
    assert state[0].h.shape == (2, 3, 6, 6) and state[1].c.shape == (2, 4, 6, 6)
    layer_in = x
    for li, cell in enumerate(net.cells):
        h = c = torch.zeros(2, cell.hidden_channels, 6, 6, dtype=D64)
        outs = []
        for t in range(5):
            h, c = hand_step(cell, layer_in[:, t], h, c)
            outs.append(h)
        layer_in = torch.stack(outs, 1)
        assert_close(state[li].h, h, what=f"layer {li} h")
        assert_close(state[li].c, c, what=f"layer {li} c")
    assert_close(out, layer_in, what="outputs")


def test_1x1_kernel_on_1x1_frames_is_torch_lstm():
    ours = ConvLSTM(3, 5, kernel_size=1, num_layers=2, peephole="none").double()
    theirs = nn.LSTM(3, 5, num_layers=2, batch_first=True, dtype=D64)
    with torch.no_grad():
        for layer, cell in enumerate(ours.cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(theirs, f"{name}_l{layer}").copy_(getattr(cell, name).reshape(getattr(theirs, f"{name}_l{layer}").shape))
    x = torch.randn(4, 7, 3, dtype=D64)
    out, state = ours(x[..., None, None])
    ref, (h, c) = theirs(x)
    assert_close(out[..., 0, 0], ref, what="outputs")
    assert_close(torch.stack([s.h[..., 0, 0] for s in state]), h, what="h_n")
    assert_close(torch.stack([s.c[..., 0, 0] for s in state]), c, what="c_n")


def test_initialisation_is_torch_lstm_at_k1_and_forget_bias():
    cell = ConvLSTMCell(3, 16, kernel_size=3, forget_bias=1.0)
    bound = 1 / (16 * 9) ** 0.5
    for p in (cell.weight_ih, cell.weight_hh, cell.weight_c):
        assert p.abs().max() <= bound and p.abs().max() > 0.8 * bound
    assert torch.equal(cell.bias_ih[16:32] + cell.bias_hh[16:32], torch.ones(16))
    assert ConvLSTMCell(3, 16, kernel_size=1).weight_hh.abs().max() > 0.2  # 1/sqrt(16) = 0.25, as torch


def test_peepholes_change_the_output_and_pixel_peepholes_act_per_pixel():
    x = torch.randn(1, 1, 2, 4, 4)
    cell = ConvLSTMCell(2, 3, peephole="channel")
    base = cell(x[:, 0])
    with torch.no_grad():
        cell.weight_c[2].fill_(5.0)  # the output gate sees C_t
    assert (cell(x[:, 0]).h - base.h).abs().max() > 1e-3
    assert torch.equal(cell(x[:, 0]).c, base.c)  # from a zero state, only the output gate can see C

    pix = ConvLSTMCell(2, 3, peephole="pixel", spatial_size=(4, 4))
    before = pix(x[:, 0])
    with torch.no_grad():
        pix.weight_c[2, :, 1, 2] += 5.0  # one pixel's output peephole
    diff = (pix(x[:, 0]).h - before.h).abs().amax(dim=(0, 1))  # -> (H, W)
    assert diff[1, 2] > 1e-3
    diff[1, 2] = 0
    assert diff.max() == 0
    assert ConvLSTMCell(2, 3, peephole="none").weight_c is None


def test_state_carried_across_calls_equals_one_call():
    net = ConvLSTM(2, [3, 3], kernel_size=3, peephole="channel").double()
    x = torch.randn(3, 9, 2, 5, 5, dtype=D64)
    whole, state = net(x)
    first, mid = net(x[:, :4])
    second, end = net(x[:, 4:], state=mid)
    assert_close(torch.cat([first, second], 1), whole, what="outputs")
    for a, b in zip(end, state):
        assert_close(a.h, b.h, what="h")
        assert_close(a.c, b.c, what="c")


def test_lengths_padded_equals_unpadded():
    net = ConvLSTM(2, [3, 4], kernel_size=3).double()
    lengths = [6, 2, 4]
    clips = [torch.randn(n, 2, 5, 5, dtype=D64) for n in lengths]
    padded = torch.zeros(3, 6, 2, 5, 5, dtype=D64)
    for b, clip in enumerate(clips):
        padded[b, : len(clip)] = clip
        padded[b, len(clip):] = torch.randn(6 - len(clip), 2, 5, 5, dtype=D64)  # junk must not leak
    out, state = net(padded, lengths=torch.tensor(lengths))
    for b, clip in enumerate(clips):
        alone, s = net(clip[None])
        n = len(clip)
        assert_close(out[b, :n], alone[0], what=f"clip {b} outputs")
        assert torch.equal(out[b, n:], torch.zeros_like(out[b, n:]))
        for layer in range(2):
            assert_close(state[layer].h[b], s[layer].h[0], what=f"clip {b} layer {layer} h")
            assert_close(state[layer].c[b], s[layer].c[0], what=f"clip {b} layer {layer} c")


def test_lengths_with_a_carried_state_keep_a_finished_clip_unchanged():
    net = ConvLSTM(1, 2).double()
    x = torch.randn(2, 3, 1, 4, 4, dtype=D64)
    _, s0 = net(x)
    _, s1 = net(x, state=s0, lengths=[3, 1])
    _, ref = net(x[1:, :1], state=[(s.h[1:], s.c[1:]) for s in s0])
    assert_close(s1[0].h[1:], ref[0].h, what="h")


def test_no_input_cell_runs_on_its_state():
    net = ConvLSTM(0, 3)
    state = [(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4))]
    out, _ = net(torch.zeros(2, 5, 0, 4, 4), state=state)
    assert out.shape == (2, 5, 3, 4, 4) and net.cells[0].weight_ih is None
    h, c = net.cells[0](None, state[0])
    assert torch.allclose(h, out[:, 0])


def test_every_parameter_gets_a_gradient():
    net = ConvLSTM(2, [3, 3], peephole="pixel", spatial_size=(4, 4))
    out, state = net(torch.randn(2, 3, 2, 4, 4))
    (out.sum() + state[0].c.sum()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kwargs, match", [
    ({"kernel_size": 2}, "kernel_size must be odd"),
    ({"peephole": "cell"}, "peephole must be one of 'none', 'channel', 'pixel'"),
    ({"peephole": "pixel"}, r"give spatial_size=\(H, W\)"),
    ({"spatial_size": (4, 4)}, "spatial_size is only used by peephole='pixel'"),
    ({"forget_bias": 1.0, "bias": False}, "forget_bias needs bias=True"),
    ({"hidden_channels": 0}, "hidden_channels must be an int >= 1, got 0"),
    ({"hidden_channels": [3, 3], "num_layers": 3}, "num_layers=3 but hidden_channels lists 2 layers"),
])
def test_constructor_errors(kwargs, match):
    args = {"input_channels": 2, "hidden_channels": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        ConvLSTM(**args)


def test_forward_errors():
    net = ConvLSTM(2, 3)
    with pytest.raises(ValueError, match=r"5-D clips \(B, T, C, H, W\)"):
        net(torch.randn(2, 2, 4, 4))
    with pytest.raises(ValueError, match="x has 3 channels .* expected input_channels=2"):
        net(torch.randn(1, 2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"state\[0\] h must have shape \(B, N, H, W\) = \(1, 3, 4, 4\)"):
        net(torch.randn(1, 2, 2, 4, 4), state=[(torch.zeros(1, 3, 5, 5), torch.zeros(1, 3, 5, 5))])
    with pytest.raises(ValueError, match="state must be a list of 1"):
        net(torch.randn(1, 2, 2, 4, 4), state=[])
    with pytest.raises(ValueError, match="lengths must be <= the padded length T=2"):
        net(torch.randn(1, 2, 2, 4, 4), lengths=[3])
    pix = ConvLSTM(2, 3, peephole="pixel", spatial_size=(4, 4))
    with pytest.raises(ValueError, match="frames are 5x5 .* per-pixel peepholes for 4x4"):
        pix(torch.randn(1, 2, 2, 5, 5))
    with pytest.raises(ValueError, match=r"x must be \(B, C=2, H, W\)"):
        ConvLSTMCell(2, 3)(torch.randn(1, 3, 4, 4))
