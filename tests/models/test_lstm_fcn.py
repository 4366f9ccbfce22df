import pytest
import torch

from lstmkit.models import LSTMFCNConfig, create_model


@pytest.mark.parametrize("name", ["lstm_fcn", "mlstm_fcn"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_builds_shapes_and_gradients(name, shuffle):
    m = create_model(name, input_size=3, num_classes=4, dimension_shuffle=shuffle, max_length=12,
                     filters=(8, 16, 8), lstm_dropout=0.5)
    x = torch.randn(5, 12, 3)
    lengths = None if shuffle else torch.tensor([12, 4, 9, 12, 1])
    logits = m(x, lengths)
    assert logits.shape == (5, 4) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert not [n for n, p in m.named_parameters() if p.grad is None]
    assert (name == "mlstm_fcn") == any(b.se is not None for b in m.blocks)


@pytest.mark.parametrize("name", ["lstm_fcn", "mlstm_fcn"])
def test_padded_equals_alone_in_eval(name):
    m = create_model(name, input_size=2, num_classes=3, dimension_shuffle=False, filters=(8, 16, 8)).double().eval()
    x = torch.randn(4, 10, 2, dtype=torch.float64)
    lengths = torch.tensor([10, 3, 7, 1])
    with torch.no_grad():
        padded = m(x, lengths)
        for b, n in enumerate(lengths.tolist()):
            torch.testing.assert_close(padded[b], m(x[b : b + 1, :n])[0], rtol=0, atol=1e-10)


def test_dimension_shuffle_errors():
    m = create_model("lstm_fcn", input_size=1, num_classes=2, max_length=6, filters=(4, 4, 4))
    with pytest.raises(ValueError, match="dimension_shuffle needs equal-length series"):
        m(torch.randn(2, 6, 1), torch.tensor([6, 3]))
    with pytest.raises(ValueError, match="built for max_length=6"):
        m(torch.randn(2, 7, 1))
    with pytest.raises(ValueError, match="needs max_length"):
        create_model("lstm_fcn", input_size=1, num_classes=2)
    with pytest.raises(ValueError, match="lstm_dropout must be in"):
        LSTMFCNConfig(input_size=1, num_classes=2, lstm_dropout=1.0)
    with pytest.raises(ValueError, match="filters and kernels must be three"):
        LSTMFCNConfig(input_size=1, num_classes=2, filters=(4, 4))
