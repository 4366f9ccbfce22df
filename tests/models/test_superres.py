import pytest
import torch
import torch.nn.functional as F

from lstmkit.models import create_model
from lstmkit.models.superres import LSTMSuperRes, LSTMSuperResConfig, bicubic_upscale
from lstmkit.tasks.runs import load_model, save_model

SMALL = {"features": 6, "hidden_size": 5}


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("layers, refine", [(1, 2), (2, 0)])
def test_builds_shapes_and_gradients(scale, layers, refine):
    m = create_model("lstm_sr", scale=scale, layers=layers, refine=refine, **SMALL)
    assert isinstance(m, LSTMSuperRes) and m.scale == scale
    lr = torch.rand(3, 1, 6, 9)
    hr = m(lr)
    assert hr.shape == (3, 1, 6 * scale, 9 * scale) and torch.isfinite(hr).all()
    m.loss(lr, torch.rand_like(hr)).backward()
    assert not [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]


def test_rgb_channels_and_variants():
    m = create_model("lstm_sr", scale=2, channels=3, variants={"layer_norm": True}, **SMALL)
    assert m(torch.rand(2, 3, 5, 4)).shape == (2, 3, 10, 8)


def test_untrained_model_is_close_to_bicubic_and_upscale_clamps():
    m = create_model("lstm_sr", scale=2, **SMALL).eval()
    lr = torch.rand(2, 1, 8, 8)
    base = bicubic_upscale(lr, 2)
    torch.testing.assert_close(base, F.interpolate(lr, scale_factor=2, mode="bicubic").clamp(0, 1))
    with torch.no_grad():
        assert (m(lr) - base).abs().max() < 0.2
    up = m.upscale(lr)
    assert up.min() >= 0 and up.max() <= 1 and not up.requires_grad


def test_overfits_one_batch():
    torch.manual_seed(0)
    m = create_model("lstm_sr", scale=2, **SMALL)
    lr, hr = torch.rand(4, 1, 6, 6), torch.rand(4, 1, 12, 12)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = m.loss(lr, hr).item()
    for _ in range(60):
        opt.zero_grad()
        loss = m.loss(lr, hr)
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_save_load_round_trip(tmp_path):
    spec = {"name": "lstm_sr", "scale": 4, **SMALL}
    m = create_model(**spec).eval()
    save_model(tmp_path, m, spec, "superres")
    back, meta = load_model(tmp_path, "superres")
    lr = torch.rand(1, 1, 7, 5)
    with torch.no_grad():
        assert torch.equal(m(lr), back(lr))
    assert meta["model"] == spec


def test_errors():
    m = create_model("lstm_sr", scale=2, **SMALL)
    with pytest.raises(ValueError, match=r"lr must be \(B, C=1, h, w\) \(luminance images\), got \(2, 3, 8, 8\)"):
        m(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"lr must be \(B, C=1, h, w\) \(luminance images\), got \(1, 8, 8\)"):
        m(torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="at least 2x2 pixels, got 1x8"):
        m(torch.rand(1, 1, 1, 8))
    with pytest.raises(ValueError, match=r"hr must be \(B, C, 2\*h, 2\*w\) for lr \(1, 1, 4, 4\), got \(1, 1, 16, 16"):
        m.loss(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"scale must be one of \(2, 3, 4\), got 5"):
        LSTMSuperResConfig(scale=5)
    with pytest.raises(ValueError, match=r"channels must be 1 \(luminance\) or 3 \(RGB\), got 2"):
        LSTMSuperResConfig(channels=2)
    with pytest.raises(ValueError, match="hidden_size must be an int >= 1, got 0"):
        create_model("lstm_sr", hidden_size=0)
    with pytest.raises(ValueError, match="refine must be an int >= 0, got -1"):
        create_model("lstm_sr", refine=-1)
    with pytest.raises(TypeError):
        create_model("lstm_sr", hiden_size=4)
