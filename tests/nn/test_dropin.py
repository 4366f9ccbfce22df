"""lstmkit.nn.LSTM as a drop-in for torch.nn.LSTM: a module written for torch's class runs
unchanged with ours (flatten_parameters in forward, all_weights, _all_weights, state dicts both
ways, torch.jit.trace), and the torch bookkeeping attributes follow load_state_dict and .to()."""

import itertools
import warnings

import pytest
import torch
from torch import nn

from lstmkit.nn import LSTM

from .helpers import assert_close


class Tagger(nn.Module):
    """Code as written for torch.nn.LSTM, with the LSTM class as a parameter."""

    def __init__(self, lstm_cls, input_size=3, hidden_size=5, classes=2):
        super().__init__()
        self.rnn = lstm_cls(input_size, hidden_size, num_layers=2, bidirectional=True, batch_first=True)
        for names in self.rnn._all_weights:  # the usual forget-gate bias initialisation
            for name in filter(lambda n: "bias" in n, names):
                bias = getattr(self.rnn, name)
                n = bias.size(0)
                bias.data[n // 4 : n // 2].fill_(1.0)
        self.head = nn.Linear(2 * hidden_size, classes)

    def forward(self, x):
        self.rnn.flatten_parameters()
        out, (h, c) = self.rnn(x)
        return self.head(out) + 0.0 * c.sum()

    def weight_penalty(self):
        return sum((w**2).sum() for layer in self.rnn.all_weights for w in layer if w.dim() == 2)


def _twins():
    torch.manual_seed(0)
    theirs = Tagger(nn.LSTM).double()
    ours = Tagger(LSTM).double()
    ours.load_state_dict(theirs.state_dict())  # strict: the same keys and shapes
    return ours, theirs


def test_a_module_written_for_torch_lstm_runs_with_ours():
    ours, theirs = _twins()
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    assert_close(ours(x), theirs(x), what="output")
    assert_close(ours.weight_penalty(), theirs.weight_penalty(), what="all_weights penalty")
    back = Tagger(nn.LSTM).double()
    back.load_state_dict(ours.state_dict())  # and back into torch's
    assert_close(back(x), theirs(x), what="round trip")
    # the forget-gate initialisation through _all_weights reached ours as it reached torch's
    fresh = Tagger(LSTM)
    for name in ("bias_ih_l0", "bias_hh_l1_reverse"):
        assert torch.equal(getattr(fresh.rnn, name)[5:10], torch.ones(5))


def test_torch_bookkeeping_attributes_match():
    for num_layers, bidirectional, bias, proj_size in itertools.product([1, 2], [False, True], [True, False], [0, 2]):
        kw = {"num_layers": num_layers, "bidirectional": bidirectional, "bias": bias, "proj_size": proj_size}
        theirs, ours = nn.LSTM(3, 4, **kw), LSTM(3, 4, **kw)
        assert ours._flat_weights_names == theirs._flat_weights_names, kw
        assert ours._all_weights == theirs._all_weights, kw
        assert [[w.shape for w in layer] for layer in ours.all_weights] == \
               [[w.shape for w in layer] for layer in theirs.all_weights], kw


def test_weight_lists_follow_load_state_dict_and_to():
    m = LSTM(3, 4, num_layers=2, bidirectional=True, peephole=True)
    assert sum(map(len, m._all_weights)) == len(m._flat_weights_names) == 16  # peepholes are in neither
    m.load_state_dict({k: torch.full_like(v, 0.5) for k, v in m.state_dict().items()})
    m = m.to(torch.float64)
    params = dict(m.named_parameters())
    for names, weights in zip(m._all_weights, m.all_weights):
        for name, w in zip(names, weights):
            assert w is params[name] and w.dtype == torch.float64 and bool((w == 0.5).all())
    assert all(w is params[n] for n, w in zip(m._flat_weights_names, m._flat_weights))
    del m.weight_hh_l0  # a weight-dropping wrapper swaps a parameter for a computed tensor
    m.weight_hh_l0 = torch.zeros(16, 4, dtype=torch.float64)
    assert m._flat_weights[1] is m.weight_hh_l0 and m.all_weights[0][1] is m.weight_hh_l0


def test_flatten_parameters_is_torchs_and_a_no_op_on_cpu():
    m = LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    before = [p.data_ptr() for p in m.parameters()]
    assert m.flatten_parameters() is None
    assert [p.data_ptr() for p in m.parameters()] == before
    # torch's method reads these attributes of self: each one torch's LSTM has, ours has too
    theirs = nn.LSTM(3, 4)
    used = [name for name in nn.RNNBase.flatten_parameters.__code__.co_names if hasattr(theirs, name)]
    assert {"_flat_weights", "_flat_weights_names", "mode", "bias", "proj_size", "num_layers"} <= set(used)
    assert [name for name in used if not hasattr(m, name)] == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_flatten_parameters_on_cuda_makes_one_buffer():
    m = LSTM(3, 4, num_layers=2, bidirectional=True).cuda()
    storages = {p.untyped_storage().data_ptr() for p in m._flat_weights}
    assert len(storages) == 1  # .cuda() flattened them, as torch's LSTM does
    x = torch.randn(5, 2, 3, device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not part of single contiguous chunk of memory"
        m(x)


# torch 2.9+ deprecates TorchScript; tracing is still what code written for nn.LSTM calls.
@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.trace(_method)?` is deprecated:DeprecationWarning")
# LSTM._check_input compares the example's sizes with the module's (width == input_size, T > 0):
# checks of the input that every valid input passes, no part of the traced graph (the traced
# module is then checked against eager on a new input).
@pytest.mark.filterwarnings("ignore:Converting a tensor to a Python boolean:torch.jit.TracerWarning")
def test_trace_of_ours_equals_eager():
    ours, _ = _twins()
    ours.eval()
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    traced = torch.jit.trace(ours, x)
    new = torch.randn(4, 7, 3, dtype=torch.float64)
    with torch.no_grad():
        assert_close(traced(new), ours(new), what="traced vs eager")
