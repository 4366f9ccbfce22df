"""PixelRNN layers: masks, skewing, and the autoregressive property checked pixel by pixel with gradients."""

import pytest
import torch

from lstmkit.models import create_model
from lstmkit.nn.pixelrnn import DiagonalBiLSTM, MaskedConv2d, RowLSTM, skew, unskew

SIZES = [(8, 8), (5, 7), (7, 4)]


def dependencies(fn, shape, channels=1):
    """(H*W, H*W) bool: entry [p, q] is True when d fn(x)[0, :, p] / d x[0, :, q] is non-zero
    (pixels in raster order), for a random float64 input."""
    H, W = shape
    torch.manual_seed(1)
    x = torch.rand(1, channels, H, W, dtype=torch.float64, requires_grad=True)
    out = fn(x)
    assert out.shape[0] == 1 and out.shape[2:] == (H, W)
    flat = out[0].reshape(out.shape[1], H * W)
    rows = []
    for p in range(H * W):
        (g,) = torch.autograd.grad(flat[:, p].sum(), x, retain_graph=True)
        rows.append(g[0].abs().sum(0).flatten() != 0)
    return torch.stack(rows)


def strictly_before(H, W):
    return torch.tril(torch.ones(H * W, H * W, dtype=torch.bool), diagonal=-1)


def at_or_before(H, W):
    return torch.tril(torch.ones(H * W, H * W, dtype=torch.bool))


MODELS = [("pixel_rnn", dict(layer="diagonal")), ("pixel_rnn", dict(layer="row")), ("pixel_cnn", {})]


