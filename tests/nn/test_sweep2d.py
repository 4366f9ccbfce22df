import pytest
import torch

from lstmkit.nn.sweep2d import ReNetLayer, patchify


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def _influence(out_fn, x, i, j, channels=slice(None)):
    """|d out[0, channels, i, j] / d x| summed over input channels: (H, W) bool of what it sees."""
    x = x.clone().requires_grad_(True)
    out_fn(x)[0, channels, i, j].sum().backward()
    return x.grad[0].abs().sum(0) > 0


@pytest.fixture
def layer():
    torch.manual_seed(0)
    return ReNetLayer(2, 3, patch=1, first="vertical").double()


def test_first_sweep_sees_the_column_and_the_layer_the_image(layer):
    x = randn(1, 2, 5, 4)
    first = lambda x: layer.sweep(layer.sweep1, x, "vertical")  # noqa: E731
    for i, j in ((0, 0), (2, 1), (4, 3)):
        seen = _influence(first, x, i, j)
        expected = torch.zeros(5, 4, dtype=torch.bool)
        expected[:, j] = True
        assert torch.equal(seen, expected)
        assert bool(_influence(layer, x, i, j).all())  # after both sweeps: every pixel


def test_directions_run_along_the_intended_axis(layer):
    x = randn(1, 2, 5, 4)
    H = layer.hidden_size
    first = lambda x: layer.sweep(layer.sweep1, x, "vertical")  # noqa: E731
    i, j = 2, 1
    fwd = _influence(first, x, i, j, slice(0, H))  # top-down: rows 0..i of column j
    bwd = _influence(first, x, i, j, slice(H, 2 * H))  # bottom-up: rows i..end of column j
    col = torch.zeros(5, 4, dtype=torch.bool)
    col[:, j] = True
    rows = torch.arange(5)[:, None].expand(5, 4)
    assert torch.equal(fwd, col & (rows <= i)) and torch.equal(bwd, col & (rows >= i))
    second = lambda y: layer.sweep(layer.sweep2, y, "horizontal")  # noqa: E731
    y = randn(1, 2 * H, 5, 4)
    fwd = _influence(second, y, i, j, slice(0, H))  # left-to-right along row i
    bwd = _influence(second, y, i, j, slice(H, 2 * H))
    cols = torch.arange(4)[None, :].expand(5, 4)
    row = rows == i
    assert torch.equal(fwd, row & (cols <= j)) and torch.equal(bwd, row & (cols >= j))


def test_horizontal_first_sees_the_row():
    torch.manual_seed(1)
    layer = ReNetLayer(1, 2, first="horizontal").double()
    x = randn(1, 1, 3, 6)
    seen = _influence(lambda x: layer.sweep(layer.sweep1, x, layer.first), x, 1, 2)
    assert torch.equal(seen, torch.arange(3)[:, None].expand(3, 6) == 1)


def test_patches_are_non_overlapping():
    x = torch.arange(2 * 4 * 6, dtype=torch.float64).reshape(1, 2, 4, 6)
    p = patchify(x, (2, 3))
    assert p.shape == (1, 12, 2, 2)
    assert torch.equal(p[0, :, 1, 0], x[0, :, 2:4, 0:3].reshape(-1))
    torch.manual_seed(2)
    layer = ReNetLayer(2, 3, patch=(2, 3)).double()
    assert layer(x).shape == (1, 6, 2, 2)
    seen = _influence(lambda x: layer.sweep(layer.sweep1, patchify(x, layer.patch), "vertical"), x, 0, 1)
    assert torch.equal(seen, (torch.arange(6) >= 3)[None, :].expand(4, 6))  # column of patches 1


def test_padded_batch_equals_each_image_alone():
    torch.manual_seed(3)
    layer = ReNetLayer(1, 4, patch=2).double()
    a, b = randn(1, 1, 6, 8), randn(1, 1, 4, 6)
    batch = torch.zeros(2, 1, 6, 8, dtype=torch.float64)
    batch[0], batch[1, :, :4, :6] = a[0], b[0]
    out = layer(batch, sizes=torch.tensor([[6, 8], [4, 6]]))
    torch.testing.assert_close(out[0:1], layer(a))
    torch.testing.assert_close(out[1:2, :, :2, :3], layer(b))
    assert out[1, :, 2:].abs().max() == 0 and out[1, :, :, 3:].abs().max() == 0


@pytest.mark.parametrize("kwargs, x, sizes, match", [
    ({}, randn(1, 3, 4, 4), None, r"\(B, C=2, H, W\)"),
    ({"patch": 3}, randn(1, 2, 4, 6), None, "not divisible by the patch size 3x3"),
    ({"patch": 2}, randn(2, 2, 4, 4), torch.tensor([[4, 3], [4, 4]]), "multiples of the patch"),
    ({}, randn(2, 2, 4, 4), torch.tensor([[5, 4], [4, 4]]), r"in \[1, 4\]"),
    ({}, randn(2, 2, 4, 4), torch.tensor([4.0, 4.0]), "sizes must be integer"),
])
def test_bad_input_is_refused(kwargs, x, sizes, match):
    layer = ReNetLayer(2, 3, **kwargs).double()
    with pytest.raises(ValueError, match=match):
        layer(x.double(), sizes)


def test_bad_construction_is_refused():
    with pytest.raises(ValueError, match="first must be one of"):
        ReNetLayer(2, 3, first="diagonal")
    with pytest.raises(ValueError, match="bidirectional is fixed"):
        ReNetLayer(2, 3, bidirectional=False)
    with pytest.raises(ValueError, match="patch must be"):
        ReNetLayer(2, 3, patch=0)


def test_variants_pass_through():
    layer = ReNetLayer(1, 2, peephole=True, layer_norm=True)
    assert layer.sweep1.variant.peephole and layer.sweep2.variant.layer_norm
    y = layer(torch.randn(2, 1, 4, 4))
    assert y.shape == (2, 4, 4, 4) and torch.isfinite(y).all()
