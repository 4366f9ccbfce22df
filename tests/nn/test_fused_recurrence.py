"""The fused CPU recurrence: dispatch, float32 agreement with the PyTorch loop, finished rows
(batch_sizes) exact against validity masks, the forward-only inference path, the fallback when
nothing can be built, and the cache file's name. Float64 parity, gradcheck and padded == alone
run on both paths through the ``recurrence`` fixture in test_variants/test_lengths/test_parity."""

import logging

import pytest
import torch
import torch.nn.functional as F

import lstmkit.nn.fused_recurrence as fr
from lstmkit.nn import LSTM, lstm_recurrence

from .helpers import assert_close

HAVE_FUSED = fr.unavailable_reason() is None
needs_fused = pytest.mark.skipif(not HAVE_FUSED, reason=f"fused recurrence unavailable: {fr.unavailable_reason()}")


def _inputs(dtype, T=6, B=4, H=5, R=5, masks=True, proj=False, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, grad=True):
        return torch.randn(*shape, dtype=dtype, generator=g).requires_grad_(grad)

    args = [r(T, B, 4 * H), r(B, R), r(B, H), r(4 * H, R) * 0.5]
    kw = {"peephole": r(3, H), "ln_hh": (r(4 * H), r(4 * H)), "ln_c": (r(H), r(H))}
    if proj:
        kw["weight_hr"] = r(R, H)
    if masks:
        lens = torch.tensor([T, 2, T - 1, 1][:B])
        valid = (torch.arange(T)[:, None] < lens[None]).to(dtype).unsqueeze(-1)
        kw["update_c"] = torch.rand(T, B, H, dtype=dtype, generator=g).round() * valid
        kw["update_h"] = torch.rand(T, B, R, dtype=dtype, generator=g).round() * valid
        kw["valid"] = valid
        kw["recurrent_mask"] = torch.rand(B, R, dtype=dtype, generator=g).round() * 2
    return args, kw


def _leaves(args, kw):
    out = list(args)
    for v in kw.values():
        vs = v if isinstance(v, tuple) else (v,)
        out += [t for t in vs if t.requires_grad]
    return out


def _run(backend, args, kw):
    with fr.recurrence_backend(backend):
        out, h, c = lstm_recurrence(*args, **kw)
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    loss = (out * w).sum() + (h**2).sum() + (c**3).sum()
    return (out, h, c), torch.autograd.grad(loss, _leaves(args, kw))


def test_backend_names_are_checked():
    with pytest.raises(ValueError, match="recurrence backend must be one of"):
        fr.set_recurrence_backend("cuda")
    with fr.recurrence_backend("torch"):
        assert fr.get_recurrence_backend() == "torch"
        assert not fr.use_fused(torch.zeros(1))


@needs_fused
def test_fused_backend_refuses_what_it_cannot_run():
    with fr.recurrence_backend("fused"), pytest.raises(fr.FusedUnavailable, match="float32/float64 CPU"):
        fr.use_fused(torch.zeros(1, dtype=torch.bfloat16))
    with fr.recurrence_backend("auto"):
        assert not fr.use_fused(torch.zeros(1, dtype=torch.bfloat16))  # auto: the PyTorch loop runs it
        assert fr.use_fused(torch.zeros(1))


@needs_fused
@pytest.mark.parametrize("proj", [False, True])
def test_float32_agrees_with_the_pytorch_loop(proj):
    args, kw = _inputs(torch.float32, proj=proj, R=3 if proj else 5)
    (a, ga), (b, gb) = _run("torch", args, kw), _run("fused", args, kw)
    for x, y in zip(a, b):
        assert_close(x, y, tol=1e-5, what="forward")
    for x, y in zip(ga, gb):
        assert_close(x, y, tol=1e-4 * max(1.0, x.abs().max().item()), what="gradient")


@needs_fused
@pytest.mark.parametrize("proj", [False, True])
def test_finished_rows_equal_validity_masks(proj):
    """batch_sizes (rows leave the products when their sequence ends) == the masked loop, exactly."""
    T, B, H = 7, 4, 5
    R = 3 if proj else H
    args, kw = _inputs(torch.float64, T=T, B=B, H=H, R=R, masks=False, proj=proj)
    lens = torch.tensor([7, 5, 5, 2])  # sorted longest first
    valid = (torch.arange(T)[:, None] < lens[None]).double().unsqueeze(-1)
    masked = dict(kw, update_c=valid, update_h=valid, valid=valid)
    (a, ga) = _run("torch", args, masked)
    batch_sizes = (torch.arange(T)[:, None] < lens[None]).sum(1)
    out, h, c = fr.fused_recurrence(*args, **kw, batch_sizes=batch_sizes)
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    gb = torch.autograd.grad((out * w).sum() + (h**2).sum() + (c**3).sum(), _leaves(args, kw))
    for x, y, what in zip(a, (out, h, c), ("output", "h_T", "c_T")):
        assert_close(x, y, tol=1e-12, what=what)
    for x, y in zip(ga, gb):
        assert_close(x, y, tol=1e-11, what="gradient")
    assert torch.count_nonzero(out[2:, 3]) == 0 and torch.count_nonzero(out[5:, 1:]) == 0