@pytest.mark.parametrize("size", SIZES[:2], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name,kw", MODELS, ids=["diagonal", "row", "pixel_cnn"])
def test_every_pixel_sees_only_earlier_pixels(name, kw, size):
    """The referee: logit p has zero gradient with respect to pixels p, p+1, ... (raster order),
    and a non-zero one with respect to its left and upper neighbours."""
    H, W = size
    model = create_model(name, height=H, width=W, hidden_size=4, output_size=8, num_layers=2, **kw).double()
    D = dependencies(model, size)
    leaks = D & ~strictly_before(H, W)
    assert not leaks.any(), f"pixel {divmod(int(leaks.any(1).nonzero()[0]), W)} sees itself or a later pixel"
    for i in range(H):
        for j in range(W):
            p = i * W + j
            near = [(i, j - 1), (i - 1, j - 1), (i - 1, j), (i - 1, j + 1)]
            for a, b in near:
                if 0 <= a and 0 <= b < W:
                    assert D[p, a * W + b], f"pixel ({i}, {j}) does not see ({a}, {b})"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_diagonal_bilstm_model_sees_all_the_past_but_one_pixel(size):
    """Diagonal BiLSTM: every earlier pixel, except the last pixel of the row above when it is
    farther right than the 7x7 mask-A convolution reaches (neither direction carries it: the
    mask-A features of its own row never contain it, and the right-to-left direction is shifted
    down past the current row)."""
    H, W = size
    model = create_model("pixel_rnn", layer="diagonal", height=H, width=W, hidden_size=4, output_size=8).double()
    expected = strictly_before(H, W)
    for i in range(1, H):
        for j in range(W - 1 - 3):
            expected[i * W + j, (i - 1) * W + W - 1] = False
    assert torch.equal(dependencies(model, size), expected)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_diagonal_bilstm_layer_sees_exactly_the_past_and_present(size):
    H, W = size
    layer = DiagonalBiLSTM(2, 3).double()
    assert torch.equal(dependencies(layer, size, channels=2), at_or_before(H, W))


def test_diagonal_bilstm_without_the_shift_would_leak():
    """The one-row shift of the right-to-left direction is what keeps it causal: unshifted, its
    output at (i, j) sees the input at (i, j + 1) and later."""
    H, W = 4, 5
    layer = DiagonalBiLSTM(1, 2).double()
    left = dependencies(lambda x: layer.directions(x)[0], (H, W))
    right = dependencies(lambda x: layer.directions(x)[1], (H, W))
    for i in range(H):
        for j in range(W):
            seen_l, seen_r = left[i * W + j].view(H, W), right[i * W + j].view(H, W)
            assert seen_l[: i + 1, : j + 1].all() and seen_l.sum() == (i + 1) * (j + 1)
            assert seen_r[: i + 1, j:].all() and seen_r.sum() == (i + 1) * (W - j)
    assert (right & ~at_or_before(H, W)).any()  # a leak without the shift


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_row_lstm_layer_has_the_triangular_receptive_field(size):
    """Row LSTM (k = 3): row i - d is seen at columns j - 1 - d .. j + d (none after (i, j) on row i)."""
    H, W = size
    layer = RowLSTM(2, 3, kernel_size=3).double()
    expected = torch.zeros(H * W, H * W, dtype=torch.bool)
    for i in range(H):
        for j in range(W):
            for d in range(i + 1):
                hi = j if d == 0 else j + d
                for b in range(max(0, j - 1 - d), min(W - 1, hi) + 1):
                    expected[i * W + j, (i - d) * W + b] = True
    assert torch.equal(dependencies(layer, size, channels=2), expected)


def test_masks_a_and_b_differ_only_at_the_centre():
    a, b = MaskedConv2d(1, 1, 3, mask="A"), MaskedConv2d(1, 1, 3, mask="B")
    assert a.mask.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert b.mask.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    assert MaskedConv2d(1, 1, (1, 5), mask="B").mask.tolist() == [[1, 1, 1, 0, 0]]
    H, W = 4, 5
    da = dependencies(MaskedConv2d(1, 2, 3, mask="A").double(), (H, W))
    db = dependencies(MaskedConv2d(1, 2, 3, mask="B").double(), (H, W))
    assert not (da & ~strictly_before(H, W)).any() and not (db & ~at_or_before(H, W)).any()
    assert torch.equal(db & ~da, torch.eye(H * W, dtype=torch.bool))  # B adds exactly the pixel itself


def test_masked_weights_get_no_gradient_and_stay_inert():
    conv = MaskedConv2d(2, 3, 5, mask="A")
    conv(torch.randn(2, 2, 6, 6)).sum().backward()
    assert (conv.weight.grad * (1 - conv.mask) == 0).all()
    assert (conv.weight.grad * conv.mask != 0).any()
    with torch.no_grad():
        conv.weight.add_(100 * (1 - conv.mask))  # garbage in the masked taps changes nothing
    x = torch.zeros(1, 2, 6, 6)
    x[0, :, 3, 3] = 1
    assert (conv(x) - conv.bias[None, :, None, None])[0, :, 3, :4].abs().max() == 0


@pytest.mark.parametrize("shape", [(2, 3, 4, 6), (1, 1, 5, 2), (3, 2, 1, 4), (1, 1, 3, 1)])
def test_skew_moves_row_i_right_by_i_and_unskew_inverts_it(shape):
    x = torch.randn(shape)
    B, C, H, W = shape
    s = skew(x)
    assert s.shape == (B, C, H, W + H - 1)
    for i in range(H):
        assert torch.equal(s[:, :, i, i:i + W], x[:, :, i])
        assert (s[:, :, i, :i] == 0).all() and (s[:, :, i, i + W:] == 0).all()
    assert torch.equal(unskew(s, W), x)


def test_unskew_rejects_a_width_that_does_not_fit():
    with pytest.raises(ValueError, match="comes from width 4, not 5"):
        unskew(torch.zeros(1, 1, 3, 6), 5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(mask="C"), "mask must be 'A'"),
    (dict(mask="A", kernel_size=4), "kernel_size must be odd"),
    (dict(mask="B", kernel_size=(3, 0)), r"kernel_size\[1\] must be an int >= 1, got 0"),
])
def test_masked_conv_errors(kwargs, match):
    kw = dict(kernel_size=3) | kwargs
    with pytest.raises(ValueError, match=match):
        MaskedConv2d(1, 2, **kw)


def test_layer_errors_name_the_argument():
    with pytest.raises(ValueError, match="hidden_size must be an int >= 1, got 0"):
        DiagonalBiLSTM(2, 0)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        RowLSTM(2, 3, kernel_size=2)


@pytest.mark.parametrize("layer", [RowLSTM(3, 4), DiagonalBiLSTM(3, 4)], ids=["row", "diagonal"])
def test_layers_shapes_and_every_parameter_gets_a_gradient(layer):
    out = layer(torch.randn(2, 3, 5, 6))
    assert out.shape == (2, 4, 5, 6) and torch.isfinite(out).all()
    out.pow(2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
