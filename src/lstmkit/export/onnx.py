"""ONNX export of trained run directories: ``lstmkit export DIR --format onnx``.

``export_onnx(run_dir)`` loads a classification or forecasting run, wraps its network in a
module that traces to a graph with **dynamic batch and time axes**, exports it with torch's
TorchScript-based exporter (the torch.export-based one specialised the time axis in a probe and
stops at the models' data-dependent input checks), checks
the graph against the PyTorch module on a second batch and length, and writes ``model.onnx`` and
its description ``model.onnx.json`` atomically. The description is also returned.

Variable lengths without packed sequences (packing is a long-standing PyTorch export blocker):
every recurrent layer and direction is one fused ONNX LSTM/GRU/RNN operator over the whole padded
batch, and lengths act through index gathers and masks built from ``arange`` of the runtime T:

- forward direction: padding comes after the valid steps, so the valid outputs are those of the
  sequence alone; the final state is gathered at ``length - 1``;
- backward direction: each sequence is reversed within its own length (index ``len-1-t`` for
  ``t < len``, else ``t``: the padding stays behind), run forward, and gathered back;
- outputs past each length are zeroed and fed to the next layer; pooling masks by length.

Graph inputs (B batch, T time, D features): ``x`` (B, T, D) float32 -- int64 token ids (B, T) for
a token-input classifier -- and ``lengths`` (B,) int64, the valid steps of each row in [1, T]
(pass T for full rows; lengths are always required). Forecasters add ``known`` (B, N, F) when the
model reads known future covariates. Outputs: ``logits`` (B, classes) for classifiers; for
forecasters ``point`` (B, N, C), the members' point forecasts averaged as
:class:`lstmkit.tasks.forecast.Forecaster` averages them, and ``params`` (B, M, N, C, K), each
member's distribution parameters (mean; mean and scale; or the quantiles), all on the model's
transformed scale. Sampling is not exported.

What exports: lstmkit's LSTM with the plain cell (``forget_bias`` is only an initialisation and the
dropout variants are identity at inference), torch's GRU and RNN encoders, every pooling, LSTM-FCN
and MLSTM-FCN (with ``dimension_shuffle`` the LSTM's input width is T, so T is fixed), forecasters
with the direct, recursive and seq2seq heads (the horizon is fixed, so their roll-outs unroll) and
every likelihood, ensembles included. Peephole, layer-norm and zoneout cells and projections change
the recurrence ONNX's LSTM operator computes, and raise ``ValueError``.

The recursive head continues the encoder from its state at the last valid step, and ONNX's LSTM
outputs the cell state only after the final (padded) step. The cell state at step L is recovered
in closed form from the gates: ``c_L = sum_{s<=L} (prod_{s<r<=L} f_r) i_s g_s``, the products as
exponentials of cumulative sums of ``log f`` in float64 (exact up to rounding, tested against the
recurrence).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .. import __version__
from ..checkpoint import META, WEIGHTS, atomic_write_bytes, load_checkpoint
from ..models.forecaster import LSTMForecaster
from ..models.lstm_fcn import LSTMFCN
from ..models.rnn_classifier import RNNClassifier
from ..nn import LSTM, LSTMState

__all__ = ["DEFAULT_OPSET", "FORMATS", "ExportRecurrent", "export_onnx", "add_export_parser", "run_export_command"]

log = logging.getLogger(__name__)

FORMATS = ("onnx",)
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 14, 20  # 20: the newest opset torch's TorchScript-based exporter writes
_EXAMPLE_TIME, _CHECK_TIME = 6, 11  # the traced example and the second shape the graph is checked on


def _require(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"ONNX export needs the onnx and onnxruntime packages: pip install lstmkit[export] "
                          f"({module} is missing)") from None


# ------------------------------------------------------------------------ index helpers


def _gather_time(x: Tensor, index: Tensor) -> Tensor:
    """x (B, T, F), index (B, T) -> x[b, index[b, t]] (B, T, F)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def _at(x: Tensor, step: Tensor) -> Tensor:
    """x (B, T, F), step (B,) -> x[b, step[b]] (B, F)."""
    return x.gather(1, step.view(-1, 1, 1).expand(-1, 1, x.shape[-1])).squeeze(1)


