"""ONNX export of trained run directories: ``lstmkit export DIR --format onnx``.

``export_onnx(run_dir)`` loads a classification or forecasting run, wraps its network in a
module that traces to a graph with **dynamic batch and time axes**, exports it with torch's
TorchScript-based exporter (the torch.export-based one specialised the time axis in a probe and
stops at the models' data-dependent input checks), checks the graph against the PyTorch module on
a second batch and length, and writes ``model.onnx`` and its description ``model.onnx.json``
atomically. The description is also returned. Lengths act inside the graph through gathers and
masks, not packing (:mod:`lstmkit.export.recurrent`); pooling masks by length.

Graph inputs (B batch, T time, D features): ``x`` (B, T, D) float32 -- int64 token ids (B, T) for
a token-input classifier -- and ``lengths`` (B,) int64, the valid steps of each row in [1, T]
(pass T for full rows; lengths are always required). Forecasters add ``known`` (B, N, F) when the
model reads known future covariates. Outputs: ``logits`` (B, classes) for classifiers; for
forecasters ``point`` (B, N, C), the members' point forecasts averaged as
:class:`lstmkit.tasks.forecast.Forecaster` averages them, and ``params`` (B, M, N, C, K), each
member's distribution parameters (mean; mean and scale; or the quantiles), all on the model's
transformed scale. Sampling is not exported.

Preprocessing (``preprocessing``, ``--[no-]preprocessing``; recorded under ``"preprocessing"`` in
the description, with ``"inputs"``: ``"raw"``, ``"standardised"``, ``"token_ids"`` or
``"transformed"``):

- series classifiers: by default the graph takes **raw series**, as ``lstmkit predict`` does, and
  standardises them itself with the run's statistics (model.json ``preprocess.standardizer``):
  ``(x - mean) / std`` per feature in float64 on each row's valid steps, zero past its length
  (what lstmkit's batches hold there; the padding may hold anything, NaN included), so
  onnxruntime on raw series equals :meth:`lstmkit.tasks.classify.Classifier.logits`.
  ``preprocessing=False`` leaves it out: the graph takes standardised series (the statistics are
  in the description). A run trained without normalisation takes raw series either way.
- token classifiers: tokenising text is no tensor operation; the graph takes token ids (the
  vocabulary is in model.json). Asking for ``preprocessing=True`` raises ``ValueError``.
- forecasters: the graph takes **transformed** inputs, and asking for ``preprocessing=True``
  raises ``ValueError``. The target transform is fitted per series (a global model fits a new one
  on an unseen series' history at prediction time), its differencing drops steps from the start
  of the history and its inverse rebuilds levels from the history's last values, and the calendar
  features come from timestamps: none of this is a fixed function of the graph's tensors. The
  description's ``forecast`` section spells out the steps before and after the graph, with every
  series' statistics (``lstmkit.data.SeriesTransform`` implements them).

What exports: lstmkit's LSTM with the plain cell and torch's GRU and RNN encoders (see
:mod:`lstmkit.export.recurrent`; other LSTM variants raise ``ValueError``), every pooling,
LSTM-FCN and MLSTM-FCN (with ``dimension_shuffle`` the LSTM's input width is T, so T is fixed),
forecasters with the direct, recursive and seq2seq heads (the horizon is fixed, so their roll-outs
unroll) and every likelihood, ensembles included.
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

from .. import __version__
from ..checks import require
from ..checkpoint import META, WEIGHTS, atomic_write_bytes, load_checkpoint
from ..data.preprocess import Standardizer
from ..models.forecaster import LSTMForecaster
from ..models.lstm_fcn import LSTMFCN
from ..models.rnn_classifier import RNNClassifier
from .recurrent import ExportRecurrent, at_step, plain_copy

__all__ = ["DEFAULT_OPSET", "FORMATS", "ExportRecurrent", "export_onnx", "run_export_command"]

log = logging.getLogger(__name__)

FORMATS = ("onnx",)
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 14, 20  # 20: the newest opset torch's TorchScript-based exporter writes
_EXAMPLE_TIME, _CHECK_TIME = 6, 11  # the traced example and the second shape the graph is checked on


def _require(module: str):
    return require(module, "ONNX export needs the onnx and onnxruntime packages", pip="lstmkit[export]")


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


class _Standardized(nn.Module):
    """A classifier graph that takes raw series: ``(x - mean) / std`` per feature on each row's
    valid steps, as :class:`lstmkit.data.Standardizer` computes it (float64, then x's dtype), and
    zero past each length, as lstmkit's padded batches hold: (x (B, T, D) raw, lengths) -> logits."""

    def __init__(self, graph: nn.Module, standardizer: Standardizer) -> None:
        super().__init__()
        self.graph = graph
        self.register_buffer("mean", torch.as_tensor(standardizer.mean, dtype=torch.float64))
        self.register_buffer("std", torch.as_tensor(standardizer.std, dtype=torch.float64))

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        valid = torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)  # -> (B, T)
        z = ((x.double() - self.mean) / self.std).to(x.dtype)  # -> (B, T, D)
        z = torch.where(valid.unsqueeze(-1), z, torch.zeros_like(z))  # padding (NaN included) -> 0
        return self.graph(z, lengths)


