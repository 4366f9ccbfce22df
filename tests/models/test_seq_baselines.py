"""The TCN and Transformer baselines: shapes, padding, gradients, overfitting, config errors, and
the parameter matching of ``lstmkit bench compare``."""

import pytest
import torch

from lstmkit.bench.compare import FAMILIES, match_width
from lstmkit.models import TCNClassifierConfig, TransformerClassifierConfig, create_model, list_models

CASES = [
    ("tcn_classifier", dict(channels=8, num_levels=3)),
    ("tcn_classifier", dict(channels=6, num_levels=2, kernel_size=2, pooling="last", weight_norm=False)),
    ("tcn_classifier", dict(channels=8, num_levels=2, pooling="attention")),
    ("transformer_classifier", dict(d_model=16, num_heads=2)),
    ("transformer_classifier", dict(d_model=12, num_heads=3, num_layers=1, positions="learned", max_length=9,
                                    dim_feedforward=20)),
]


def _ids(case):
    name, kw = case
    return name.split("_")[0] + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_shapes_grads_and_padding_invariance(case):
    name, kw = case
    m = create_model(name, input_size=3, num_classes=4, dropout=0.1, **kw).double()
    x = torch.randn(5, 7, 3, dtype=torch.float64)
    lengths = torch.tensor([7, 3, 5, 1, 7])
    logits = m(x, lengths)
    assert logits.shape == (5, 4) and torch.isfinite(logits).all()
    assert m(x).shape == (5, 4)
    logits.sum().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"parameters without gradient: {missing}"
    m.eval()
    for grad in (True, False):  # False: the Transformer's fused inference path
        with torch.set_grad_enabled(grad):
            padded = m(x, lengths)
            garbage = x.clone()
            for b, n in enumerate(lengths.tolist()):
                garbage[b, n:] = 1e3  # what sits in the padding must not matter
            torch.testing.assert_close(m(garbage, lengths), padded, rtol=0, atol=1e-10)
            for b, n in enumerate(lengths.tolist()):  # padded == alone
                torch.testing.assert_close(padded[b], m(x[b : b + 1, :n])[0], rtol=0, atol=1e-10)


def test_float32_inference_path_matches_padding():
    m = create_model("transformer_classifier", input_size=2, num_classes=3, d_model=16, num_heads=4).eval()
    x, lengths = torch.randn(4, 6, 2), torch.tensor([6, 2, 4, 1])
    with torch.no_grad():
        padded = m(x, lengths)
        for b, n in enumerate(lengths.tolist()):
            torch.testing.assert_close(padded[b], m(x[b : b + 1, :n])[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,kw", [("tcn_classifier", dict(channels=16, num_levels=2)),
                                     ("transformer_classifier", dict(d_model=16, num_heads=2, num_layers=1))])
def test_overfits_one_tiny_batch(name, kw):
    torch.manual_seed(0)
    m = create_model(name, input_size=2, num_classes=3, dropout=0.0, **kw)
    x, y = torch.randn(12, 6, 2), torch.randint(0, 3, (12,))
    lengths = torch.randint(2, 7, (12,))
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(m(x, lengths), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (m(x, lengths).argmax(1) == y).all()


def test_tcn_receptive_field_is_what_the_convolutions_see():
    m = create_model("tcn_classifier", input_size=1, num_classes=2, channels=4, num_levels=3, kernel_size=3).double()
    assert m.receptive_field == 1 + 2 * 2 * (1 + 2 + 4)
    x = torch.zeros(1, 40, 1, dtype=torch.float64, requires_grad=True)
    feats = m.blocks(x.transpose(1, 2))  # (1, C, T)
    feats[0, :, -1].sum().backward()
    seen = (x.grad[0, :, 0] != 0).nonzero().flatten()
    assert seen.max() == 39 and seen.min() >= 40 - m.receptive_field  # causal, and no further back than reported


def test_learned_positions_cover_max_length():
    m = create_model("transformer_classifier", input_size=2, num_classes=2, d_model=8, num_heads=2,
                     positions="learned", max_length=5)
    with pytest.raises(ValueError, match="max_length=5"):
        m(torch.randn(1, 6, 2))


@pytest.mark.parametrize(
    "cls,kw,match",
    [
        (TCNClassifierConfig, dict(channels=0), "channels must be an int >= 1, got 0"),
        (TCNClassifierConfig, dict(kernel_size=1), "kernel_size must be an int >= 2"),
        (TCNClassifierConfig, dict(pooling="avg"), "pooling must be one of"),
        (TCNClassifierConfig, dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
        (TCNClassifierConfig, dict(num_classes=1), "num_classes must be an int >= 2"),
        (TransformerClassifierConfig, dict(d_model=10, num_heads=4), "d_model must be a multiple of num_heads"),
        (TransformerClassifierConfig, dict(positions="rotary"), "positions must be one of"),
        (TransformerClassifierConfig, dict(dim_feedforward=0), "dim_feedforward must be an int >= 1, got 0"),
        (TransformerClassifierConfig, dict(num_layers=0), "num_layers must be an int >= 1, got 0"),
    ],
)
def test_config_errors(cls, kw, match):
    with pytest.raises(ValueError, match=match):
        cls(**{"input_size": 3, "num_classes": 2, **kw})


def test_registered():
    assert {"tcn_classifier", "transformer_classifier"} <= set(list_models())


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("target,input_size,num_classes,max_length", [(9000, 1, 2, 24), (40000, 8, 10, 8)])
def test_parameter_matching_hits_the_target(family, target, input_size, num_classes, max_length):
    spec, params = match_width(family, target, input_size, num_classes, max_length)
    assert abs(params - target) <= 0.15 * target
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    model = create_model(spec["name"], input_size=input_size, num_classes=num_classes, **kwargs)
    assert sum(p.numel() for p in model.parameters()) == params


def test_parameter_matching_refuses_an_unreachable_target():
    with pytest.raises(ValueError, match="no width within 15%"):
        match_width("transformer", 50, 1, 2, 10)