def _cell_state_at(x: Tensor, out: Tensor, last: Tensor | None, weights: list[Tensor], bias: bool) -> Tensor:
    """The LSTM cell state after step ``last`` (B,) (None: the final step) of one layer and
    direction run from a zero state: x (B, T, D) its input, out (B, T, H) its outputs -> (B, H).

    ``c_L = sum_{s<=L} exp(sum_{s<r<=L} log f_r) i_s g_s`` with the gates recomputed from x and
    ``h_{t-1}``; the exponents are differences of a float64 cumulative sum, <= 0 where used.
    """
    h_prev = torch.cat([torch.zeros_like(out[:, :1]), out[:, :-1]], dim=1)  # h_{t-1}: -> (B, T, H)
    b = weights[2] + weights[3] if bias else None
    gates = F.linear(x, weights[0], b) + F.linear(h_prev, weights[1])  # -> (B, T, 4H), gates i, f, g, o
    i, f, g, _ = gates.chunk(4, dim=-1)
    a = f.double()
    log_f = torch.clamp(a, max=0.0) - torch.log(1.0 + torch.exp(-a.abs()))  # log sigmoid(a), never -inf
    cum = log_f.cumsum(1)  # -> (B, T, H)
    if last is None:
        decay = cum[:, -1:] - cum
    else:
        end = cum.gather(1, last.view(-1, 1, 1).expand(-1, 1, cum.shape[-1]))  # -> (B, 1, H)
        steps = torch.arange(cum.shape[1], device=x.device).unsqueeze(0)
        keep = (steps <= last.unsqueeze(1)).unsqueeze(-1)  # -> (B, T, 1)
        decay = (end - cum).masked_fill(~keep, float("-inf"))  # steps after L contribute exp(-inf) = 0
    c = (torch.exp(decay) * (torch.sigmoid(i) * torch.tanh(g)).double()).sum(1)  # -> (B, H)
    return c.to(out.dtype)


def _check_plain_lstm(rnn: LSTM) -> None:
    v = rnn.variant
    used = [name for name, on in (("peephole", v.peephole), ("layer_norm", v.layer_norm),
                                  ("zoneout", any(z > 0 for z in v.zoneout_rates))) if on]
    if rnn.proj_size:
        used.append(f"proj_size={rnn.proj_size}")
    if used:
        raise ValueError(f"ONNX export supports the plain LSTM cell (ONNX's LSTM operator), but this model's LSTM uses "
                         f"{', '.join(used)}, which change the recurrence; retrain without it to export "
                         "(forget_bias, recurrent_dropout and input_dropout export fine: an initialisation, and "
                         "identity at inference)")


def _plain_copy(rnn: LSTM) -> LSTM:
    """``rnn`` without its inference-neutral variants (the dropout variants are identity in eval mode,
    forget_bias only an initialisation), so its forward runs torch's fused kernel, which exports."""
    _check_plain_lstm(rnn)
    w = rnn.weight_ih_l0
    plain = LSTM(rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.bias, rnn.batch_first, rnn.dropout,
                 rnn.bidirectional, rnn.proj_size, device=w.device, dtype=w.dtype)
    plain.load_state_dict(rnn.state_dict())
    return plain.eval()


# ------------------------------------------------------------------------ the recurrent encoder