class _ForecasterGraph(nn.Module):
    """Encode the history of every member, forecast from the last valid origin, average the point
    forecasts: (x, lengths[, known]) -> point (B, N, C), params (B, M, N, C, K)."""

    def __init__(self, members: list[LSTMForecaster]) -> None:
        super().__init__()
        for m in members:  # the recursive head continues the encoder through its own forward
            m.encoder = plain_copy(m.encoder)
        self.members = nn.ModuleList(members)
        recursive = members[0].config.head == "recursive"  # continues the encoder: needs its cell state
        self.encoders = nn.ModuleList(ExportRecurrent(m.encoder, cell_state=recursive) for m in members)

    def forward(self, x: Tensor, lengths: Tensor, known: Tensor | None = None) -> tuple[Tensor, Tensor]:
        last = lengths - 1
        z_last = at_step(x, last)[:, : self.members[0].config.num_targets]  # -> (B, C), the last transformed targets
        points, params = [], []
        for m, encoder in zip(self.members, self.encoders):
            out, state = encoder(x, lengths=lengths)  # -> (B, T, H), state at the last valid step
            p = m.forecast(at_step(out, last), state if encoder.cell_state else None, z_last, known)  # -> (B, N, C, K)
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


def _classifier_export(path: Path, preprocessing: bool | None) -> tuple[nn.Module, dict, dict, Any]:
    """(graph, description, dynamic axes, make_inputs(batch, time, generator))."""
    from ..tasks.classify import load_classifier

    clf = load_classifier(path)
    model = clf.model.float().eval()
    pre = clf.pre
    if pre.kind == "tokens" and preprocessing:
        raise ValueError("this classifier reads text, and tokenising is no part of an ONNX graph: the graph takes "
                         "token ids (model.json: preprocess.vocab); export with preprocessing left unset or False "
                         "(no --preprocessing)")
    std = pre.standardizer if pre.kind == "series" else None
    in_graph = std is not None and preprocessing is not False
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
        inputs, how = "token_ids", "tokenise with model.json's preprocess.vocab (id = position; 0 <pad>, 1 <unk>)"
        x_spec = _tensor_spec("x", "int64", ["batch", time_axis], "token ids from the run's vocabulary (model.json: "
                              "preprocess.vocab.tokens, id = position; 0 <pad>, 1 <unk>); any id past each length")
    else:
        if in_graph:
            inputs, how = "raw", "the graph standardises x per feature as (x - mean) / std on each row's valid steps"
            what = ("raw series; the graph standardises each feature as (value - mean) / std with the statistics "
                    "below on the valid steps (the padding may hold anything)")
        elif std is not None:
            inputs, how = "standardised", "standardise x per feature as (x - mean) / std before the graph"
            what = "series, standardised per feature as (value - mean) / std with the statistics below"
        else:
            inputs, how = "raw", "none: the model was trained on raw series"
            what = "series as the model was trained on them (no standardisation)"
        x_spec = _tensor_spec("x", "float32", ["batch", time_axis, pre.num_features], what,
                              standardize=None if std is None else std.to_dict())
    if in_graph:
        graph = _Standardized(graph, std)
    num_classes = len(pre.labels)
    desc = {
        "task": "classify", "model": dict(clf.spec),
        "inputs": [x_spec, _tensor_spec("lengths", "int64", ["batch"], "valid steps of each row, in [1, time]; padding "
                                        "follows them" + ("" if fixed_time is None else
                                                          f"; this model reads whole series: all {fixed_time}"))],
        "outputs": [_tensor_spec("logits", "float32", ["batch", num_classes],
                                 "class scores; softmax gives probabilities, argmax the index into classes")],
        "classes": list(pre.labels.to_dict()["classes"]),
        "preprocessing": {"inputs": inputs, "in_graph": in_graph, "standardize": None if std is None else std.to_dict(),
                          "description": how},
    }
    axes = {"x": {0: "batch"} if fixed_time is not None else {0: "batch", 1: "time"}, "lengths": {0: "batch"},
            "logits": {0: "batch"}}

    def make_inputs(batch: int, total: int, gen: torch.Generator) -> dict[str, Tensor]:
        total = fixed_time or total
        if tokens:
            x = torch.randint(1, model.config.vocab_size, (batch, total), generator=gen)
        else:
            x = torch.randn(batch, total, pre.num_features, generator=gen)
            if in_graph:  # raw series on the training data's scale
                x = (x.double() * graph.std + graph.mean).float()
        return {"x": x, "lengths": _lengths(batch, total, fixed_time is not None)}

    return graph, desc, axes, make_inputs