@needs_fused
def test_inference_saves_nothing_for_backward(monkeypatch):
    calls = []
    op = fr.fused_op()

    class Recording:
        def forward(self, *args):
            calls.append(args[-1])  # the `save` flag
            return op.forward(*args)

        def backward(self, *args):
            return op.backward(*args)

    monkeypatch.setattr(fr, "fused_op", lambda: Recording())
    m = LSTM(3, 4, peephole=True, layer_norm=True, zoneout=0.2, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    with fr.recurrence_backend("fused"):
        with torch.no_grad():
            out_ng = m.eval()(x)[0]
        with torch.inference_mode():
            m(x)
        out = m(x)[0]
    assert calls == [False, False, True]
    assert out_ng.grad_fn is None and out.grad_fn is not None
    assert_close(out_ng, out.detach(), tol=1e-12)  # not 0: at inference LN_ih runs inside the kernel


@needs_fused
def test_lengths_path_makes_no_per_length_calls(monkeypatch):
    def refuse(*args, **kw):
        raise AssertionError("torch.lstm must not run on the fused lengths path")

    m = LSTM(3, 4, 2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(6, 5, 3, dtype=torch.float64)
    lens = [6, 1, 4, 3, 5]
    with fr.recurrence_backend("torch"):
        ref, (h_ref, c_ref) = m(x, lengths=lens)
    monkeypatch.setattr(torch, "lstm", refuse)
    with fr.recurrence_backend("fused"):
        out, (h, c) = m(x, lengths=lens)
    assert_close(out, ref)
    assert_close(h, h_ref)
    assert_close(c, c_ref)


def _lengths_results_on_both_paths(m, x, hx, lens) -> dict[str, list]:
    """For the torch and the fused backend: the output, final states and the gradients of a loss that
    weighs every output and state differently (input gradient NaN -> 7: padding holds NaN)."""
    results = {}
    for backend in ("torch", "fused"):
        xg, h0, c0 = x.clone().requires_grad_(), hx[0].clone().requires_grad_(), hx[1].clone().requires_grad_()
        m.zero_grad()
        with fr.recurrence_backend(backend):
            out, (h, c) = m(xg, (h0, c0), lengths=lens)
        loss = (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum() + h.sin().sum() + (c**2).sum()
        loss.backward()
        grads = [torch.nan_to_num(xg.grad, nan=7.0), h0.grad, c0.grad, *(p.grad for p in m.parameters())]
        results[backend] = [out.detach(), h.detach(), c.detach(), *grads]
    return results


@needs_fused
@pytest.mark.parametrize("bias,bidirectional,layers", [(True, False, 1), (False, True, 2), (True, True, 2)])
def test_packed_lengths_path_equals_the_pytorch_recurrence_with_gradients(bias, bidirectional, layers):
    """The packed kernel (lengths=, no variants, no projection): outputs, final states and every
    gradient equal torch's path in float64; padding holds NaN and is never read; the longest
    sequence is shorter than T (trailing steps with no row), and batch order is shuffled."""
    torch.manual_seed(3)
    m = LSTM(3, 4, layers, bias=bias, bidirectional=bidirectional, dtype=torch.float64)
    T, lens = 8, torch.tensor([3, 6, 1, 6, 2])
    x = torch.randn(T, 5, 3, dtype=torch.float64)
    x[torch.arange(T)[:, None] >= lens[None]] = float("nan")
    hx = (torch.randn(layers * (1 + bidirectional), 5, 4, dtype=torch.float64),) * 2
    results = _lengths_results_on_both_paths(m, x, hx, lens)
    assert not torch.isnan(results["fused"][0]).any()
    for ref, got in zip(results["torch"], results["fused"]):
        assert_close(got, ref, tol=1e-12)
    with torch.no_grad(), fr.recurrence_backend("fused"):  # forward-only: the same numbers
        out_ng, (h_ng, c_ng) = m(x, hx, lengths=lens)
    assert_close(out_ng, results["fused"][0], tol=1e-14)
    assert_close(h_ng, results["fused"][1], tol=1e-14)
    assert_close(c_ng, results["fused"][2], tol=1e-14)


@needs_fused
@pytest.mark.parametrize("lengths", [None, [5, 2, 7]])
def test_zoneout_training_draws_in_inference_are_the_same_on_both_paths(monkeypatch, lengths):
    """Under no_grad in training mode the fused kernel reads zoneout's draws as bool (no float
    copy); the same seed gives the same draws, so both paths agree to rounding, and the kernel
    did get byte masks."""
    m = LSTM(3, 4, 2, bidirectional=True, zoneout=(0.3, 0.6), peephole=True, dtype=torch.float64).train()
    x = torch.randn(7, 3, 3, dtype=torch.float64)
    seen = []
    real = fr._expand3
    monkeypatch.setattr(fr, "_expand3", lambda mask, *a: seen.append(None if mask is None else mask.dtype)
                        or real(mask, *a))
    outs = {}
    for backend in ("torch", "fused"):
        torch.manual_seed(5)
        with torch.no_grad(), fr.recurrence_backend(backend):
            outs[backend] = m(x, lengths=lengths)
    assert (torch.bool in seen) == (lengths is None)  # with lengths the draws are multiplied by validity
    for ref, got in zip((outs["torch"][0], *outs["torch"][1]), (outs["fused"][0], *outs["fused"][1])):
        assert_close(got, ref, tol=1e-13)
    torch.manual_seed(5)
    with torch.no_grad(), fr.recurrence_backend("fused"):
        m.eval()
        out_eval = m(x, lengths=lengths)[0]
    assert (out_eval - outs["fused"][0]).abs().max() > 1e-3  # the draws did something


def test_no_compiler_falls_back_and_logs_once(monkeypatch, caplog):
    monkeypatch.setattr(fr.PATH, "state", {"backend": None, "kernel": None, "error": None, "logged": False})
    monkeypatch.setenv("LSTMKIT_CXX", "/nonexistent/c++")
    m = LSTM(3, 4, peephole=True, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    with caplog.at_level(logging.WARNING, logger=fr.__name__):
        out1, out2 = m(x)[0], m(x)[0]
    assert torch.equal(out1, out2)
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "no C++ compiler" in warnings[0].getMessage()
    with fr.recurrence_backend("fused"), pytest.raises(fr.FusedUnavailable, match="no C\\+\\+ compiler"):
        m(x)


def test_cache_file_is_named_by_source_flags_and_machine(monkeypatch, tmp_path):
    cxx = fr.compiler()
    if cxx is None:
        pytest.skip("no C++ compiler on this machine")
    monkeypatch.setenv("LSTMKIT_CACHE_DIR", str(tmp_path))
    a, b = fr.library_path(cxx, fr.FLAG_SETS[0]), fr.library_path(cxx, fr.FLAG_SETS[1])
    assert a.parent == tmp_path and a != b and a == fr.library_path(cxx, fr.FLAG_SETS[0])
    from lstmkit.nn import _stream_kernel  # the one cache naming of every compiled kernel

    monkeypatch.setattr(_stream_kernel, "_machine_id", lambda: "another CPU")
    assert fr.library_path(cxx, fr.FLAG_SETS[0]) != a


@pytest.mark.parametrize("shape", [(5, 3, 2), (4, 2, 7)])
def test_input_projection_gradients_match_linear(shape):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, shape[-1], dtype=torch.float64, requires_grad=True)
    b = torch.randn(8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fr.input_projection, (x, w, b))
    assert torch.autograd.gradcheck(lambda x, w: fr.input_projection(x, w), (x, w))
    assert_close(fr.input_projection(x, w, b), F.linear(x, w, b), tol=1e-14)


@needs_fused
@pytest.mark.parametrize("bidirectional,proj_size,lengths", [(False, 0, None), (True, 2, [6, 2, 5])])
def test_layer_norm_inference_inside_the_kernel_equals_the_pytorch_loop(bidirectional, proj_size, lengths):
    """Under no_grad the input-side layer norm runs row by row inside the kernel."""
    m = LSTM(3, 5, 2, bidirectional=bidirectional, proj_size=proj_size, layer_norm=True, peephole=True,
             zoneout=0.2, dtype=torch.float64).eval()
    for p in m.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        with fr.recurrence_backend("torch"):
            ref, (h_ref, c_ref) = m(x, lengths=lengths)
        with fr.recurrence_backend("fused"):
            out, (h, c) = m(x, lengths=lengths)
    assert_close(out, ref, tol=1e-12)
    assert_close(h, h_ref, tol=1e-12)
    assert_close(c, c_ref, tol=1e-12)
    with pytest.raises(ValueError, match="inference only"):
        w = torch.randn(20, 5, dtype=torch.float64, requires_grad=True)
        fr.fused_recurrence(torch.randn(2, 1, 20, dtype=torch.float64), torch.zeros(1, 5, dtype=torch.float64),
                            torch.zeros(1, 5, dtype=torch.float64), w, ln_hh=(torch.ones(20), torch.zeros(20)),
                            ln_c=(torch.ones(5), torch.zeros(5)), ln_input=(torch.ones(20), torch.zeros(20)))


@needs_fused
@pytest.mark.parametrize("backend", ["auto", "fused"])
def test_an_empty_batch_takes_the_pytorch_recurrence(backend):
    """No rows (B = 0, e.g. a batch whose every sequence was filtered out): the PyTorch loop runs it
    under every backend and gives empty outputs with gradients, as torch.nn.LSTM does (found by the
    fuzz test: the kernel's scratch buffers assume a row)."""
    assert not fr.use_fused(torch.zeros(3, 0, 8))
    m = LSTM(1, 2, zoneout=0.1)
    x = torch.zeros(3, 0, 1, requires_grad=True)
    with fr.recurrence_backend(backend):
        out, (h, c) = m(x, lengths=torch.zeros(0, dtype=torch.long))
        (out.sum() + h.sum() + c.sum()).backward()
    assert out.shape == (3, 0, 2) and h.shape == c.shape == (1, 0, 2) and x.grad.shape == x.shape
    with fr.recurrence_backend(backend):  # the fuzz test's case: the loop path, no lengths, one step
        assert LSTM(1, 2, implementation="loop").eval()(torch.randn(1, 0, 1))[0].shape == (1, 0, 2)


@needs_fused
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 3e-4), (torch.float64, 1e-12)])
def test_small_row_product_equals_the_matrix_product(dtype, tol):
    """The kernel's own product for steps with few running rows (_fused_small_mm.cpp) against a
    float64 matmul: every row count from 1 to past two register blocks, gate widths with and
    without a partial last panel, the strided weight the kernel packs ([W_ih | W_hh] transposed)
    and a bias to start from or none."""
    g = torch.Generator().manual_seed(0)
    op = fr.fused_op()
    for n in range(1, 16):
        for kd, cols in ((136, 512), (7, 148), (512, 37), (3, 5)):
            a = torch.randn(n, kd, dtype=dtype, generator=g)
            w = torch.randn(cols, kd, dtype=dtype, generator=g).t()
            b = torch.randn(cols, dtype=dtype, generator=g)
            ref = a.double() @ w.double()
            assert_close(op.small_product(a, w, b).double(), ref + b.double(), tol=tol, what=f"n={n} {kd}x{cols}")
            assert_close(op.small_product(a, w, None).double(), ref, tol=tol, what=f"n={n} {kd}x{cols} no bias")