class ExportRecurrent(nn.Module):
    """An encoder (lstmkit ``LSTM``, ``torch.nn.LSTM/GRU/RNN``) in a form that exports to ONNX with
    dynamic batch and time axes: one fused operator per layer and direction, lengths through index
    gathers and masks (see the module docstring). It reads the wrapped module's parameters, so it
    computes what the module computes in eval mode.

    ``forward(x, hx=None, lengths=None)``: x (B, T, D) batch first, lengths (B,) int64 or None (all
    T); the initial state is zero (``hx`` must be None). Returns output (B, T, K*H), zero past each
    length, and ``LSTMState(h_n, c_n)`` at each row's last valid step, (L*K, B, H) each; ``c_n`` is
    None unless ``cell_state=True`` (LSTM only: it costs a closed-form pass over the gates).
    """

    def __init__(self, rnn: nn.Module, cell_state: bool = False) -> None:
        super().__init__()
        if isinstance(rnn, LSTM):
            _check_plain_lstm(rnn)
            self.op = "lstm"
        elif isinstance(rnn, nn.LSTM):
            if rnn.proj_size:
                raise ValueError(f"ONNX's LSTM operator has no projection; this LSTM has proj_size={rnn.proj_size}")
            self.op = "lstm"
        elif isinstance(rnn, nn.GRU):
            self.op = "gru"
        elif isinstance(rnn, nn.RNN):
            self.op = "rnn_relu" if rnn.nonlinearity == "relu" else "rnn_tanh"
        else:
            raise TypeError(f"rnn must be an lstmkit LSTM or a torch LSTM, GRU or RNN, got {type(rnn).__name__}")
        self.rnn = rnn
        self.num_layers, self.hidden_size, self.bias = rnn.num_layers, rnn.hidden_size, bool(rnn.bias)
        self.num_directions = 2 if rnn.bidirectional else 1
        self.cell_state = cell_state
        if cell_state and self.op != "lstm":
            raise ValueError(f"cell_state=True needs an LSTM, got {type(rnn).__name__}")

    def _weights(self, layer: int, direction: int) -> list[Tensor]:
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
        return [getattr(self.rnn, name + sfx) for name in names]

    def _run(self, x: Tensor, weights: list[Tensor]) -> Tensor:
        """One layer and direction over the whole batch from a zero state: (B, T, D) -> (B, T, H)."""
        h0 = x.new_zeros(1, x.shape[0], self.hidden_size)  # from the runtime batch size
        args = (weights, self.bias, 1, 0.0, False, False, True)  # 1 layer, no dropout, eval, one way, batch first
        if self.op == "lstm":
            return torch.lstm(x, (h0, h0), *args)[0]
        return getattr(torch, self.op)(x, h0, *args)[0]

    def forward(self, x: Tensor, hx: Any = None, lengths: Tensor | None = None) -> tuple[Tensor, LSTMState]:
        if hx is not None:
            raise ValueError("ExportRecurrent starts from a zero state; hx must be None")
        valid = reverse = last = None
        if lengths is not None:
            steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # -> (1, T), the runtime T
            n = lengths.unsqueeze(1)
            valid = steps < n  # -> (B, T)
            reverse = torch.where(valid, n - 1 - steps, steps)  # within each length; padding stays behind
            last = lengths - 1
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(self.num_directions):
                w = self._weights(layer, direction)
                inp = x if not direction else x.flip(1) if reverse is None else _gather_time(x, reverse)
                out = self._run(inp, w)  # -> (B, T, H)
                h_n.append(out[:, -1] if last is None else _at(out, last))
                if self.cell_state:
                    c_n.append(_cell_state_at(inp, out, last, w, self.bias))
                if direction:
                    out = out.flip(1) if reverse is None else _gather_time(out, reverse)
                outs.append(out)
            x = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # -> (B, T, K*H)
            if valid is not None:
                x = x * valid.unsqueeze(-1).to(x.dtype)  # zero past each length
        return x, LSTMState(torch.stack(h_n), torch.stack(c_n) if self.cell_state else None)


# ------------------------------------------------------------------------ the exported graphs


