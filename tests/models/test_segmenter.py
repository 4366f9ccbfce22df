"""ReSeg and the fully convolutional baseline: shapes, gradients, round trip, sizing, errors."""

from importlib import resources

import pytest
import torch

from lstmkit.models import create_model, list_models
from lstmkit.models.segmenter import FCNSegmenter, ReSeg, count_parameters, fcn_width_for
from lstmkit.tasks.config import load_yaml
from lstmkit.tasks.runs import load_model, save_model

SMALL = {"reseg": dict(in_channels=2, num_classes=5, hidden_sizes=[6, 5], patches=[2, 2], decoder_channels=8,
                       norm=True),
         "reseg+stem": dict(in_channels=2, num_classes=5, hidden_sizes=[6, 5], patches=[2, 2], decoder_channels=8,
                            stem_channels=3),
         "reseg+deep": dict(in_channels=2, num_classes=5, hidden_sizes=[6, 5], patches=[1, 2], decoder_channels=8,
                            stem_channels=[3, 4], norm=True),
         "fcn_segmenter": dict(in_channels=2, num_classes=5, width=4, levels=3, decoder_channels=8)}


def _make(key: str):
    """A SMALL model: the key is the registered name, with an optional +variant."""
    return create_model(key.split("+")[0], **SMALL[key])

PRESET = resources.files("lstmkit") / "configs" / "segment" / "digit-scenes.yaml"


def test_registered():
    assert {"reseg", "fcn_segmenter"} <= set(list_models())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_shape_gradients_no_nan(name):
    model = _make(name)
    x = torch.rand(3, 2, 8, 12)
    logits = model(x)
    assert logits.shape == (3, 5, 8, 12) and torch.isfinite(logits).all()
    model.loss(x, torch.randint(0, 5, (3, 8, 12))).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
    pred = model.eval().predict(x)
    assert pred.shape == (3, 8, 12) and pred.dtype == torch.int64


@pytest.mark.parametrize("name", sorted(SMALL))
def test_save_load_round_trip(name, tmp_path):
    model = _make(name).eval()
    save_model(tmp_path, model, {"name": name.split("+")[0], **SMALL[name]}, "segment")
    again, meta = load_model(tmp_path, "segment")
    x = torch.rand(2, 2, 8, 8)
    torch.testing.assert_close(again(x), model(x))
    assert meta["model"]["name"] == name.split("+")[0]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_class_weighted_loss(name):
    torch.manual_seed(0)
    model = _make(name).eval()
    x, y = torch.rand(2, 2, 8, 8), torch.randint(0, 5, (2, 8, 8))
    nll = torch.nn.functional.cross_entropy(model(x), y, reduction="none")
    w = torch.tensor([0.5, 1.0, 2.0, 3.0, 4.0])
    torch.testing.assert_close(model.loss(x, y, weight=torch.ones(5)), model.loss(x, y))
    torch.testing.assert_close(model.loss(x, y, weight=w), (w[y] * nll).sum() / w[y].sum())
    with pytest.raises(ValueError, match=r"weight must be a \(5,\) tensor of class weights, got shape \(4,\)"):
        model.loss(x, y, weight=torch.ones(4))


def test_reseg_overfits_one_batch():
    torch.manual_seed(0)
    model = create_model("reseg", **SMALL["reseg"])
    x, y = torch.rand(4, 2, 8, 8), torch.randint(0, 5, (4, 8, 8))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.loss(x, y).item()
    for _ in range(60):
        loss = model.loss(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


@pytest.mark.parametrize("name", ["reseg", "reseg+stem", "reseg+deep"])
def test_reseg_sees_the_whole_image(name):
    """A ReNet encoder gives every output pixel the whole image as context, with or without the stem."""
    model = _make(name).eval()
    x = torch.rand(1, 2, 8, 8, requires_grad=True)
    model(x)[0, :, 0, 0].sum().backward()
    assert (x.grad[0, :, 4:, 4:].abs().sum() > 0)  # the far corner influences pixel (0, 0)


def test_reseg_deep_stem_pools_between_levels_and_the_decoder_undoes_it():
    model = ReSeg(stem_channels=[3, 4, 5], hidden_sizes=[4, 4], patches=[1, 2])
    assert model.stride == 8  # two 2x2 poolings in the stem, then patches 1 and 2
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.stem) == 2
    assert model(torch.rand(2, 1, 16, 8)).shape == (2, 11, 16, 8)
    assert len([m for m in model.decoder if isinstance(m, torch.nn.ConvTranspose2d)]) == 4  # 2, 1, 2, 2 deepest first
    # one level keeps the single block (and the state-dict names of runs saved before levels existed)
    assert "stem.0.weight" in ReSeg(stem_channels=3).state_dict()


def test_reseg_passes_lstm_variants_to_every_sweep():
    model = ReSeg(hidden_sizes=[4, 4], patches=[2, 2], variants={"forget_bias": 1.0, "layer_norm": True})
    lstms = [layer.sweep1 for layer in model.encoder] + [layer.sweep2 for layer in model.encoder]
    assert all(m.variant.forget_bias == 1.0 and m.variant.layer_norm for m in lstms)
    with pytest.raises(ValueError, match="unknown LSTM variant 'forget_gate'; did you mean 'forget_bias'"):
        ReSeg(variants={"forget_gate": 1.0})


def test_fcn_width_for_matches_the_preset_within_15_percent():
    cfg = load_yaml(PRESET)
    spec = {k: v for k, v in cfg["model"].items() if k != "name"}
    target = count_parameters(ReSeg(in_channels=1, num_classes=11, **spec))
    base = {k: v for k, v in cfg["baseline"].items() if k not in ("name", "match_parameters")}
    width = fcn_width_for(target, in_channels=1, num_classes=11, **base)
    got = count_parameters(FCNSegmenter(in_channels=1, num_classes=11, width=width, **base))
    assert abs(got - target) / target < 0.15
    # the closest width: one step either way is further from the target
    for other in (width - 1, width + 1):
        assert abs(count_parameters(FCNSegmenter(in_channels=1, num_classes=11, width=other, **base)) - target) >= abs(got - target)


@pytest.mark.parametrize("name, kwargs, message", [
    ("reseg", dict(hidden_sizes=[8, 8], patches=[2]), r"patches must have 2 entries \(one per encoder layer\)"),
    ("reseg", dict(hidden_sizes=[]), "hidden_sizes must be a non-empty list of positive ints"),
    ("reseg", dict(in_channels=0), "in_channels must be an int >= 1, got 0"),
    ("reseg", dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
    ("reseg", dict(stem_channels=0), "stem_channels must be an int >= 1, got 0"),
    ("reseg", dict(stem_channels=[8, 0]), r"stem_channels\[1\] must be an int >= 1, got 0"),
    ("reseg", dict(stem_channels=[]), "stem_channels must be a non-empty list of positive ints"),
    ("fcn_segmenter", dict(width=0), "width must be an int >= 1, got 0"),
])
def test_constructor_errors(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_model(name, **kwargs)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_input_errors(name):
    model = _make(name)
    with pytest.raises(ValueError, match=r"x must be \(B, C=2, H, W\), got shape \(1, 3, 8, 8\)"):
        model(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"image size 8x6 \(HxW\) must be a multiple of 4"):
        model(torch.rand(1, 2, 8, 6))
