"""Forward FLOPs of one model call: torch's ``FlopCounterMode`` for matrix products and
convolutions, analytic counts for the modules whose kernels it cannot see.

A multiply-add is 2 FLOPs; element-wise work (activations, gates' non-linearities, norms,
softmax, bias additions) is not counted, as ``FlopCounterMode`` does not count it either.

What the counter misses, measured on CPU (torch 2.x), and why those modules are counted by hand:

- ``nn.LSTM`` runs one fused oneDNN kernel: the counter sees nothing. ``nn.GRU``/``nn.RNN``
  decompose into ``mm``/``addmm`` the counter does see; on a ``PackedSequence`` it sees the
  input projections only. ``lstmkit.nn.LSTM`` is invisible on its fused path and fully visible
  on its loop path (variants).
- ``nn.MultiheadAttention`` through ``scaled_dot_product_attention``: the projections are seen,
  the CPU attention kernel (scores and weighted sum) is not.

So for these modules (the outermost one where they nest) whatever the counter saw inside is
subtracted and the analytic count added instead; nothing is counted twice and the total does not
depend on which kernel ran (tests/bench/test_flops.py checks both).

Recurrent modules (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``, ``lstmkit.nn.LSTM``): per layer, direction
and *valid* step ``2 G H (D_in + R) B`` with G = 4, 3, 1 gates (LSTM, GRU, RNN), D_in the layer's
input width, R = proj_size or H (plus ``2 R H`` for an LSTM projection). With lengths -- a
``PackedSequence`` for torch's modules, the ``lengths`` argument of ``lstmkit.nn.LSTM`` -- only
valid steps count (sum of lengths instead of B T), as the packed and the fused-by-length paths
compute; lstmkit's loop path (variants) also runs masked padded steps, which are not counted.
Everything else (linears, convolutions, attention over the padded length) counts what is
computed, padded positions included.

Attention (``nn.MultiheadAttention``, E = embed_dim): ``2 B (Tq E E + Tk kdim E + Tk vdim E)``
for the projections, ``2 B Tq Tk E`` each for the scores and the weighted sum, ``2 B Tq E E``
for the output projection, whichever kernel ran (the explicit math path, SDPA, or the fused
inference path of ``nn.MultiheadAttention``). ``nn.TransformerEncoderLayer``'s own fused
inference path calls no submodule and no visible op; torch leaves it while any of its
submodules has hooks, which the attention hooks are, and :func:`count_flops` raises should it
run anyway.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence
from torch.utils.flop_counter import FlopCounterMode

from ..nn import LSTM as KitLSTM

__all__ = ["count_flops", "rnn_flops", "recurrent_flops", "attention_flops"]

_GATES = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1, KitLSTM: 4}


def _gates(module: nn.Module) -> int | None:
    for kind, gates in _GATES.items():
        if isinstance(module, kind):
            return gates
    return None


def _valid_steps(module: nn.Module, args: tuple, kwargs: dict) -> int:
    """Steps the recurrence runs over, summed over the batch: B T, or the sum of lengths."""
    x = args[0] if args else kwargs["input"]
    if isinstance(x, PackedSequence):
        return int(x.batch_sizes.sum())
    lengths = kwargs.get("lengths", args[2] if len(args) > 2 else None)
    if lengths is not None:
        return int(torch.as_tensor(lengths).sum())
    if x.dim() == 2:  # unbatched (T, D)
        return x.shape[0]
    return x.shape[0] * x.shape[1]


def rnn_flops(gates: int, input_size: int, hidden_size: int, steps: int, layers: int = 1, directions: int = 1,
              proj_size: int = 0) -> int:
    """Matrix-product FLOPs of a (stacked, bidirectional) recurrent layer's forward pass over
    ``steps`` valid steps summed over the batch: per layer, direction and step
    2·G·H·(D_l + R) (+ 2·P·H for a projection), G = 4 (LSTM), 3 (GRU), 1 (RNN), R = P or H."""
    r = proj_size or hidden_size
    total = 0
    for layer in range(layers):
        d_in = input_size if layer == 0 else directions * r
        per_step = 2 * gates * hidden_size * (d_in + r) + 2 * proj_size * hidden_size
        total += directions * per_step * steps
    return total


def recurrent_flops(module: nn.Module, steps: int) -> int:
    """Analytic forward FLOPs of a (stacked, bidirectional) LSTM/GRU/RNN over ``steps`` valid
    steps summed over the batch (B T without padding)."""
    gates = _gates(module)
    if gates is None:
        raise TypeError(f"expected nn.LSTM, nn.GRU, nn.RNN or lstmkit.nn.LSTM, got {type(module).__name__}")
    return rnn_flops(gates, module.input_size, module.hidden_size, steps, module.num_layers,
                     2 if module.bidirectional else 1, getattr(module, "proj_size", 0))


def attention_flops(module: nn.MultiheadAttention, query: Tensor, key: Tensor) -> int:
    """Analytic forward FLOPs of ``nn.MultiheadAttention`` for these query and key tensors."""
    e = module.embed_dim
    if query.dim() == 2:  # unbatched (T, E)
        batch, tq, tk = 1, query.shape[0], key.shape[0]
    elif module.batch_first:
        batch, tq, tk = query.shape[0], query.shape[1], key.shape[1]
    else:
        batch, tq, tk = query.shape[1], query.shape[0], key.shape[0]
    projections = tq * e * e + tk * module.kdim * e + tk * module.vdim * e + tq * e * e
    return 2 * batch * (projections + 2 * tq * tk * e)


class _Analytic:
    """Hooks that replace what the counter sees inside a module with the analytic count."""

    def __init__(self, counter: FlopCounterMode) -> None:
        self.counter = counter
        self.depth = 0
        self.start = 0
        self.correction = 0  # analytic - seen, summed over outermost calls
        self.attention_calls = 0

    def pre(self, module, args, kwargs):
        if self.depth == 0:
            self.start = self.counter.get_total_flops()
        self.depth += 1

    def post(self, module, args, kwargs, output):
        self.depth -= 1
        if self.depth:
            return
        seen = self.counter.get_total_flops() - self.start
        if isinstance(module, nn.MultiheadAttention):
            self.attention_calls += 1
            query = args[0] if args else kwargs["query"]
            key = args[1] if len(args) > 1 else kwargs["key"]
            analytic = attention_flops(module, query, key)
        else:
            analytic = recurrent_flops(module, _valid_steps(module, args, kwargs))
        self.correction += analytic - seen


def count_flops(model: nn.Module, x: Tensor, lengths: Tensor | None = None) -> int:
    """Forward FLOPs of ``model(x, lengths)`` (``model(x)`` when lengths is None), one call over
    the whole batch; divide by the batch size for a per-sample figure.

    The model runs once in eval mode under ``torch.no_grad`` (its mode is restored afterwards).
    Recurrent modules count valid steps only when lengths are given (see the module docstring);
    matrix products, convolutions and attention count what they compute, padding included.
    """
    counter = FlopCounterMode(display=False)
    analytic = _Analytic(counter)
    handles = []
    for module in model.modules():
        if _gates(module) is not None or isinstance(module, nn.MultiheadAttention):
            handles.append(module.register_forward_pre_hook(analytic.pre, with_kwargs=True))
            handles.append(module.register_forward_hook(analytic.post, with_kwargs=True))
    layers = sum(isinstance(m, nn.TransformerEncoderLayer) for m in model.modules())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), counter:
            model(x) if lengths is None else model(x, lengths)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if layers and analytic.attention_calls < layers:
        raise RuntimeError("a TransformerEncoderLayer ran its fused fast path, which hides its FLOPs from the "
                           "counter; disable it with torch.backends.mha.set_fastpath_enabled(False)")
    return int(counter.get_total_flops() + analytic.correction)