class _ClassifierGraph(nn.Module):
    """RNNClassifier.forward with the export encoder: (x, lengths) -> logits (B, classes)."""

    def __init__(self, model: RNNClassifier) -> None:
        super().__init__()
        self.model = model
        self.encoder = ExportRecurrent(model.encoder)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        m = self.model
        if m.embed is not None:
            x = m.embed(x)  # (B, T) ids -> (B, T, D)
        feats, _ = self.encoder(x, lengths=lengths)  # -> (B, T, K*H)
        return m.head(m.drop(m.pool(feats, lengths)))  # -> (B, C)


class _ForecasterGraph(nn.Module):
    """Encode the history of every member, forecast from the last valid origin, average the point
    forecasts: (x, lengths[, known]) -> point (B, N, C), params (B, M, N, C, K)."""

    def __init__(self, members: list[LSTMForecaster]) -> None:
        super().__init__()
        for m in members:  # the recursive head continues the encoder through its own forward
            m.encoder = _plain_copy(m.encoder)
        self.members = nn.ModuleList(members)
        recursive = members[0].config.head == "recursive"  # continues the encoder: needs its cell state
        self.encoders = nn.ModuleList(ExportRecurrent(m.encoder, cell_state=recursive) for m in members)

    def forward(self, x: Tensor, lengths: Tensor, known: Tensor | None = None) -> tuple[Tensor, Tensor]:
        last = lengths - 1
        z_last = _at(x, last)[:, : self.members[0].config.num_targets]  # -> (B, C), the last transformed targets
        points, params = [], []
        for m, encoder in zip(self.members, self.encoders):
            out, state = encoder(x, lengths=lengths)  # -> (B, T, H), state at the last valid step
            p = m.forecast(_at(out, last), state if encoder.cell_state else None, z_last, known)  # -> (B, N, C, K)
            params.append(p)
            points.append(m.point(p))
        return torch.stack(points).mean(0), torch.stack(params, dim=1)


# ------------------------------------------------------------------------ export


def _run_dir(run_dir: str | os.PathLike) -> tuple[Path, dict]:
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"run directory {path} does not exist")
    if not (path / META).is_file() or not (path / WEIGHTS).is_file():
        raise ValueError(f"{path} is not an lstmkit run directory: it has no {META} and {WEIGHTS} "
                         "(written by `lstmkit train`)")
    _, meta = load_checkpoint(path)
    return path, meta


def _check_opset(opset: int | None) -> int:
    if opset is None:
        return DEFAULT_OPSET
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset must be an int in [{MIN_OPSET}, {MAX_OPSET}], got {opset!r}")
    return opset


def _lengths(batch: int, total: int, fixed: bool) -> Tensor:
    """Lengths for B rows of T steps: from T down to 1 (all T when the model reads whole series)."""
    if fixed:
        return torch.full((batch,), total, dtype=torch.int64)
    return torch.linspace(total, 1, batch).round().to(torch.int64)


def _tensor_spec(name: str, dtype: str, shape: list, description: str, **extra) -> dict:
    return {"name": name, "dtype": dtype, "shape": shape, "description": description, **extra}


