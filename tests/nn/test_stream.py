"""LSTMStream: every backend equals the batch path, state in and out, input checks, and the
compiled kernel's build, cache and fallback."""

import ctypes
import logging
import os
import shutil
import stat

import numpy as np
import pytest
import torch
from torch import nn

from lstmkit.nn import LSTM, KernelUnavailable, LSTMStream
from lstmkit.nn import _stream_kernel as kernel_mod
from lstmkit.nn import stream as stream_mod

BACKENDS = ["c", "numpy", "torch"]
# float32: each step differs from torch's by rounding (summation order, exp/tanh to an ulp);
# observed ~1e-7 on outputs in (-1, 1), asserted at 1e-6 times the values' scale.
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
HAVE_CC = kernel_mod.compiler() is not None


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("lstmkit_cache")


@pytest.fixture(autouse=True)
def _cache(cache_dir, monkeypatch):
    """Every test builds into (or reuses) a temporary cache, never the user's."""
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(cache_dir))
    monkeypatch.delenv("LSTMKIT_CC", raising=False)


def _skip_without_cc(backend):
    if backend == "c" and not HAVE_CC:
        pytest.skip("no C compiler on this machine")


def _close(a, b, dtype, what=""):
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    scale = max(1.0, b.abs().max().item())
    err = (a - b).abs().max().item()
    assert err <= TOL[dtype] * scale, f"{what}: max error {err:.3e} > {TOL[dtype] * scale:.1e}"


def _model(dtype, layers=1, **kw):
    return LSTM(5, 7, layers, dtype=dtype, **kw).eval()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("batch", [1, 3])
