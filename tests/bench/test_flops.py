"""count_flops against hand formulas (multiply-add = 2 FLOPs), and nothing counted twice."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.flop_counter import FlopCounterMode

from lstmkit.bench.flops import attention_flops, count_flops, recurrent_flops
from lstmkit.models import create_model
from lstmkit.nn import LSTM as KitLSTM

B, T, D, H = 3, 5, 4, 6


def _rnn(x, layer_in, h, gates, layers=1, k=1):
    """Hand formula: per layer, direction and step 2 G H (D_in + H) B."""
    total = 2 * gates * h * (layer_in + h) * x
    for _ in range(layers - 1):
        total += 2 * gates * h * (k * h + h) * x
    return k * total


def test_linear_and_conv1d():
    lin = nn.Linear(D, 7)
    assert count_flops(lin, torch.randn(B, T, D)) == 2 * B * T * D * 7
    conv = nn.Sequential(nn.Conv1d(D, 8, 3, padding=1))
    assert count_flops(conv, torch.randn(B, D, T)) == 2 * B * T * 8 * D * 3


@pytest.mark.parametrize("cls,gates", [(nn.LSTM, 4), (nn.GRU, 3), (nn.RNN, 1), (KitLSTM, 4)])
def test_single_layer_recurrent(cls, gates):
    m = cls(D, H, batch_first=True)
    assert count_flops(m, torch.randn(B, T, D)) == _rnn(B * T, D, H, gates)


@pytest.mark.parametrize("cls", [nn.LSTM, KitLSTM])
def test_bidirectional_two_layer_lstm(cls):
    m = cls(D, H, num_layers=2, bidirectional=True, batch_first=True)
    want = 2 * (2 * 4 * H * (D + H) * B * T) + 2 * (2 * 4 * H * (2 * H + H) * B * T)
    assert want == _rnn(B * T, D, H, 4, layers=2, k=2)
    assert count_flops(m, torch.randn(B, T, D)) == want


def test_lstm_projection():
    m = nn.LSTM(D, H, proj_size=2)
    assert recurrent_flops(m, B * T) == (2 * 4 * H * (D + 2) + 2 * 2 * H) * B * T


@pytest.mark.parametrize("cls,gates", [(nn.LSTM, 4), (nn.GRU, 3), (nn.RNN, 1)])
def test_packed_sequences_count_valid_steps(cls, gates):
    m = cls(D, H, batch_first=True)
    lengths = torch.tensor([5, 2, 1])
    packed = pack_padded_sequence(torch.randn(B, T, D), lengths, batch_first=True, enforce_sorted=False)
    assert count_flops(m, packed) == _rnn(int(lengths.sum()), D, H, gates)


@pytest.mark.parametrize("variants", [{}, {"recurrent_dropout": 0.2}])  # fused path; loop path (visible ops)
def test_lstmkit_lstm_lengths_count_valid_steps(variants):
    m = KitLSTM(D, H, batch_first=True, **variants)
    lengths = torch.tensor([5, 2, 1])

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = m

        def forward(self, x, lengths=None):
            return self.lstm(x, lengths=lengths)[0]

    assert count_flops(Wrap(), torch.randn(B, T, D), lengths) == _rnn(8, D, H, 4)


def test_the_counter_alone_misses_or_partly_sees_recurrent_work():
    """Why the analytic hooks replace (not add to) what the counter sees: it sees nothing of a
    fused LSTM but every product of a GRU; both end at the hand formula, nothing twice."""
    x = torch.randn(B, T, D)
    seen = {}
    for cls in (nn.LSTM, nn.GRU):
        with FlopCounterMode(display=False) as counter:
            cls(D, H, batch_first=True)(x)
        seen[cls] = counter.get_total_flops()
    assert seen[nn.LSTM] < _rnn(B * T, D, H, 4)
    assert seen[nn.GRU] == _rnn(B * T, D, H, 3)  # would double without the replacement
    assert count_flops(nn.GRU(D, H, batch_first=True), x) == _rnn(B * T, D, H, 3)


def test_attention_matches_the_explicit_math_path():
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(2, 7, 8)
    with FlopCounterMode(display=False) as counter:  # need_weights=True: explicit bmm, all visible
        mha(x, x, x, need_weights=True)
    assert attention_flops(mha, x, x) == counter.get_total_flops() == 2 * 2 * (4 * 7 * 8 * 8 + 2 * 7 * 7 * 8)

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]  # the SDPA kernel the counter cannot see

    assert count_flops(SelfAttention(), x) == counter.get_total_flops()


def test_classifiers_end_to_end():
    x, lengths = torch.randn(2, 10, 3), torch.tensor([10, 6])
    m = create_model("transformer_classifier", input_size=3, num_classes=4, d_model=16, num_heads=2, num_layers=1,
                     dim_feedforward=32)
    B_, T_, d = 2, 10, 16
    want = 2 * B_ * T_ * 3 * d + attention_flops(m.encoder.layers[0].self_attn, torch.zeros(B_, T_, d),
                                                 torch.zeros(B_, T_, d)) + 2 * 2 * B_ * T_ * d * 32 + 2 * B_ * d * 4
    assert count_flops(m, x, lengths) == want  # attention over the padded length: it is computed
    m.train()
    count_flops(m, x, lengths)
    assert m.training  # mode restored
    rnn = create_model("rnn_classifier", input_size=3, num_classes=4, hidden_size=5, cell="gru", pooling="mean",
                       bidirectional=True)
    assert count_flops(rnn, x, lengths) == 2 * (2 * 3 * 5 * (3 + 5) * 16) + 2 * 2 * 10 * 4


@pytest.mark.parametrize("frozen", [False, True])
def test_transformer_inference_paths_are_counted(frozen):
    """Frozen weights make torch's fused inference paths eligible; the count must not change."""
    m = create_model("transformer_classifier", input_size=3, num_classes=4, d_model=16, num_heads=2, num_layers=2)
    m.requires_grad_(not frozen)
    x = torch.randn(2, 5, 3)
    layer = 2 * 2 * 5 * 16 * 32 * 2 + attention_flops(m.encoder.layers[0].self_attn, torch.zeros(2, 5, 16),
                                                        torch.zeros(2, 5, 16))
    assert count_flops(m, x) == 2 * 2 * 5 * 3 * 16 + 2 * layer + 2 * 2 * 16 * 4