def _classifier_export(path: Path) -> tuple[nn.Module, dict, dict, Any]:
    """(graph, description, dynamic axes, make_inputs(batch, time, generator))."""
    from ..tasks.classify import load_classifier

    clf = load_classifier(path)
    model = clf.model.float().eval()
    pre = clf.pre
    fixed_time = None
    if isinstance(model, RNNClassifier):
        graph = _ClassifierGraph(model)
        tokens = model.embed is not None
    elif isinstance(model, LSTMFCN):
        model.lstm = ExportRecurrent(model.lstm)  # the model's own forward, with the export encoder
        graph, tokens = model, False
        fixed_time = model.max_length if model.config.dimension_shuffle else None
    else:
        raise ValueError(f"ONNX export supports rnn_classifier, lstm_fcn and mlstm_fcn classifiers and "
                         f"lstm_forecaster; this run's model is {clf.spec.get('name')!r}")
    time_axis = "time" if fixed_time is None else fixed_time
    if tokens:
        x_spec = _tensor_spec("x", "int64", ["batch", time_axis], "token ids from the run's vocabulary (model.json: "
                              "preprocess.vocab.tokens, id = position; 0 <pad>, 1 <unk>); any id past each length")
    else:
        std = pre.standardizer
        x_spec = _tensor_spec("x", "float32", ["batch", time_axis, pre.num_features],
                              "series, standardised per feature as (value - mean) / std with the statistics below"
                              if std is not None else "series as the model was trained on them (no standardisation)",
                              standardize=None if std is None else std.to_dict())
    num_classes = len(pre.labels)
    desc = {
        "task": "classify", "model": dict(clf.spec),
        "inputs": [x_spec, _tensor_spec("lengths", "int64", ["batch"], "valid steps of each row, in [1, time]; padding "
                                        "follows them" + ("" if fixed_time is None else
                                                          f"; this model reads whole series: all {fixed_time}"))],
        "outputs": [_tensor_spec("logits", "float32", ["batch", num_classes],
                                 "class scores; softmax gives probabilities, argmax the index into classes")],
        "classes": list(pre.labels.to_dict()["classes"]),
    }
    axes = {"x": {0: "batch"} if fixed_time is not None else {0: "batch", 1: "time"}, "lengths": {0: "batch"},
            "logits": {0: "batch"}}

    def make_inputs(batch: int, total: int, gen: torch.Generator) -> dict[str, Tensor]:
        total = fixed_time or total
        if tokens:
            x = torch.randint(1, model.config.vocab_size, (batch, total), generator=gen)
        else:
            x = torch.randn(batch, total, pre.num_features, generator=gen)
        return {"x": x, "lengths": _lengths(batch, total, fixed_time is not None)}

    return graph, desc, axes, make_inputs


def _transform_description(tf) -> dict:
    return {**asdict(tf), "mean": tf.mean_.tolist(), "std": tf.std_.tolist()}