def test_steps_equal_the_batch_path(backend, dtype, layers, batch):
    _skip_without_cc(backend)
    m = _model(dtype, layers)
    x = torch.randn(20, batch, 5, dtype=dtype)
    with torch.no_grad():
        ref, (h, c) = m(x)
    s = LSTMStream(m, batch, backend=backend)
    assert s.backend == backend
    out = torch.stack([torch.as_tensor(s.step(xt.numpy())) for xt in x])
    _close(out, ref, dtype, "outputs")
    _close(s.state.h, h, dtype, "h_n")
    _close(s.state.c, c, dtype, "c_n")
    s.reset()
    _close(s.run(x), ref, dtype, "run")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_projection(backend, dtype):
    _skip_without_cc(backend)
    m = LSTM(5, 9, 2, proj_size=4, dtype=dtype).eval()
    x = torch.randn(15, 2, 5, dtype=dtype)
    with torch.no_grad():
        ref, (h, c) = m(x)
    s = LSTMStream(m, 2, backend=backend)
    _close(s.run(x), ref, dtype, "outputs")
    assert s.state.h.shape == (2, 2, 4) and s.state.c.shape == (2, 2, 9)
    _close(s.state.h, h, dtype, "h_n")
    _close(s.state.c, c, dtype, "c_n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_continues_from_a_given_state_and_resets(backend):
    _skip_without_cc(backend)
    dtype = torch.float64
    m = _model(dtype, 2)
    x = torch.randn(12, 3, 5, dtype=dtype)
    with torch.no_grad():
        ref, _ = m(x)
        _, first = m(x[:5])
    s = LSTMStream(m, 3, backend=backend)
    s.reset(first)
    _close(s.run(x[5:]), ref[5:], dtype, "continued")
    s.reset((first.h.numpy(), first.c.numpy()))  # arrays work too
    _close(s.step(x[5]), ref[5], dtype, "continued from arrays")
    s.reset()
    assert not s.state.h.any() and not s.state.c.any()
    _close(s.run(x), ref, dtype, "after reset")
    got = s.state  # a copy: stepping does not change it
    s.step(x[0])
    assert not torch.equal(got.h, s.state.h)


@pytest.mark.parametrize("backend", BACKENDS)
def test_torch_lstm_is_accepted(backend):
    _skip_without_cc(backend)
    for kw in ({}, {"proj_size": 3}, {"bias": False}):
        m = nn.LSTM(5, 6, 2, dtype=torch.float64, **kw).eval()
        x = torch.randn(10, 2, 5, dtype=torch.float64)
        h0 = torch.randn(2, 2, kw.get("proj_size", 6), dtype=torch.float64)
        c0 = torch.randn(2, 2, 6, dtype=torch.float64)
        with torch.no_grad():
            ref, (h, c) = m(x, (h0, c0))
        s = LSTMStream(m, 2, backend=backend)
        s.reset((h0, c0))
        _close(s.run(x), ref, torch.float64, f"outputs {kw}")
        _close(s.state.h, h, torch.float64, "h_n")
        _close(s.state.c, c, torch.float64, "c_n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_input_and_output_kinds(backend):
    _skip_without_cc(backend)
    m = _model(torch.float32)
    s = LSTMStream(m, backend=backend)
    x = torch.randn(4, 5)
    y1 = s.step(x[0])  # (D,) for B = 1
    assert isinstance(y1, torch.Tensor) and y1.shape == (7,)
    y2 = s.step(x[1].numpy()[None])
    assert isinstance(y2, np.ndarray) and y2.shape == (1, 7) and y2.dtype == np.float32
    y3 = s.step(x[2].requires_grad_())
    assert isinstance(y3, torch.Tensor) and not y3.requires_grad
    before = y3.clone()
    s.step(x[3])
    assert torch.equal(y3, before), "a returned output must not change on the next step"
    s.reset()
    ys = s.run(x.numpy())  # (T, D) for B = 1
    assert isinstance(ys, np.ndarray) and ys.shape == (4, 7)
    assert torch.equal(torch.from_numpy(ys[0]), y1)
    assert s.run(torch.zeros(0, 1, 5)).shape == (0, 1, 7)


@pytest.mark.parametrize("variant", [dict(peephole=True), dict(layer_norm=True), dict(zoneout=(0.3, 0.2)),
                                     dict(peephole=True, layer_norm=True, zoneout=0.1, recurrent_dropout=0.2,
                                          input_dropout=0.1, forget_bias=1.0, proj_size=4)])
def test_variants_run_on_the_torch_backend(variant):
    m = LSTM(5, 7, 2, dtype=torch.float64, dropout=0.3, **variant)
    with torch.no_grad():
        for p in m.parameters():  # move layer-norm gains and shifts off their initial 1 and 0
            p.add_(0.1 * torch.randn_like(p))
    s = LSTMStream(m, 2)  # built in training mode: the stream still has eval semantics
    assert s.backend == "torch"
    with pytest.raises(ValueError, match="backend='numpy' cannot run this model"):
        LSTMStream(m, 2, backend="numpy")
    x = torch.randn(10, 2, 5, dtype=torch.float64)
    with torch.no_grad():
        ref, (h, c) = m.eval()(x)
    _close(torch.stack([s.step(xt) for xt in x]), ref, torch.float64, f"{variant}")
    _close(s.state.c, c, torch.float64, "c_n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_eval_semantics_for_dropout(backend):
    _skip_without_cc(backend)
    m = LSTM(5, 7, 2, dropout=0.5, recurrent_dropout=0.3, input_dropout=0.3, forget_bias=1.0, dtype=torch.float64)
    s = LSTMStream(m, backend=backend)  # m is in training mode
    x = torch.randn(8, 1, 5, dtype=torch.float64)
    with torch.no_grad():
        ref, _ = m.eval()(x)
    _close(s.run(x), ref, torch.float64, "eval semantics")


def test_weights_are_a_snapshot():
    m = _model(torch.float64)
    s = LSTMStream(m, backend="numpy")
    x = torch.randn(6, 1, 5, dtype=torch.float64)
    with torch.no_grad():
        ref, _ = m(x)
        m.weight_hh_l0.mul_(2.0)
    _close(s.run(x), ref, torch.float64, "weights changed after construction")


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_inputs(backend):
    _skip_without_cc(backend)
    m = _model(torch.float32)
    s = LSTMStream(m, 2, backend=backend)
    with pytest.raises(ValueError, match=r"x_t must have shape \(2, 5\) \(batch_size, input_size\), got \(2, 4\)"):
        s.step(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"x_t must have shape \(2, 5\).*got \(3, 5\)"):
        s.step(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"got \(5,\)"):  # unbatched only when batch_size == 1
        s.step(np.zeros(5, np.float32))
    with pytest.raises(TypeError, match=r"x_t has dtype float64, expected the stream's dtype torch.float32"):
        s.step(np.zeros((2, 5)))
    with pytest.raises(TypeError, match=r"x_t has dtype torch.float64"):
        s.step(torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="x_t must be a NumPy array or a torch Tensor, got list"):
        s.step([[0.0] * 5] * 2)
    with pytest.raises(ValueError, match=r"x must have shape \(T, 2, 5\)"):
        s.run(np.zeros((3, 5), np.float32))
    with pytest.raises(TypeError, match="x has dtype"):
        s.run(np.zeros((3, 2, 5)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused_and_leaves_the_state(backend, bad):
    _skip_without_cc(backend)
    s = LSTMStream(_model(torch.float32, 2), 3, backend=backend)
    s.step(np.ones((3, 5), np.float32))
    before = s.state
    for row, col in ((0, 0), (2, 4)):
        x = np.ones((3, 5), np.float32)
        x[row, col] = bad
        with pytest.raises(ValueError, match="x_t contains NaN or infinity; the state is unchanged"):
            s.step(x)
        xs = np.ones((4, 3, 5), np.float32)
        xs[3, row, col] = bad
        with pytest.raises(ValueError, match="x contains NaN or infinity"):
            s.run(xs)
    after = s.state
    assert torch.equal(before.h, after.h) and torch.equal(before.c, after.c)
    big = np.full((3, 5), 1e30, np.float32)  # large but finite: accepted
    assert np.isfinite(np.asarray(s.step(big))).all()


def test_bad_models_and_arguments():
    with pytest.raises(ValueError, match="a bidirectional LSTM cannot stream"):
        LSTMStream(LSTM(5, 7, bidirectional=True))
    with pytest.raises(ValueError, match="a bidirectional LSTM cannot stream"):
        LSTMStream(nn.LSTM(5, 7, bidirectional=True))
    with pytest.raises(TypeError, match="lstm must be an lstmkit.nn.LSTM or a torch.nn.LSTM, got GRU"):
        LSTMStream(nn.GRU(5, 7))
    with pytest.raises(ValueError, match="backend must be one of"):
        LSTMStream(LSTM(5, 7), backend="onnx")
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        LSTMStream(LSTM(5, 7), batch_size=0)
    with pytest.raises(ValueError, match=r"backend='c' cannot run this model \(dtype torch.float16"):
        LSTMStream(LSTM(5, 7, dtype=torch.float16), backend="c")


def test_bad_state():
    s = LSTMStream(_model(torch.float64, 2), 3, backend="numpy")
    h, c = torch.zeros(2, 3, 7, dtype=torch.float64), torch.zeros(2, 3, 7, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"state\[0\] \(h\) must have shape \(2, 3, 7\)"):
        s.reset((h[:1], c))
    with pytest.raises(ValueError, match=r"state\[1\] \(c\) must have shape \(2, 3, 7\)"):
        s.reset((h, c[..., :6]))
    with pytest.raises(TypeError, match=r"state\[1\] \(c\) has dtype torch.float32"):
        s.reset((h, c.float()))
    with pytest.raises(ValueError, match=r"state\[0\] \(h\) contains NaN"):
        s.reset((torch.full_like(h, float("nan")), c))
    with pytest.raises(TypeError, match=r"state must be a pair"):
        s.reset(h)


def test_float16_streams_on_the_torch_backend():
    m = _model(torch.float16)
    s = LSTMStream(m)
    assert s.backend == "torch"
    x = torch.randn(5, 1, 5, dtype=torch.float16)
    with torch.no_grad():
        ref, _ = m(x)
    assert (s.run(x).float() - ref.float()).abs().max().item() <= 1e-2


# -- building the kernel -------------------------------------------------------------------
def test_auto_falls_back_to_numpy_without_a_compiler(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    m = _model(torch.float64)
    with caplog.at_level(logging.WARNING, logger="lstmkit.nn.stream"):
        stream_mod._LOGGED.clear()
        s = LSTMStream(m)
    assert s.backend == "numpy"
    assert "falling back to the NumPy backend: no C compiler found" in caplog.text
    with pytest.raises(KernelUnavailable, match="no C compiler found"):
        LSTMStream(m, backend="c")
    x = torch.randn(4, 1, 5, dtype=torch.float64)
    with torch.no_grad():
        _close(s.run(x), m(x)[0], torch.float64, "numpy fallback")
    assert not list(tmp_path.iterdir())


def test_auto_falls_back_to_numpy_when_compilation_fails(monkeypatch, tmp_path, caplog):
    broken = tmp_path / "broken-cc"
    broken.write_text("#!/bin/sh\necho 'cc: internal error' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("LSTMKIT_CC", str(broken))
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING, logger="lstmkit.nn.stream"):
        s = LSTMStream(_model(torch.float32))
    assert s.backend == "numpy"
    assert "cc: internal error" in caplog.text and "exit 3" in caplog.text
    with pytest.raises(KernelUnavailable, match="cannot build the C kernel"):
        LSTMStream(_model(torch.float32), backend="c")
    assert not [p for p in (tmp_path / "cache").iterdir()], "no temporary files left behind"


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler on this machine")
def test_kernel_is_cached_and_a_corrupt_cache_file_is_rebuilt(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path))
    cc = kernel_mod.compiler()
    path = kernel_mod.kernel_path(cc, kernel_mod.FLAG_SETS[0])
    assert path.parent == tmp_path
    path.write_bytes(b"not a shared library")
    m = _model(torch.float32, 2)
    with caplog.at_level(logging.WARNING, logger="lstmkit.nn._stream_kernel"):
        s = LSTMStream(m, backend="c")
    assert "is unusable" in caplog.text
    assert path.read_bytes()[:4] == b"\x7fELF" or os.uname().sysname != "Linux"
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "only the kernel, no temporary files"
    x = torch.randn(6, 1, 5)
    with torch.no_grad():
        _close(s.run(x), m(x)[0], torch.float32, "rebuilt kernel")
    # A fresh process finds the file: loading it again from disk gives a working kernel.
    lib = kernel_mod.open_kernel(str(path))
    assert lib.lstmkit_stream_abi() == 1000 * kernel_mod.ABI_VERSION + ctypes.sizeof(kernel_mod.Ctx)


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler on this machine")
def test_auto_picks_the_kernel_when_it_builds():
    assert LSTMStream(_model(torch.float32)).backend == "c"
    assert LSTMStream(nn.LSTM(5, 7)).backend == "c"
