"""SLSTM, MLSTM, MinLSTM: the forms agree, padding never leaks, states continue, gradients are
right, streaming equals the batch path, residual blocks, errors. float64 throughout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmkit.nn import (MLSTM, SLSTM, MinLSTM, RecurrentStream, ResidualRecurrent, create_recurrent,
                        list_recurrent)

from .helpers import assert_close

F64 = torch.float64
LAYERS = {"slstm": SLSTM, "mlstm": MLSTM, "minlstm": MinLSTM}
# every layer, MinLSTM's scan on both paths (the ``scan`` fixture: PyTorch loop, compiled kernel)
NAMES_SCANS = pytest.mark.parametrize("name,scan", [("slstm", "torch"), ("mlstm", "torch"), ("minlstm", "torch"),
                                                    ("minlstm", "compiled")], indirect=["scan"])
OPTIONS = {"slstm": {"num_heads": 2}, "mlstm": {"num_heads": 2, "chunk_size": 3}, "minlstm": {}}


def make(name, D=3, H=4, L=1, seed=0, **kw):
    torch.manual_seed(seed)
    m = LAYERS[name](D, H, L, dtype=F64, **{**OPTIONS[name], **kw})
    with torch.no_grad():  # make every gate depend on the input (xLSTM zero-initialises mLSTM's gate weights)
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m


def seq(T=7, B=3, D=3, seed=1):
    return torch.randn(T, B, D, generator=torch.Generator().manual_seed(seed), dtype=F64)


def states_close(a, b, tol=1e-10, what="state"):
    assert type(a) is type(b)
    for name, x, y in zip(a._fields, a, b):
        assert_close(x, y, tol, f"{what}.{name}")


# ------------------------------------------------------------------------------- the forms agree
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("lengths", [None, [7, 2, 5]])
def test_mlstm_forms_agree(bidirectional, lengths):
    m = make("mlstm", L=2, bidirectional=bidirectional, chunk_size=3)
    x = seq()
    results = {}
    for mode in ("recurrent", "parallel", "chunkwise"):
        m.mode = mode
        x_ = x.clone().requires_grad_()
        out, state = m(x_, lengths=lengths)
        loss = (out * torch.linspace(-1, 1, out.numel(), dtype=F64).view_as(out)).sum() + sum((f**2).sum() for f in state)
        grads = torch.autograd.grad(loss, [x_, *m.parameters()])
        results[mode] = out, state, grads
    ref = results["recurrent"]
    for mode in ("parallel", "chunkwise"):
        out, state, grads = results[mode]
        assert_close(out, ref[0], what=f"{mode} output")
        states_close(state, ref[1], what=f"{mode} state")
        for g, r in zip(grads, ref[2]):
            assert_close(g, r, 1e-9, f"{mode} gradient")


@pytest.mark.parametrize("chunk", [1, 2, 4, 7, 50])
def test_mlstm_chunk_sizes_agree_with_a_given_state(chunk):
    m = make("mlstm", chunk_size=chunk)
    x = seq(T=9)
    _, s0 = m(seq(T=4, seed=5))  # a non-zero incoming state
    m.mode = "recurrent"
    ref_out, ref_state = m(x, s0)
    m.mode = "chunkwise"
    out, state = m(x, s0)
    assert_close(out, ref_out, what="output")
    states_close(state, ref_state)


def test_mlstm_exp_forget_gate_forms_agree():
    m = make("mlstm", forget_gate="exp")
    x = seq()
    outs = []
    for mode in ("recurrent", "parallel", "chunkwise"):
        m.mode = mode
        outs.append(m(x)[0])
    assert_close(outs[1], outs[0])
    assert_close(outs[2], outs[0])


@pytest.mark.parametrize("lengths", [None, [7, 3, 1]])
def test_minlstm_scan_equals_recurrence(lengths, scan):
    m = make("minlstm", L=2, bidirectional=True)
    x = seq()
    with torch.no_grad():
        _, s0 = m(seq(seed=9))
    res = {}
    for mode in ("recurrent", "parallel", "scan"):
        m.mode = mode
        x_ = x.clone().requires_grad_()
        out, state = m(x_, s0, lengths=lengths)
        g = torch.autograd.grad((out**2).sum() + state.h.sum(), [x_, *m.parameters()])
        res[mode] = out, state, g
    for mode in ("parallel", "scan"):
        assert_close(res[mode][0], res["recurrent"][0], what=f"{mode} output")
        states_close(res[mode][1], res["recurrent"][1])
        for a, b in zip(res[mode][2], res["recurrent"][2]):
            assert_close(a, b, 1e-9, f"{mode} gradient")
    assert bool((res["parallel"][1].h > 0).all())  # g() keeps h positive


@pytest.mark.parametrize("D", [3, 20])  # the compiled scan projects a narrow input itself, a wide one by a product
def test_minlstm_compiled_scan_equals_the_torch_scan(D):
    from lstmkit.nn._scan_kernel import scan_backend, scan_unavailable_reason
    from lstmkit.nn.minlstm import INLINE_PROJECTION_MAX

    if scan_unavailable_reason() is not None:
        pytest.skip(f"compiled minLSTM scan unavailable here: {scan_unavailable_reason()}")
    assert (D > INLINE_PROJECTION_MAX) == (D == 20)
    for dtype, tol in ((F64, 1e-12), (torch.float32, 1e-5)):
        m = make("minlstm", D=D, H=5, L=2, bidirectional=True, mode="scan").to(dtype)
        x = seq(T=9, B=3, D=D).to(dtype)
        s0 = m(seq(T=3, B=3, D=D, seed=5).to(dtype))[1].h.detach()
        res = {}
        for backend in ("torch", "compiled"):
            with scan_backend(backend):
                x_ = x.clone().requires_grad_()
                h0 = s0.clone().requires_grad_()
                out, state = m(x_, (h0,), lengths=[9, 4, 1])
                w = torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)
                g = torch.autograd.grad((out * w).sum() + (state.h**2).sum(), [x_, h0, *m.parameters()])
                res[backend] = (out, state.h, *g)
        for a, b in zip(res["compiled"], res["torch"]):
            assert_close(a, b, tol, f"compiled scan, D={D}, {dtype}")
    with scan_backend("compiled"):  # gradcheck of the kernel's own backward (both projections)
        m = make("minlstm", D=D, H=3, mode="scan")
        x = seq(T=6, B=2, D=D).requires_grad_()
        h0 = torch.rand(1, 2, 3, dtype=F64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x, h0, *p: torch.func.functional_call(
            m, dict(zip([n for n, _ in m.named_parameters()], p)), (x, (h0,)), {"lengths": [6, 4]})[0],
            (x, h0, *[p.detach().clone().requires_grad_() for p in m.parameters()]))


def test_minlstm_long_sequence_scan_is_stable(scan):
    m = make("minlstm", D=2, H=8, mode="parallel")
    x = seq(T=3000, B=2, D=2)
    out_p = m(x)[0]
    m.mode = "scan"
    out_s = m(x)[0]
    assert torch.isfinite(out_p).all()
    assert_close(out_p, out_s, 1e-9, "T=3000")


# ------------------------------------------------------------------------------- padding
@NAMES_SCANS
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_with_lengths_equals_each_sequence_alone(name, bidirectional, scan):
    m = make(name, L=2, bidirectional=bidirectional)
    lengths = [6, 2, 4]
    x = seq(T=6)
    for b, n in enumerate(lengths):
        x[n:, b] = float("nan")  # padding may hold anything
    out, state = m(x, lengths=torch.tensor(lengths))
    assert torch.isfinite(out).all()
    for b, n in enumerate(lengths):
        alone, s_alone = m(x[:n, b : b + 1])
        assert_close(out[:n, b : b + 1], alone, what=f"{name} output of sequence {b}")
        assert bool((out[n:, b] == 0).all()), "output past the length must be zero"
        for fname, f, fa in zip(state._fields, state, s_alone):
            assert_close(f[:, b : b + 1], fa, what=f"{name} state.{fname} of sequence {b}")


@NAMES_SCANS
def test_padding_gets_no_gradient(name, scan):
    m = make(name, bidirectional=True)
    x = seq(T=5).requires_grad_()
    out, state = m(x, lengths=[5, 3, 1])
    (out.sum() + sum(f.sum() for f in state)).backward()
    assert bool((x.grad[3:, 1] == 0).all()) and bool((x.grad[1:, 2] == 0).all())
    assert torch.isfinite(x.grad).all()


# ------------------------------------------------------------------------------- continuing
@pytest.mark.parametrize("name,mode,scan", [("slstm", None, "torch"), ("mlstm", "chunkwise", "torch"),
                                            ("mlstm", "parallel", "torch"), ("mlstm", "recurrent", "torch"),
                                            ("minlstm", "parallel", "torch"), ("minlstm", "recurrent", "torch"),
                                            ("minlstm", "scan", "torch"), ("minlstm", "scan", "compiled")],
                         indirect=["scan"])
def test_continuing_from_the_returned_state_equals_one_pass(name, mode, scan):
    m = make(name, L=2, **({"mode": mode} if mode else {}))
    x = seq(T=9)
    full, s_full = m(x)
    first, s1 = m(x[:4])
    second, s2 = m(x[4:], s1)
    assert_close(torch.cat([first, second]), full, what="output")
    states_close(s2, s_full)


@pytest.mark.parametrize("name", list(LAYERS))
def test_batch_first_and_unbatched_match(name):
    m = make(name, L=2, bidirectional=True)
    x = seq()
    out, state = m(x)
    m.batch_first = True
    out_bf, state_bf = m(x.transpose(0, 1))
    assert_close(out_bf.transpose(0, 1), out)
    states_close(state_bf, state)
    out_u, state_u = m(x[:, 1])  # (T, D) unbatched: batch_first does not apply
    assert_close(out_u, out[:, 1])
    for f, fu in zip(state, state_u):
        assert_close(fu, f[:, 1])


# ------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name,mode,scan", [("slstm", None, "torch"), ("mlstm", "chunkwise", "torch"),
                                            ("mlstm", "recurrent", "torch"), ("minlstm", "parallel", "torch"),
                                            ("minlstm", "scan", "torch"), ("minlstm", "scan", "compiled")],
                         indirect=["scan"])
def test_gradcheck(name, mode, scan):
    heads = {} if name == "minlstm" else {"num_heads": 1}
    m = make(name, D=2, H=2, bidirectional=True, **heads, **({"mode": mode} if mode else {}))
    x = seq(T=5, B=2, D=2).requires_grad_()
    _, s0 = m(seq(T=3, B=2, D=2, seed=4))
    s0 = tuple(f.detach().requires_grad_() for f in s0)
    params = list(m.parameters())

    def fn(x, *state_and_params):
        state, ps = state_and_params[: len(s0)], state_and_params[len(s0):]
        with torch.no_grad():
            for p, v in zip(params, ps):
                p.copy_(v)
        out, s = torch.func.functional_call(m, dict(zip([n for n, _ in m.named_parameters()], ps)),
                                            (x, m.State(*state)), {"lengths": [5, 3]})
        return out, *s

    assert torch.autograd.gradcheck(fn, (x, *s0, *[p.detach().clone().requires_grad_() for p in params]))


# ------------------------------------------------------------------------------- streaming
@NAMES_SCANS
def test_streaming_equals_the_batch_path(name, scan):
    m = make(name, L=2)
    x = seq(T=8)
    out, state = m(x)
    stream = RecurrentStream(m, batch_size=3)
    steps = torch.stack([stream.step(x[t]) for t in range(8)])
    assert_close(steps, out, what="stream outputs")
    states_close(stream.state, state)
    stream.reset(m(x[:3])[1])
    assert_close(stream.run(x[3:]), out[3:], what="run from a given state")
    stream.reset()
    arr = stream.run(x.numpy())
    assert isinstance(arr, np.ndarray)
    np.testing.assert_allclose(arr, out.detach().numpy(), atol=1e-10)


@pytest.mark.parametrize("name", list(LAYERS))
def test_float32_streaming_equals_the_recurrent_form(name):
    """The stream runs the recurrent form's own arithmetic, so in float32 it equals that form
    (to 1e-6; the chunkwise/parallel forms differ from it by float32 rounding only)."""
    torch.manual_seed(0)
    m = LAYERS[name](8, 16, **{**OPTIONS[name], **({"num_heads": 4} if name != "minlstm" else {})}).eval()
    if name != "slstm":
        m.mode = "recurrent"
    x = torch.randn(60, 1, 8)
    with torch.no_grad():
        batch = m(x)[0][:, 0]
    streamed = torch.from_numpy(RecurrentStream(m, 1).run(x.numpy()[:, 0]))
    assert float((streamed - batch).abs().max()) <= 1e-6


# ------------------------------------------------------------------------------- residual blocks
@pytest.mark.parametrize("name", list(LAYERS))
def test_residual_blocks_lengths_state_and_stream(name):
    torch.manual_seed(0)
    m = create_recurrent(name, 3, 4, 2, residual=True, dtype=F64, **OPTIONS[name])
    assert isinstance(m, ResidualRecurrent) and m.output_size == 4
    x = seq(T=6)
    out, state = m(x, lengths=[6, 2, 4])
    for b, n in enumerate([6, 2, 4]):
        alone, _ = m(x[:n, b : b + 1])
        assert_close(out[:n, b : b + 1], alone, what=f"sequence {b}")
    full, s_full = m(x)
    first, s1 = m(x[:2])
    second, s2 = m(x[2:], s1)
    assert_close(torch.cat([first, second]), full)
    states_close(s2, s_full)
    stream = RecurrentStream(m, batch_size=3)
    assert_close(stream.run(x), full.detach())
    bi = create_recurrent(name, 3, 4, 2, residual=True, bidirectional=True, dtype=F64, **OPTIONS[name])
    assert bi(x, lengths=[6, 2, 4])[0].shape == (6, 3, 4)


# ------------------------------------------------------------------------------- errors
def test_registry_and_errors():
    assert list_recurrent() == ["minlstm", "mlstm", "slstm"]
    with pytest.raises(ValueError, match="unknown recurrent layer 'mlstn'; did you mean 'mlstm'"):
        create_recurrent("mlstn", 3, 4)
    with pytest.raises(ValueError, match="mode must be one of"):
        MLSTM(3, 4, mode="fast")
    with pytest.raises(ValueError, match="num_heads must divide hidden_size=6"):
        SLSTM(3, 6, num_heads=4)
    with pytest.raises(ValueError, match="mode must be one of"):
        MinLSTM(3, 4, mode="log")
    with pytest.raises(ValueError, match="bidirectional layer cannot step"):
        MinLSTM(3, 4, bidirectional=True).step(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="bidirectional layer cannot stream"):
        RecurrentStream(SLSTM(3, 4, bidirectional=True, num_heads=1))
    m = MLSTM(3, 4, num_heads=2)
    with pytest.raises(ValueError, match=r"hx.C must have shape \(1, 2, 2, 2, 2\)"):
        m(torch.zeros(5, 2, 3), m.initial_state(3, torch.zeros(1)))
    with pytest.raises(ValueError, match="lengths must be <= the padded length"):
        m(torch.zeros(5, 2, 3), lengths=[6, 1])
    with pytest.raises(ValueError, match="expected input_size=3"):
        m(torch.zeros(5, 2, 4))
    with pytest.raises(ValueError, match="input_size=3"):
        create_recurrent("minlstm", 3, 4, residual=True)(torch.zeros(5, 2, 4))
    with pytest.raises(TypeError, match="SLSTMState"):
        SLSTM(3, 4, num_heads=1)(torch.zeros(5, 2, 3), (torch.zeros(1, 2, 4),))


def test_scan_backend_errors():
    from lstmkit.nn._scan_kernel import ScanUnavailable, scan_backend

    with pytest.raises(ValueError, match=r"scan backend must be one of \('auto', 'compiled', 'torch'\), got 'fast'"):
        with scan_backend("fast"):
            pass
    m = MinLSTM(2, 3, mode="scan", dtype=torch.bfloat16)
    with scan_backend("compiled"), pytest.raises(ScanUnavailable, match="float32/float64 CPU tensors"):
        m(torch.zeros(4, 1, 2, dtype=torch.bfloat16))