def _forecaster_export(path: Path) -> tuple[nn.Module, dict, dict, Any]:
    from ..tasks.forecast import load_forecaster

    fc = load_forecaster(path)
    members = [m.float().eval() for m in fc.models]
    c = members[0].config
    graph = _ForecasterGraph(members)
    C, K, N, M = c.num_targets, c.outputs, c.horizon, len(members)
    calendar = [f"{name}_{part}" for name in fc.calendar for part in ("sin", "cos")]
    columns = [*fc.targets, *fc.past, *fc.future, *calendar]
    parameters = {"mse": ["mean"], "gaussian": ["mean", "scale"]}.get(c.likelihood, [f"q{q:g}" for q in c.quantiles])
    inputs = [
        _tensor_spec("x", "float32", ["batch", "time", c.num_targets + c.past_covariates + c.future_covariates],
                     "the encoder's input rows [z, past covariates, known covariates]: z the targets after the "
                     "transform (forecast.transforms), covariates standardised with forecast.covariates, then the "
                     "calendar features (sin/cos)", columns=columns),
        _tensor_spec("lengths", "int64", ["batch"], "valid steps of each row, in [1, time]; the forecast starts after "
                     "step lengths-1; padding follows the valid steps"),
    ]
    if c.future_covariates:
        inputs.append(_tensor_spec("known", "float32", ["batch", N, c.future_covariates],
                                   "known covariates of the N forecast steps, scaled as in x",
                                   columns=[*fc.future, *calendar]))
    desc = {
        "task": "forecast", "model": dict(fc.spec),
        "inputs": inputs,
        "outputs": [
            _tensor_spec("point", "float32", ["batch", N, C], "point forecasts (means, or medians for quantile "
                         "models) of the N steps after each row's last valid step, averaged over the members, on the "
                         "transformed scale"),
            _tensor_spec("params", "float32", ["batch", M, N, C, K], "each member's distribution parameters, on the "
                         "transformed scale", parameters=parameters),
        ],
        "forecast": {
            "horizon": N, "head": c.head, "likelihood": c.likelihood,
            "quantiles": list(c.quantiles) if c.likelihood == "quantile" else None, "members": M,
            "targets": list(fc.targets), "past_covariates": list(fc.past), "future_covariates": list(fc.future),
            "calendar": list(fc.calendar), "step": fc.step, "space": "transformed",
            "before": "per target: log (if set), seasonal differencing, first differencing, then (z - mean) / std; "
                      "each differencing drops that many steps from the start of the history",
            "after": "invert on point (and on draws from params): z * std + mean, undo the differencing from the "
                     "history's last levels, then exp (if log); lstmkit.data.SeriesTransform.inverse does this",
            "transforms": {name: _transform_description(tf) for name, tf in fc.transforms.items()},
            "covariates": {"mean": fc.cov_mean.tolist(), "std": fc.cov_std.tolist()},
            "sampling": "not exported: draw from params (Gaussian mean/scale, or interpolate the quantiles) per member, "
                        "pooling the members' paths",
        },
    }
    axes = {"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "point": {0: "batch"}, "params": {0: "batch"}}
    if c.future_covariates:
        axes["known"] = {0: "batch"}

    def make_inputs(batch: int, total: int, gen: torch.Generator) -> dict[str, Tensor]:
        out = {"x": torch.randn(batch, total, members[0].input_size, generator=gen),
               "lengths": _lengths(batch, total, False)}
        if c.future_covariates:
            out["known"] = torch.randn(batch, N, c.future_covariates, generator=gen)
        return out

    return graph, desc, axes, make_inputs


def _trace(graph: nn.Module, inputs: dict[str, Tensor], output_names: list[str], axes: dict, opset: int) -> bytes:
    import io

    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # Chosen on purpose: the torch.export-based exporter cannot keep these graphs' time axis dynamic.
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export", DeprecationWarning)
        # torch's exporter calls its own deprecated helpers.
        warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning)
        # Emitted for every RNN whatever its initial state; ours is built from the runtime batch size
        # (and export_onnx checks the graph on another batch size).
        warnings.filterwarnings("ignore", "Exporting a model to ONNX with a batch_size other than 1", UserWarning)
        # Input validation in model and torch code (lengths in range, shape checks) reads traced sizes
        # as Python numbers: such checks hold for the example and are no part of the graph. A value
        # that did reach the graph would show up in export_onnx's check on another batch and length.
        warnings.filterwarnings("ignore", "Converting a tensor to a Python", torch.jit.TracerWarning)
        # length_mask passes lengths through torch.as_tensor, which returns a tensor argument itself
        # (traced, not a constant); the check on other lengths would catch a baked one.
        warnings.filterwarnings("ignore", "torch.as_tensor results are registered as constants", torch.jit.TracerWarning)
        # LastPool's output[rows, last]: its indices are never negative (rows and length - 1 >= 0).
        warnings.filterwarnings("ignore", "Exporting aten::index operator of advanced indexing", UserWarning)
        # F.pad (LSTM-FCN's 'same' padding) exports with a reversed slice that constant folding skips.
        warnings.filterwarnings("ignore", "Constant folding - Only steps=1 can be constant folded", UserWarning)
        torch.onnx.export(graph, tuple(inputs.values()), buf, input_names=list(inputs), output_names=output_names,
                          dynamic_axes={k: v for k, v in axes.items() if k in inputs or k in output_names},
                          opset_version=opset, dynamo=False)
    return buf.getvalue()


