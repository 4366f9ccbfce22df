import pytest
import torch

from lstmkit.models import RNNClassifierConfig, create_model, list_models

CASES = [
    dict(cell="lstm", pooling="last"),
    dict(cell="lstm", pooling="attention", num_layers=2, dropout=0.1),
    dict(cell="lstm", pooling="mean", variants={"peephole": True, "zoneout": 0.1}),
    dict(cell="lstm", pooling="max", bidirectional=False),
    dict(cell="gru", pooling="last"),
    dict(cell="rnn", pooling="mean"),
]


@pytest.mark.parametrize("kw", CASES, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_builds_shapes_grads_and_padding_invariance(kw):
    assert_shapes_grads_and_padding_invariance(
        create_model("rnn_classifier", input_size=3, num_classes=4, hidden_size=8, **kw).double(), T=7)


def assert_shapes_grads_and_padding_invariance(m, T: int) -> None:
    """A (B=5, T, D=3) float64 batch with lengths: 4-class logits, finite, a gradient for every
    parameter, and each padded row equal to its sequence run alone (1e-10)."""
    x = torch.randn(5, T, 3, dtype=torch.float64)
    lengths = torch.tensor([T, 3, 5, 1, T])
    logits = m(x, lengths)
    assert logits.shape == (5, 4) and torch.isfinite(logits).all()
    logits.sum().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    m.eval()
    with torch.no_grad():
        padded = m(x, lengths)
        for b, n in enumerate(lengths.tolist()):  # padded == alone
            torch.testing.assert_close(padded[b], m(x[b : b + 1, :n])[0], rtol=0, atol=1e-10)


def test_overfits_one_tiny_batch():
    torch.manual_seed(0)
    m = create_model("rnn_classifier", input_size=2, num_classes=3, hidden_size=16)
    x, y = torch.randn(12, 6, 2), torch.randint(0, 3, (12,))
    lengths = torch.randint(2, 7, (12,))
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(m(x, lengths), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (m(x, lengths).argmax(1) == y).all()


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(pooling="avg"), "pooling must be one of"),
        (dict(cell="lstmm"), "cell must be one of"),
        (dict(num_classes=1), "num_classes must be an int >= 2"),
        (dict(variants={"peepole": True}), "did you mean 'peephole'"),
        (dict(cell="gru", variants={"peephole": True}), "variants apply to cell='lstm' only"),
        (dict(hidden_size=0), "hidden_size must be an int >= 1, got 0"),
    ],
)
def test_config_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        RNNClassifierConfig(**{"input_size": 3, "num_classes": 2, **kw})


def test_registry():
    assert "rnn_classifier" in list_models()
    with pytest.raises(ValueError, match=r"unknown model 'rnn_clasifier'; did you mean 'rnn_classifier'"):
        create_model("rnn_clasifier")


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_declares_the_arguments_it_takes(name):
    """What :func:`check_model_arguments` checks a config against: a key outside it makes the model's
    own constructor fail too (so the early check never refuses a model that would have built)."""
    import inspect

    from lstmkit.models.registry import _MODELS, check_model_arguments, model_arguments

    valid = model_arguments(name)
    assert valid and "self" not in valid
    check_model_arguments(name, valid)  # every declared key passes
    with pytest.raises(ValueError, match=rf"model.not_an_arg is not an argument of model '{name}'"):
        check_model_arguments(name, ["not_an_arg"])
    assert inspect.signature(_MODELS[name])  # the factory is introspectable
    with pytest.raises(TypeError):  # and the factory itself refuses the key
        create_model(name, not_an_arg=1)


def test_misspelt_model_key_suggests_the_close_one():
    from lstmkit.models.registry import check_model_arguments

    with pytest.raises(ValueError, match=r"model.hiden_size is not an argument of model 'rnn_classifier'; "
                                         r"did you mean model.hidden_size"):
        check_model_arguments("rnn_classifier", ["hiden_size"])