def _transform_description(tf) -> dict:
    return {**asdict(tf), "mean": tf.mean_.tolist(), "std": tf.std_.tolist()}


def _forecaster_export(path: Path, preprocessing: bool | None) -> tuple[nn.Module, dict, dict, Any]:
    from ..tasks.forecast import load_forecaster

    if preprocessing:
        raise ValueError("a forecaster's graph takes transformed inputs: its target transform is fitted per series "
                         "and its differencing and calendar features need the history and its timestamps, which a "
                         "graph does not have; export with preprocessing left unset or False (no --preprocessing) "
                         "and apply the steps the description's forecast section lists (lstmkit.data.SeriesTransform)")

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
            "before": "per target: log or Box-Cox power (if set), seasonal differencing, first differencing, then "
                      "(z - mean) / std; each differencing drops that many steps from the start of the history",
            "after": "invert on point (and on draws from params): z * std + mean, undo the differencing from the "
                     "history's last levels, then exp (log) or the inverse Box-Cox (power); "
                     "lstmkit.data.SeriesTransform.inverse does this",
            "transforms": {name: _transform_description(tf) for name, tf in fc.transforms.items()},
            "covariates": {"mean": fc.cov_mean.tolist(), "std": fc.cov_std.tolist()},
            "sampling": "not exported: draw from params (Gaussian mean/scale, or interpolate the quantiles) per member, "
                        "pooling the members' paths",
        },
        "preprocessing": {"inputs": "transformed", "in_graph": False, "standardize": None,
                          "description": "transform the targets and scale the covariates before the graph, and invert "
                                         "its outputs, as forecast.before and forecast.after say; the transforms are "
                                         "per series and need the history and its timestamps, so they stay outside"},
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


def export_onnx(run_dir: str | os.PathLike, output: str | os.PathLike | None = None, opset: int | None = None,
                preprocessing: bool | None = None) -> dict:
    """Export the model of a run directory to ONNX; returns the description written beside it.

    ``output`` defaults to ``run_dir/model.onnx``; the description goes to ``output + ".json"``.
    ``opset``: ONNX opset in [14, 20], default :data:`DEFAULT_OPSET`. ``preprocessing``: put the
    run's input standardisation into the graph, so it takes raw series (True), or leave it out
    (False); None, the default, puts it in where the task allows (series classifiers) -- see the
    module docstring. Raises ``ValueError`` for a directory that is not a run, a model or LSTM
    variant ONNX cannot express, a bad opset, or ``preprocessing=True`` for a forecaster or a text
    classifier; ``ImportError`` without onnx/onnxruntime.
    """
    onnx = _require("onnx")
    _require("onnxruntime")
    opset = _check_opset(opset)
    if preprocessing is not None and not isinstance(preprocessing, bool):
        raise TypeError(f"preprocessing must be True, False or None, got {preprocessing!r}")
    path, meta = _run_dir(run_dir)
    from ..tasks.registry import get_task, list_tasks

    task = get_task(meta.get("task"))
    if task.export is None:
        valid = sorted(t.name for t in list_tasks() if t.export)
        raise ValueError(f"{path / META}: task {task.name!r} cannot be exported; valid: {valid}")
    module, _, name = task.export.partition(":")
    build = getattr(importlib.import_module(module), name)
    try:
        graph, desc, axes, make_inputs = build(path, preprocessing)
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


def run_export_command(args: argparse.Namespace) -> int:
    """``lstmkit export``: writes the model and its description, prints the model's path."""
    if args.format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {args.format!r}")
    desc = export_onnx(args.run, args.output, args.opset, args.preprocessing)
    out = Path(args.output) if args.output else Path(args.run) / desc["file"]
    sys.stdout.write(f"{out}\n")  # the CLI's result on stdout (this is CLI code, hence no logging)
    return 0
