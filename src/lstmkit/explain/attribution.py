"""What a prediction rests on: Integrated Gradients over the input and a deletion faithfulness check.

**Integrated Gradients** (Sundararajan, Taly & Yan 2017, through Captum's ``IntegratedGradients``):
``A_{t,d} = (x_{t,d} - x'_{t,d}) * mean_{a in (0,1]} dF(x' + a (x - x'))/dx_{t,d}`` (Gauss-Legendre,
``n_steps`` points), for a scalar ``F`` (a class probability, a forecast). Completeness:
``sum A = F(x) - F(x')`` up to the quadrature error Captum returns as the *convergence delta*. The
sample is explained alone, at its own length: padding never enters the model or the attributions.
Per-step attributions sum over features, per-feature ones over steps.

**Deletion check** (after Samek et al. 2017's region perturbation and Petsiuk et al. 2018's deletion
metric): steps are deleted -- every feature replaced by the baseline's value -- in order of decreasing
per-step attribution (the most supporting first), and ``F`` is recorded after each deletion: the
*top* curve ``F_k``, k = 0..n. The *random* curve averages ``draws`` random deletion orders. The area
under each curve (trapezoid over the deleted fraction k/n in [0, 1]) is reported; an explanation passes
when the top curve's area is below the random one's (deleting what IG ranks first hurts more). At
``k = ceil(n / 5)`` the two drops ``F_0 - F_k`` are reported too.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import Tensor

__all__ = ["integrated_gradients", "deletion_curves", "area"]

Score = Callable[[Tensor], Tensor]  # (N, T, D) -> (N,)


def integrated_gradients(score: Score, x: Tensor, baseline: Tensor, n_steps: int = 64) -> dict:
    """IG of ``score`` at ``x`` (T, D) against ``baseline`` (T, D): attributions (T, D) and the check
    numbers (``delta``: Captum's convergence delta, ``F(x)``, ``F(baseline)``)."""
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(lambda inp: score(inp))
    with torch.enable_grad():
        attr, delta = ig.attribute(x[None], baselines=baseline[None], n_steps=n_steps, method="gausslegendre",
                                   internal_batch_size=n_steps, return_convergence_delta=True)
    with torch.no_grad():
        fx, fb = score(x[None]).item(), score(baseline[None]).item()
    a = attr[0].detach()
    return {"attributions": a, "delta": float(delta.abs().max()), "f_x": fx, "f_baseline": fb,
            "sum": float(a.sum()), "n_steps": n_steps}


def area(curve: np.ndarray) -> float:
    """Trapezoid area under ``curve`` (values at k = 0..n) over the deleted fraction k/n in [0, 1]."""
    c = np.asarray(curve, dtype=np.float64)
    if len(c) < 2:
        return float(c[0]) if len(c) else 0.0
    return float(((c[1:] + c[:-1]) / 2).sum() / (len(c) - 1))


@torch.no_grad()
def _curve(score: Score, x: Tensor, baseline: Tensor, order: np.ndarray) -> np.ndarray:
    """F after deleting the first k steps of ``order``, k = 0..n, evaluated in one batch."""
    n = x.shape[0]
    batch = x[None].repeat(n + 1, 1, 1)
    for k in range(1, n + 1):
        steps = torch.as_tensor(order[:k])
        batch[k, steps] = baseline[steps]
    return score(batch).double().cpu().numpy()


def deletion_curves(score: Score, x: Tensor, baseline: Tensor, per_step: np.ndarray, draws: int = 10,
                    seed: int = 0) -> dict:
    """The deletion check above for ``x`` (T, D) with per-step attributions ``per_step`` (T,)."""
    n = x.shape[0]
    top = _curve(score, x, baseline, np.argsort(-np.asarray(per_step), kind="stable"))
    rng = np.random.default_rng(seed)
    rand = np.stack([_curve(score, x, baseline, rng.permutation(n)) for _ in range(draws)])
    k = max(1, math.ceil(n / 5))
    a_top, a_rand = area(top), float(np.mean([area(r) for r in rand]))
    return {"k_fraction": [round(i / n, 6) for i in range(n + 1)], "top": top.round(6).tolist(),
            "random_mean": rand.mean(0).round(6).tolist(), "random_std": rand.std(0).round(6).tolist(),
            "auc_top": round(a_top, 6), "auc_random": round(a_rand, 6), "draws": draws, "seed": seed,
            "k": k, "drop_top_k": round(float(top[0] - top[k]), 6),
            "drop_random_k": round(float(top[0] - rand[:, k].mean()), 6), "passed": bool(a_top < a_rand)}