def _declare_shapes(onnx, blob: bytes, desc: dict) -> bytes:
    """Write the description's axis names and fixed sizes onto the graph's inputs and outputs (the
    exporter's shape inference leaves some fixed output sizes symbolic), then validate the model."""
    model = onnx.load_from_string(blob)
    shapes = {t["name"]: t["shape"] for t in desc["inputs"] + desc["outputs"]}
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if len(dims) != len(shapes[value.name]):
            raise RuntimeError(f"graph {value.name!r} has {len(dims)} axes, expected {shapes[value.name]}")
        for dim, size in zip(dims, shapes[value.name]):
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _check(blob: bytes, graph: nn.Module, inputs: dict[str, Tensor], output_names: list[str]) -> float:
    """Max |onnxruntime - PyTorch| over the outputs; raises if the graph does not reproduce the module."""
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = graph(*inputs.values())
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = session.run(output_names, {k: v.numpy() for k, v in inputs.items()})
    diff = max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref))
    scale = max(float(r.abs().max()) for r in ref)
    if not diff <= 1e-4 * (1.0 + scale):
        raise RuntimeError(f"the exported graph differs from the PyTorch model by {diff:.3g} on a batch of "
                           f"{len(inputs['lengths'])} rows of {inputs['x'].shape[1]} steps; please report this")
    return diff


def export_onnx(run_dir: str | os.PathLike, output: str | os.PathLike | None = None, opset: int | None = None) -> dict:
    """Export the model of a run directory to ONNX; returns the description written beside it.

    ``output`` defaults to ``run_dir/model.onnx``; the description goes to ``output + ".json"``.
    ``opset``: ONNX opset in [14, 20], default :data:`DEFAULT_OPSET`. Raises ``ValueError`` for a
    directory that is not a run, a model or LSTM variant ONNX cannot express, or a bad opset;
    ``ImportError`` without onnx/onnxruntime.
    """
    onnx = _require("onnx")
    _require("onnxruntime")
    opset = _check_opset(opset)
    path, meta = _run_dir(run_dir)
    task = meta.get("task")
    builders = {"classify": _classifier_export, "forecast": _forecaster_export}
    if task not in builders:
        raise ValueError(f"{path / META}: task {task!r} cannot be exported; valid: {sorted(builders)}")
    try:
        graph, desc, axes, make_inputs = builders[task](path)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    graph.eval()
    output = Path(output) if output is not None else path / "model.onnx"
    output_names = [o["name"] for o in desc["outputs"]]
    gen = torch.Generator().manual_seed(0)
    blob = _trace(graph, make_inputs(2, _EXAMPLE_TIME, gen), output_names, axes, opset)
    blob = _declare_shapes(onnx, blob, desc)
    check_inputs = make_inputs(3, _CHECK_TIME, gen)
    diff = _check(blob, graph, check_inputs, output_names)
    desc = {"format": "onnx", "file": output.name, "opset": opset, **desc,
            "check": {"batch": 3, "time": int(check_inputs["x"].shape[1]), "max_abs_diff": diff},
            "lstmkit_version": __version__, "torch_version": torch.__version__}
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(output, blob)
    atomic_write_bytes(f"{output}.json", json.dumps(desc, indent=1, allow_nan=False).encode())
    log.info(f"exported {path} to {output} (opset {opset}; onnxruntime matches PyTorch to {diff:.1e})")
    return desc


# ------------------------------------------------------------------------ command line


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``export RUN [--format onnx] [--output FILE] [--opset N]`` to a CLI's subparsers."""
    p = subparsers.add_parser("export", help="export a run's model to ONNX (dynamic batch and time axes)")
    p.add_argument("run", help="run directory (classification or forecasting)")
    p.add_argument("--format", default="onnx", choices=FORMATS)
    p.add_argument("--output", help="model file (default: RUN/model.onnx); its description is written to FILE.json")
    p.add_argument("--opset", type=int, help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    p.set_defaults(func=run_export_command)
    return p


def run_export_command(args: argparse.Namespace) -> int:
    """``lstmkit export``: writes the model and its description, prints the model's path."""
    if args.format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {args.format!r}")
    desc = export_onnx(args.run, args.output, args.opset)
    out = Path(args.output) if args.output else Path(args.run) / desc["file"]
    sys.stdout.write(f"{out}\n")  # the CLI's result on stdout (this is CLI code, hence no logging)
    return 0