@needs_fused
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("small_rows", [0, 4, 1000])
def test_packed_steps_with_few_rows_equal_the_pytorch_recurrence(monkeypatch, dtype, tol, small_rows):
    """Lengths spread so that the late steps run few rows, as in the benchmark: the packed kernel
    with the small-row product on no step (0: ATen's GEMM throughout), on steps with up to 4 rows,
    and on every step (1000), forward and backward. Outputs, final states and every gradient equal
    the PyTorch recurrence; two layers, so the first writes packed rows and the last the padded
    output; H = 37 gives gate rows with a partial last panel."""
    monkeypatch.setattr(fr, "SMALL_ROWS", small_rows)
    torch.manual_seed(4)
    m = LSTM(5, 37, 2, dtype=dtype)
    T, lens = 10, torch.tensor([9, 1, 4, 9, 2, 7, 3, 8, 5, 6, 2, 1, 8])
    x = torch.randn(T, len(lens), 5, dtype=dtype)
    hx = (torch.randn(2, len(lens), 37, dtype=dtype), torch.randn(2, len(lens), 37, dtype=dtype))
    results = _lengths_results_on_both_paths(m, x, hx, lens)
    for i, (ref, got) in enumerate(zip(results["torch"], results["fused"])):
        assert_close(got, ref, tol=tol, what=f"result {i}")
    with torch.no_grad(), fr.recurrence_backend("fused"):  # forward only: the same numbers
        out_ng = m(x, hx, lengths=lens)[0]
    assert_close(out_ng, results["fused"][0], tol=tol / 100)
