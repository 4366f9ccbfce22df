"""SLSTM and MLSTM against the reference ``xlstm`` package's pure-PyTorch functions (dev extra).

Only the package's vanilla files are loaded (by path, so its ``__init__``, which builds the CUDA
layers, never runs): ``blocks/slstm/src/vanilla`` (the sLSTM time loop and pointwise cell) and
``blocks/mlstm/backends.py`` (mLSTM's parallel and recurrent forms). Same equations, with these
differences in formulation, set aside here:

- the package adds ``eps = 1e-6`` to mLSTM's normaliser; called with ``eps=0``;
- the package's sLSTM takes m_1 = i~_1 when n = 0, ours starts from m_0 = 0; its parallel mLSTM
  has no incoming state (m_0 = -inf). h is invariant to m, so outputs agree to rounding;
- the package's recurrent weights are laid out (heads, 4*d, d) with the gates inside each head;
  ours (4, heads, d_in, d_out): converted below.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from lstmkit.nn import MLSTM, SLSTM

from .helpers import assert_close

F64 = torch.float64


def _load(name: str, relative: str):
    spec = importlib.util.find_spec("xlstm")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the xlstm package is not installed (dev extra)")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        pytest.skip(f"xlstm has no {relative} in this version")
    if path.is_dir():
        loc = importlib.util.spec_from_file_location(name, path / "__init__.py", submodule_search_locations=[str(path)])
    else:
        loc = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(loc)
    sys.modules[name] = module
    try:
        loc.loader.exec_module(module)
    except Exception as e:  # pragma: no cover - depends on the installed package
        pytest.skip(f"xlstm's {relative} cannot be imported on this machine: {e}")
    return module


def test_slstm_matches_xlstm_vanilla():
    vanilla = _load("_xlstm_slstm_vanilla", "blocks/slstm/src/vanilla")
    torch.manual_seed(0)
    T, B, D, H, NH = 6, 3, 5, 8, 2
    ours = SLSTM(D, H, num_heads=NH, dtype=F64)
    core = ours.cores[0]
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(T, B, D, dtype=F64)
    out, state = ours(x)
    # theirs: R (NH, 4*d, d) with R[k, g*d:(g+1)*d, :] = our weight_hh[g, k].T
    R = torch.cat([core.weight_hh[g].transpose(-1, -2) for g in range(4)], dim=1).detach()  # -> (NH, 4d, d)
    wx = torch.nn.functional.linear(x, core.weight_ih).detach()
    states = torch.zeros(4, B, H, dtype=F64)
    all_states, last, _ = vanilla.slstm_forward(wx, states, R, core.bias.detach(),
                                                vanilla.slstm_pointwise_function_registry["slstm"])
    assert_close(out.detach(), all_states[0, 1:], 1e-10, "h")
    assert_close(state.h[0].detach(), last[0], 1e-10, "h_T")
    # c and n are scaled by exp(-m), with m started differently: compare c/n, the unscaled ratio
    assert_close((state.c / state.n)[0].detach(), last[1] / last[2], 1e-10, "c/n")


def test_mlstm_matches_xlstm_backends():
    backends = _load("_xlstm_mlstm_backends", "blocks/mlstm/backends.py")
    torch.manual_seed(0)
    T, B, D, H, NH = 7, 2, 5, 8, 2
    d = H // NH
    ours = MLSTM(D, H, num_heads=NH, dtype=F64, mode="parallel")
    core = ours.cores[0]
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(T, B, D, dtype=F64)
    with torch.no_grad():
        q, k, v, o, i_pre, f_pre = *core.qkvo(x).chunk(4, -1), *core.gates(x).chunk(2, -1)
        heads = lambda t: t.unflatten(-1, (NH, d)).permute(1, 2, 0, 3)  # (T, B, H) -> (B, NH, T, d)  # noqa: E731
        gates = lambda t: t.permute(1, 2, 0).unsqueeze(-1)  # (T, B, NH) -> (B, NH, T, 1)  # noqa: E731
        h_par = backends.parallel_stabilized_simple(heads(q), heads(k), heads(v), gates(i_pre), gates(f_pre), eps=0.0)
        expected = torch.sigmoid(o) * h_par.permute(2, 0, 1, 3).flatten(-2)
        for mode in ("parallel", "chunkwise", "recurrent"):
            ours.mode = mode
            assert_close(ours(x)[0], expected, 1e-10, f"{mode} vs xlstm parallel_stabilized_simple")
        # their recurrent step, one step at a time, from the zero state with m = 0
        C, n, m = torch.zeros(B, NH, d, d, dtype=F64), torch.zeros(B, NH, d, 1, dtype=F64), torch.zeros(B, NH, 1, 1,
                                                                                                        dtype=F64)
        steps = []
        for t in range(T):
            h, (C, n, m) = backends.recurrent_step_stabilized_simple(
                C, n, m, heads(q)[:, :, t:t + 1].clone(), heads(k)[:, :, t:t + 1].clone(),
                heads(v)[:, :, t:t + 1].clone(), gates(i_pre)[:, :, t:t + 1], gates(f_pre)[:, :, t:t + 1], eps=0.0)
            steps.append(h.squeeze(2))
        rec = torch.sigmoid(o) * torch.stack(steps).flatten(-2)
        assert_close(rec, expected, 1e-10, "xlstm recurrent vs parallel")
        _, state = ours(x)
        # their C is k v^T (transposed to our v k^T), with the same scale exp(-m) (both start at m = 0)
        assert_close(state.C[0], C.transpose(-1, -2), 1e-10, "C_T")
        assert_close(state.m[0], m[..., 0, 0], 1e-10, "m_T")
    assert math.isfinite(float(expected.sum()))
