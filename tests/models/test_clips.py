import pytest
import torch
from torch import nn

from lstmkit.checkpoint import load_checkpoint, save_checkpoint
from lstmkit.models import create_model, list_models
from lstmkit.models.clips import ClipLSTM, FrameClassifier, create_encoder, list_encoders

SMALL = {"encoder_kwargs": {"channels": [4, 8], "features": 12}}
MODELS = {"cnn_lstm": {**SMALL, "hidden_size": 10}, "slice_lstm": {**SMALL, "hidden_size": 10},
          "frame_cnn": SMALL, "slice_cnn": SMALL}


def _clips(b=3, t=5, c=1, s=12):
    return torch.rand(b, t, c, s, s), torch.tensor([5, 3, 2][:b])


def test_all_registered():
    assert set(MODELS) <= set(list_models())
    assert "cnn" in list_encoders()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_builds_shapes_gradients_round_trip(name, tmp_path):
    spec = {"num_classes": 4, "in_channels": 1, **MODELS[name]}
    model = create_model(name, **spec)
    x, lengths = _clips()
    logits = model(x, lengths)
    assert logits.shape == (3, 4) and torch.isfinite(logits).all()
    model.loss(x, lengths, torch.tensor([0, 1, 3])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    model.eval()
    save_checkpoint(tmp_path, model.state_dict(), {"model": spec})
    state, meta = load_checkpoint(tmp_path)
    again = create_model(name, **meta["model"])
    again.load_state_dict(state)
    again.eval()
    torch.testing.assert_close(again(x, lengths), model(x, lengths))


def test_slice_lstm_defaults_to_a_bidirectional_lstm():
    assert create_model("slice_lstm", num_classes=3, **SMALL).lstm.bidirectional
    assert not create_model("cnn_lstm", num_classes=3, **SMALL).lstm.bidirectional


@pytest.mark.parametrize("name, extra", [("cnn_lstm", {}), ("slice_lstm", {}), ("cnn_lstm", {"frame_differences": True})])
def test_padding_changes_nothing(name, extra):
    model = create_model(name, num_classes=4, **MODELS[name], **extra).eval()
    x, lengths = _clips()
    padded = x.clone()
    padded[1, 3:] = 7.0  # garbage past the length is never read
    padded[2, 2:] = -3.0
    torch.testing.assert_close(model(padded, lengths), model(x, lengths))
    alone = model(x[2:3, :2], lengths[2:3])  # the unpadded clip on its own
    torch.testing.assert_close(model(x, lengths)[2:3], alone)


def test_frame_baseline_sees_only_the_middle_valid_frame():
    model = create_model("frame_cnn", num_classes=4, **SMALL).eval()
    x, lengths = _clips()
    other = torch.rand_like(x)
    middle = lengths // 2
    for i in range(3):
        other[i, middle[i]] = x[i, middle[i]]
    torch.testing.assert_close(model(other, lengths), model(x, lengths))
    assert not torch.allclose(model(x, None), model(x, lengths))  # without lengths: frame T // 2 for all


def test_encoder_can_be_passed_in():
    class Mean(nn.Module):
        out_features = 3

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(1, 3)

        def forward_features(self, frames):
            return self.lin(frames.mean((2, 3)))

    model = create_model("cnn_lstm", num_classes=2, encoder=Mean(), hidden_size=4)
    assert isinstance(model, ClipLSTM) and isinstance(model.encoder, Mean)
    assert model(*_clips()).shape == (3, 2)
    assert isinstance(create_model("frame_cnn", num_classes=2, encoder=Mean()), FrameClassifier)
    assert create_encoder("cnn", 3, channels=[4], features=5).forward_features(torch.rand(2, 3, 9, 9)).shape == (2, 5)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"encoder": "resnet"}, ValueError, "unknown frame encoder 'resnet'"),
    ({"encoder": nn.Linear(2, 2)}, TypeError, "encoder must be a registered name"),
    ({"num_classes": 1}, ValueError, "num_classes must be an int >= 2"),
    ({"pooling": "median"}, ValueError, "pooling must be one of"),
    ({"encoder_kwargs": {"channels": []}}, ValueError, "channels must be a non-empty list"),
    ({"encoder_kwargs": {"depth": 3}}, TypeError, "encoder_kwargs {.depth.: 3} do not fit frame encoder .cnn."),
])
def test_build_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        create_model("cnn_lstm", **{"num_classes": 3, **kwargs})


@pytest.mark.parametrize("name", ["cnn_lstm", "frame_cnn"])
def test_input_errors(name):
    model = create_model(name, num_classes=3, **SMALL)
    with pytest.raises(ValueError, match=r"x must be clips \(B, T, 1, H, W\), got shape \(3, 5, 12, 12\)"):
        model(torch.rand(3, 5, 12, 12))
    with pytest.raises(ValueError, match=r"x must be clips \(B, T, 1, H, W\), got shape \(3, 5, 2, 12, 12\)"):
        model(torch.rand(3, 5, 2, 12, 12))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T=5\]"):
        model(torch.rand(3, 5, 1, 12, 12), torch.tensor([6, 1, 1]))


def test_frame_differences_feed_the_encoder_frame_and_motion():
    model = create_model("cnn_lstm", num_classes=3, frame_differences=True, **MODELS["cnn_lstm"])
    assert model.encoder.conv[0].in_channels == 2
    seen = []
    model.encoder.conv.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    x = torch.rand(2, 4, 1, 12, 12)
    model(x, torch.tensor([4, 2])).sum().backward()
    frames = seen[0]  # the valid frames: clip 0's four, then clip 1's two
    torch.testing.assert_close(frames[:, 0], torch.cat([x[0, :, 0], x[1, :2, 0]]))
    torch.testing.assert_close(frames[1:4, 1], x[0, 1:, 0] - x[0, :-1, 0])
    assert (frames[0, 1] == 0).all() and (frames[4, 1] == 0).all()  # no difference before a clip's first frame
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="frame_differences must be true or false"):
        create_model("cnn_lstm", num_classes=3, frame_differences="yes")
