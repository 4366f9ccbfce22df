"""The ConvLSTM encoder-forecaster: builds from the registry, shapes, gradients, lengths,
save/load, overfitting a tiny batch, config errors."""

import pytest
import torch

from lstmkit.checkpoint import load_checkpoint, save_checkpoint
from lstmkit.models import create_model
from lstmkit.models.video import ConvLSTMForecaster

TINY = dict(frame_size=16, patch=4, input_frames=3, output_frames=2, hidden_channels=[4, 5], kernel_size=3)
VARIANTS = {
    "pixel-bce": {},
    "channel-mse": {"peephole": "channel", "loss": "mse"},
    "none-one-layer": {"peephole": "none", "hidden_channels": [6], "forget_bias": None},
}


@pytest.fixture(params=list(VARIANTS), ids=list(VARIANTS))
def model(request):
    return create_model("convlstm_forecaster", **{**TINY, **VARIANTS[request.param]})


def _clips(b=2, t=3):
    return torch.rand(b, t, 16, 16), torch.rand(b, 2, 16, 16)


def test_builds_with_output_shape_and_no_nan(model):
    assert isinstance(model, ConvLSTMForecaster)
    x, _ = _clips()
    logits = model(x)
    assert logits.shape == (2, 2, 16, 16) and torch.isfinite(logits).all()
    pred = model.predict(x)
    assert pred.min() >= 0 and pred.max() <= 1 and not pred.requires_grad


def test_every_parameter_gets_a_gradient(model):
    x, y = _clips()
    model.loss(x, y).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_forecast_depends_on_the_input_frames(model):
    x, _ = _clips()
    x2 = x.clone()
    x2[:, 0] = 1 - x2[:, 0]  # change only the first input frame
    assert (model(x) - model(x2)).abs().max() > 1e-6


def test_lengths_forecast_from_each_clips_last_valid_frame(model):
    x, _ = _clips(t=3)
    padded = torch.cat([x[:, :2], torch.rand(2, 1, 16, 16)], dim=1)
    ours = model(padded, lengths=torch.tensor([2, 3]))
    assert torch.allclose(ours[0], model(x[:1, :2], lengths=torch.tensor([2]))[0], atol=1e-6)
    assert torch.allclose(ours[1], model(padded[1:])[0], atol=1e-6)


def test_save_load_round_trip(model, tmp_path):
    from dataclasses import asdict

    save_checkpoint(tmp_path, model.state_dict(), {"model": asdict(model.config)})
    state, meta = load_checkpoint(tmp_path)
    again = create_model("convlstm_forecaster", **meta["model"])
    again.load_state_dict(state)
    x, _ = _clips()
    assert torch.equal(model(x), again(x))


def test_overfits_one_tiny_batch():
    torch.manual_seed(0)
    model = create_model("convlstm_forecaster", **{**TINY, "hidden_channels": [16]})
    x, y = _clips()
    y = (y > 0.5).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.loss(x, y).item()
    for _ in range(100):
        opt.zero_grad()
        loss = model.loss(x, y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first, (first, loss.item())


def test_bce_is_the_default_loss_and_mse_is_a_choice():
    x, y = _clips()
    bce = create_model("convlstm_forecaster", **TINY)
    torch.manual_seed(0)
    mse = create_model("convlstm_forecaster", **TINY, loss="mse")
    mse.load_state_dict(bce.state_dict())
    logits = bce(x)
    assert torch.allclose(bce.loss(x, y), torch.nn.functional.binary_cross_entropy_with_logits(logits, y))
    assert torch.allclose(mse.loss(x, y), ((torch.sigmoid(logits) - y) ** 2).mean())


@pytest.mark.parametrize("kwargs, match", [
    ({"frame_size": 18}, "frame_size=18 must be a multiple of patch=4"),
    ({"hidden_channels": []}, "hidden_channels must be a non-empty list of positive ints"),
    ({"loss": "l1"}, "loss must be 'bce' or 'mse'"),
    ({"peephole": "cell"}, "peephole must be one of 'none', 'channel', 'pixel'"),
    ({"kernel_size": 0}, "kernel_size must be an int >= 1, got 0"),
    ({"kernel_size": 2}, "kernel_size must be odd"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_model("convlstm_forecaster", **{**TINY, **kwargs})


def test_input_errors():
    model = create_model("convlstm_forecaster", **TINY)
    with pytest.raises(ValueError, match=r"x must be clips \(B, T, H, W\) with 16x16 frames, got shape \(2, 3, 8, 8\)"):
        model(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="x has 5 frames but this model reads input_frames=3"):
        model(torch.rand(2, 5, 16, 16))
    with pytest.raises(ValueError, match=r"target must have shape \(2, 2, 16, 16\)"):
        model.loss(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
