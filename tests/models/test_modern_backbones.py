"""The classifier and forecaster with sLSTM / mLSTM / minLSTM encoders, plain or in residual blocks."""

from __future__ import annotations

import pytest
import torch

from lstmkit.models import RNNClassifierConfig, create_model
from lstmkit.models.forecaster import ForecasterConfig, LSTMForecaster

from .test_rnn_classifier import assert_shapes_grads_and_padding_invariance

CELLS = ["slstm", "mlstm", "minlstm"]
OPTS = {"slstm": {"num_heads": 2}, "mlstm": {"num_heads": 2, "chunk_size": 4}, "minlstm": {}}


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("cell", CELLS)
def test_classifier_builds_trains_and_ignores_padding(cell, pooling, residual):
    torch.manual_seed(0)
    m = create_model("rnn_classifier", input_size=3, num_classes=4, hidden_size=8, cell=cell, pooling=pooling,
                     num_layers=2, residual=residual, cell_options=OPTS[cell]).double()
    assert_shapes_grads_and_padding_invariance(m, T=9)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(cell="mlstn"), "cell must be one of"),
        (dict(cell="lstm", residual=True), "cell_options and residual apply to cell in"),
        (dict(cell="mlstm", cell_options={"mode": "fast"}), "cell_options: mode must be one of"),
        (dict(cell="slstm", cell_options={"heads": 2}), "are not options of cell='slstm'"),
        (dict(cell="minlstm", variants={"peephole": True}), "variants apply to cell='lstm' only"),
    ],
)
def test_classifier_config_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        RNNClassifierConfig(**{"input_size": 3, "num_classes": 2, **kw})


@pytest.mark.parametrize("head", ["direct", "recursive", "seq2seq"])
@pytest.mark.parametrize("cell", CELLS)
def test_forecaster_with_modern_encoders(cell, head):
    torch.manual_seed(0)
    m = LSTMForecaster(ForecasterConfig(1, 3, 0, 1, hidden_size=8, head=head, likelihood="gaussian", cell=cell,
                                        cell_options=OPTS[cell], residual=head == "direct")).double()
    x = torch.randn(2, 12, 2, dtype=torch.float64)
    loss = m.loss(x, torch.tensor([12, 7]))
    assert torch.isfinite(loss)
    loss.backward()
    m.eval()
    with torch.no_grad():
        h, state = m.encode(x)
        st = None
        for t in range(12):  # streaming: one step at a time from the carried state
            h_t, st = m.encode(x[:, t : t + 1], state=st)
            torch.testing.assert_close(h_t[:, 0], h[:, t], rtol=0, atol=1e-10)
        for a, b in zip(st, state):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
        known = torch.randn(2, 3, 1, dtype=torch.float64)
        params = m.forecast(h[:, -1], state, x[:, -1, :1], known)
        assert params.shape == (2, 3, 1, 2) and torch.isfinite(params).all()
        paths = m.forecast(h[:, -1], state, x[:, -1, :1], known, draws=torch.rand(4, 2, 3, 1, dtype=torch.float64))
        assert paths.shape == (4, 2, 3, 1) and torch.isfinite(paths).all()


def test_forecaster_config_errors():
    with pytest.raises(ValueError, match="cell must be one of"):
        ForecasterConfig(1, 3, cell="gru")
    with pytest.raises(ValueError, match="variants apply to cell='lstm' only"):
        ForecasterConfig(1, 3, cell="mlstm", variants={"peephole": True})
