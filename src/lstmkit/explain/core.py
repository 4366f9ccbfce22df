"""One explanation, whatever the task: a :class:`Subject` (the model, its inputs in the model's own
space, and the scalar each sample's prediction is explained by) -> ``explanation.json`` and PNGs.

What is written to ``out``:
- ``attributions.png``: the chosen sample's input with its per-step Integrated Gradients attribution
  behind it, the (feature x step) attribution map and per-step bars (plus attention weights);
- ``gates.png`` (models with an LSTM): input, forget and output gates and the cell state, units x steps, of the model's
  first LSTM (both directions when bidirectional), for the chosen sample;
- ``saturation.png`` (models with an LSTM): per-unit gate saturation and forget-gate horizons over the input's samples;
- ``deletion.png``: the chosen sample's deletion curves (the faithfulness check);
- ``explanation.json``: every number behind them, and a dataset-level faithfulness summary over
  ``faithfulness_samples`` samples evenly spaced over the input.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..checkpoint import atomic_write_bytes
from ..nn import LSTM
from ..nn.gates import record_gates
from ..nn.pooling import AttentionPool
from . import plots
from .attribution import deletion_curves, integrated_gradients
from .units import HIGH, LOW, unit_summary

__all__ = ["Subject", "explain", "FILES"]

log = logging.getLogger(__name__)

# gates.png and saturation.png: models with an LSTM (lstmkit.nn.LSTM or torch.nn.LSTM) only
FILES = ("explanation.json", "attributions.png", "gates.png", "saturation.png", "deletion.png")


@dataclass
class Subject:
    """What :func:`explain` needs from a task.

    ``inputs``: the samples (T_i, D) as the model receives them (normalised); ``run_model(x, lengths)``
    runs the model on a batch (N, T, D) (the gate recording watches this call); ``score_for(i)`` gives
    sample i's explained scalar as a function (N, T, D) -> (N,) (differentiable) and its description;
    ``baseline(x)`` the IG baseline for a sample (T, D), described in ``baseline_text``."""

    model: nn.Module
    inputs: list[Tensor]
    run_model: Callable[[Tensor, Tensor], object]
    score_for: Callable[[int], tuple[Callable[[Tensor], Tensor], dict]]
    baseline: Callable[[Tensor], Tensor]
    baseline_text: str
    features: list[str]
    info: dict = field(default_factory=dict)


def _attention(model: nn.Module) -> np.ndarray | None:
    pools = [m for m in model.modules() if isinstance(m, AttentionPool)]
    if not pools or pools[0].last_weights is None:
        return None
    return pools[0].last_weights[0].double().cpu().numpy()


def _batches(inputs: list[Tensor], size: int = 64):
    """Padded batches (x (N, T, D), lengths (N,)) of the inputs, grouped by length."""
    order = sorted(range(len(inputs)), key=lambda i: inputs[i].shape[0])
    for k in range(0, len(order), size):
        idx = order[k:k + size]
        lengths = torch.tensor([inputs[i].shape[0] for i in idx])
        x = inputs[idx[0]].new_zeros(len(idx), int(lengths.max()), inputs[idx[0]].shape[1])
        for j, i in enumerate(idx):
            x[j, : inputs[i].shape[0]] = inputs[i]
        yield x, lengths


def _spread(n: int, k: int) -> list[int]:
    """At most ``k`` indices evenly spaced over ``range(n)`` (all of them when ``k >= n``): an input
    file ordered by class is not summarised by its first class alone."""
    if k >= n:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, max(k, 1)).round().astype(int).tolist()))


def _layer_label(name: str, layer: int, direction: int) -> str:
    return f"{name or 'lstm'} layer {layer}" + (" backward" if direction else "")


def explain(subject: Subject, index: int, out: str | Path, *, unit_samples: int = 512, faithfulness_samples: int = 32,
            n_steps: int = 64, draws: int = 10, seed: int = 0) -> dict:
    """Explain sample ``index`` of ``subject.inputs`` and summarise the LSTM units over at most
    ``unit_samples`` samples (evenly spaced over the input); write ``FILES`` to ``out`` and return
    explanation.json's content."""
    n_inputs = len(subject.inputs)
    if not 0 <= index < n_inputs:
        raise ValueError(f"--index must be in [0, {n_inputs - 1}] (the input holds {n_inputs} samples), got {index}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = subject.model.eval()
    x = subject.inputs[index]
    n = x.shape[0]
    score, target = subject.score_for(index)
    baseline = subject.baseline(x)

    # 1. what the LSTM did on this sample (models without an LSTM get attributions only)
    has_lstm = any(isinstance(m, (LSTM, nn.LSTM)) for m in model.modules())
    panels, sample_gates, names, replay_error = [], {}, [], None
    if has_lstm:
        with record_gates(model) as rec, torch.no_grad():
            subject.run_model(x[None], torch.tensor([n]))
        names = list(rec.traces)
        first = rec.traces[names[0]]
        panels = [(_layer_label(names[0], t.layer, t.direction),
                   {"input": t.i[0].numpy(), "forget": t.f[0].numpy(), "output": t.o[0].numpy(),
                    "cell": t.c[0].numpy()}) for t in first if t.layer == 0]
        sample_gates = {label: {k: np.round(v, 5).tolist() for k, v in d.items()} for label, d in panels}
        replay_error = max(t.replay_error for t in first)
    else:
        with torch.no_grad():
            subject.run_model(x[None], torch.tensor([n]))
    attention = _attention(model)

    # 2. what the prediction rests on
    ig = integrated_gradients(score, x, baseline, n_steps)
    attr = ig["attributions"].double().cpu().numpy()
    per_step = attr.sum(1)
    check = deletion_curves(score, x, baseline, per_step, draws=draws, seed=seed)
    dataset_checks = []
    for i in _spread(n_inputs, faithfulness_samples):
        s_i, _ = subject.score_for(i)
        xi = subject.inputs[i]
        b_i = subject.baseline(xi)
        a_i = integrated_gradients(s_i, xi, b_i, n_steps)["attributions"].double().cpu().numpy().sum(1)
        c = deletion_curves(s_i, xi, b_i, a_i, draws=draws, seed=seed)
        dataset_checks.append((c["auc_top"], c["auc_random"], c["drop_top_k"], c["drop_random_k"]))
    d = np.array(dataset_checks)
    faith_all = {"samples": len(d), "passed_fraction": float((d[:, 0] < d[:, 1]).mean()),
                 "auc_top_mean": float(d[:, 0].mean()), "auc_random_mean": float(d[:, 1].mean()),
                 "drop_top_k_mean": float(d[:, 2].mean()), "drop_random_k_mean": float(d[:, 3].mean()),
                 "note": f"{len(d)} samples evenly spaced over the input's {n_inputs}, each explaining its own "
                         "predicted output"}

    # 3. per-unit summaries over the input's samples
    pool = [subject.inputs[i] for i in _spread(n_inputs, unit_samples)]
    summaries, recorded = [], {}
    if has_lstm:
        with record_gates(model) as rec_all, torch.no_grad():
            for xb, lb in _batches(pool):
                subject.run_model(xb, lb)
        recorded = rec_all.traces
    for name, traces in recorded.items():
        keys = sorted({(t.layer, t.direction) for t in traces})
        for layer, direction in keys:
            s = unit_summary([t for t in traces if (t.layer, t.direction) == (layer, direction)])
            summaries.append((_layer_label(name, layer, direction), {"module": name, **s}))

    # 4. files
    what = target.get("what", "explained output")
    plots.plot_attributions(out / "attributions.png", x.double().cpu().numpy(), attr, subject.features,
                            f"sample {index}: {what}", attention)
    files = ["explanation.json", "attributions.png", "deletion.png"]
    plots.plot_deletion(out / "deletion.png", check, what)
    if has_lstm:
        title = f"sample {index}: gates and cell state of {names[0] or 'the LSTM'}"
        plots.plot_gates(out / "gates.png", panels, title)
        plots.plot_saturation(out / "saturation.png", summaries)
        files += ["gates.png", "saturation.png"]
    result = {
        "index": index, "length": int(n), "target": target, **subject.info,
        "baseline": subject.baseline_text,
        "integrated_gradients": {"n_steps": ig["n_steps"], "method": "gausslegendre (Captum IntegratedGradients)",
                                 "f_x": ig["f_x"], "f_baseline": ig["f_baseline"], "sum": ig["sum"],
                                 "convergence_delta": ig["delta"],
                                 "per_step": per_step.round(6).tolist(),
                                 "per_feature": dict(zip(subject.features, attr.sum(0).round(6).tolist())),
                                 "step_feature": attr.round(6).tolist()},
        "attention": None if attention is None else attention.round(6).tolist(),
        "faithfulness": {**check, "dataset": faith_all},
        "gates": None if not has_lstm else {"modules": names, "sample": sample_gates, "replay_error": replay_error},
        "units": {"definitions": {"saturation": f"fraction of valid steps with the gate < {LOW} (left) or > {HIGH} "
                                                f"(right), Karpathy et al. 2015",
                                  "horizon": "1 / (1 - mean forget gate), in steps (mean geometric lifetime)",
                                  "half_life": "ln 0.5 / mean(ln f), in steps"},
                  "samples": len(pool), "layers": [{"label": label, **s} for label, s in summaries]},
        "files": files,
    }
    atomic_write_bytes(out / "explanation.json", json.dumps(result, indent=1, allow_nan=False).encode())
    log.info(f"explained sample {index}: deletion check {'passed' if check['passed'] else 'FAILED'} "
             f"(area {check['auc_top']:.3f} top-first vs {check['auc_random']:.3f} random); "
             f"over {faith_all['samples']} samples {100 * faith_all['passed_fraction']:.0f}% pass")
    return result
