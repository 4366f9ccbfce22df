"""MLSTM's chunkwise form in input coordinates (``nn/mlstm_narrow.py``, taken when the input is at
most half a head wide), on both its paths (the ``mlstm_path`` fixture: the PyTorch chunkwise form
and the compiled recurrence): equal to the recurrent form and to the head-space chunkwise form,
in outputs, states and gradients, with lengths, given states and continuation. float64."""

from __future__ import annotations

import pytest
import torch

from lstmkit.nn import MLSTM
from lstmkit.nn import mlstm as mlstm_module
from lstmkit.nn.mlstm import mlstm_chunkwise
from lstmkit.nn._mlstm_kernel import mlstm_backend
from lstmkit.nn.mlstm_narrow import mlstm_chunkwise_narrow, mlstm_recurrent_narrow, narrow_pays

from .helpers import assert_close

F64 = torch.float64


def make(D=2, H=16, L=1, seed=0, **kw):
    torch.manual_seed(seed)
    m = MLSTM(D, H, L, dtype=F64, **{"num_heads": 2, "chunk_size": 3, **kw})
    with torch.no_grad():  # every gate depends on the input
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m


def seq(T=11, B=3, D=2, seed=1):
    return torch.randn(T, B, D, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.fixture
def narrow_calls(monkeypatch, mlstm_path):
    """Counts the calls of the input-coordinates form on the path under test, so a test knows it ran."""
    calls = []
    name = {"torch": "mlstm_chunkwise_narrow", "compiled": "mlstm_recurrent_narrow"}[mlstm_path]
    real = getattr(mlstm_module, name)

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(mlstm_module, name, spy)
    return calls


def test_narrow_pays_only_for_inputs_no_wider_than_a_head():
    assert narrow_pays(3, 32) and narrow_pays(32, 32)
    assert not narrow_pays(33, 32) and not narrow_pays(4, 2)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("forget_gate", ["sigmoid", "exp"])
@pytest.mark.parametrize("chunk,given", [(1, True), (3, True), (4, True), (50, True), (3, False), (50, False)])
def test_equals_the_recurrent_form_with_lengths_and_a_given_state(bias, forget_gate, chunk, given, narrow_calls):
    """given=False: the zero state, whose terms the input-coordinates form skips."""
    m = make(bias=bias, forget_gate=forget_gate, chunk_size=chunk, bidirectional=True)
    x = seq()
    with torch.no_grad():
        s0 = m(seq(T=4, seed=5))[1]  # a non-zero incoming state
    narrow_calls.clear()
    res = {}
    for mode in ("recurrent", "chunkwise"):
        m.mode = mode
        x_ = x.clone().requires_grad_()
        s_ = tuple(f.clone().requires_grad_() for f in s0) if given else ()
        out, state = m(x_, m.State(*s_) if given else None, lengths=[11, 5, 1])
        w = torch.linspace(-1, 1, out.numel(), dtype=F64).view_as(out)
        loss = (out * w).sum() + sum((f**2).sum() for f in state)
        grads = torch.autograd.grad(loss, [x_, *s_, *m.parameters()])
        res[mode] = out, state, grads
    assert len(narrow_calls) == 2  # both directions ran in input coordinates
    (out, state, grads), (ref_out, ref_state, ref_grads) = res["chunkwise"], res["recurrent"]
    assert_close(out, ref_out, what="output")
    for name, a, b in zip(state._fields, state, ref_state):
        assert_close(a, b, what=f"state.{name}")
    for i, (a, b) in enumerate(zip(grads, ref_grads)):
        # relative to the gradient's size: with forget_gate="exp" the state gradients reach ~1e5
        # here, and the head-space chunkwise form is off by the same ~1e-14 relative
        assert_close(a, b, 1e-9 * max(1.0, float(b.abs().max())), f"gradient {i}")


@pytest.mark.parametrize("T,chunk", [(9, 4), (16, 4), (5, 8)])
def test_equals_the_head_space_chunkwise_form(T, chunk, mlstm_path):
    """The functions themselves against ``mlstm_chunkwise`` on q, k, v = x' A^T, zero and given
    state (the compiled recurrence needs no chunks: ``chunk`` plays no part there)."""
    g = torch.Generator().manual_seed(3)
    B, NH, d, p = 2, 3, 5, 2
    x = torch.cat([torch.randn(T, B, p - 1, generator=g, dtype=F64), torch.ones(T, B, 1, dtype=F64)], -1)
    aq, ak, av = (torch.randn(NH, d, p, generator=g, dtype=F64) for _ in range(3))
    i_pre = torch.randn(B, NH, T, generator=g, dtype=F64)
    log_f = torch.nn.functional.logsigmoid(torch.randn(B, NH, T, generator=g, dtype=F64) + 2)
    heads = lambda a: torch.einsum("tbp,hdp->bhtd", x, a)  # noqa: E731
    for state in ((torch.zeros(B, NH, d, d, dtype=F64), torch.zeros(B, NH, d, dtype=F64),
                   torch.zeros(B, NH, dtype=F64)),
                  (torch.randn(B, NH, d, d, generator=g, dtype=F64), torch.randn(B, NH, d, generator=g, dtype=F64),
                   torch.randn(B, NH, generator=g, dtype=F64))):
        if mlstm_path == "compiled":  # with A_o = 0 the output gate is 1/2
            ao = torch.zeros(NH * d, p, dtype=F64)
            out, (C, n, m) = mlstm_recurrent_narrow(x, aq, ak, av, ao, i_pre.permute(2, 0, 1), log_f.permute(2, 0, 1),
                                                    state)
            h = 2 * out.view(T, B, NH, d)
        else:
            h, (C, n, m) = mlstm_chunkwise_narrow(x, aq, ak, av, i_pre, log_f, chunk, state)
        h_ref, (C_ref, n_ref, m_ref) = mlstm_chunkwise(heads(aq), heads(ak), heads(av), i_pre, log_f, chunk, state)
        assert_close(h, h_ref.permute(2, 0, 1, 3), what="h~")
        assert_close(C, C_ref, what="C")
        assert_close(n, n_ref, what="n")
        assert_close(m, m_ref, what="m")


def test_wider_inputs_take_the_pytorch_form_on_every_backend(monkeypatch, mlstm_path):
    """p = 18 > COMPILED_MAX_P (the compiled recurrence's cost grows as p^2): the PyTorch chunkwise
    form in input coordinates runs whatever the backend, and equals the recurrent form."""
    from lstmkit.nn.mlstm_narrow import COMPILED_MAX_P

    calls = []
    monkeypatch.setattr(mlstm_module, "mlstm_chunkwise_narrow",
                        lambda *a: calls.append(1) or mlstm_chunkwise_narrow(*a))
    m = make(D=17, H=40, num_heads=2, chunk_size=4)
    assert m.input_size + 1 > COMPILED_MAX_P and narrow_pays(m.input_size + 1, 20)
    x = seq(T=9, D=17)
    out, state = m(x, lengths=[9, 4, 6])
    assert calls == [1]
    m.mode = "recurrent"
    ref, ref_state = m(x, lengths=[9, 4, 6])
    assert_close(out, ref, what="output")
    for name, a, b in zip(state._fields, state, ref_state):
        assert_close(a, b, what=f"state.{name}")


def test_many_chunks_take_the_loop_across_chunks(monkeypatch):
    """Beyond PARALLEL_CHUNKS_MAX chunks the PyTorch form hands the state from chunk to chunk in a
    loop (memory linear in the number of chunks): same results as the recurrent form."""
    from lstmkit.nn import mlstm_narrow

    monkeypatch.setattr(mlstm_narrow, "PARALLEL_CHUNKS_MAX", 2)
    m = make(chunk_size=2, bidirectional=True)
    x = seq(T=11)
    with torch.no_grad():
        s0 = m(seq(T=4, seed=5))[1]
    res = {}
    for mode in ("recurrent", "chunkwise"):
        m.mode = mode
        with mlstm_backend("torch"):
            x_ = x.clone().requires_grad_()
            out, state = m(x_, s0, lengths=[11, 6, 3])
            g = torch.autograd.grad((out**2).sum() + state.C.sum(), [x_, *m.parameters()])
        res[mode] = (out.detach(), *(f.detach() for f in state), *g)
    for i, (a, b) in enumerate(zip(res["chunkwise"], res["recurrent"])):
        assert_close(a, b, 1e-9 * max(1.0, float(b.abs().max())), f"result {i}")


def test_continuing_and_padding(narrow_calls):
    m = make(L=2, H=32, num_heads=2, chunk_size=4)
    x = seq(T=10)
    full, s_full = m(x)
    first, s1 = m(x[:3])
    second, s2 = m(x[3:], s1)
    assert_close(torch.cat([first, second]), full, what="continued output")
    for name, a, b in zip(s_full._fields, s2, s_full):
        assert_close(a, b, what=f"continued state.{name}")
    lengths = [10, 3, 6]
    xp = x.clone()
    for b, n in enumerate(lengths):
        xp[n:, b] = float("nan")
    out, state = m(xp, lengths=lengths)
    for b, n in enumerate(lengths):
        alone, s_alone = m(x[:n, b : b + 1])
        assert_close(out[:n, b : b + 1], alone, what=f"sequence {b}")
        for name, f, fa in zip(state._fields, state, s_alone):
            assert_close(f[:, b : b + 1], fa, what=f"state.{name} of sequence {b}")
    assert narrow_calls  # layer 0 (input 2 wide) ran in input coordinates


def test_gradcheck_with_a_given_state(narrow_calls):
    m = make(D=1, H=4, num_heads=1, chunk_size=2)
    x = seq(T=5, B=2, D=1).requires_grad_()
    with torch.no_grad():
        s0 = m(seq(T=3, B=2, D=1, seed=4))[1]
    s0 = tuple(f.clone().requires_grad_() for f in s0)
    names = [n for n, _ in m.named_parameters()]

    def fn(x, *rest):
        state, ps = rest[:3], rest[3:]
        out, s = torch.func.functional_call(m, dict(zip(names, ps)), (x, m.State(*state)), {"lengths": [5, 3]})
        return out, *s

    assert torch.autograd.gradcheck(fn, (x, *s0, *[p.detach().clone().requires_grad_() for p in m.parameters()]))
    assert narrow_calls


def test_float32_long_sequence_stays_close_to_float64(mlstm_path):
    """T = 1000 in float32 against float64 (the chunk-level sums of the PyTorch form are formed in
    float64; the compiled recurrence multiplies step by step)."""
    torch.manual_seed(0)
    m = MLSTM(2, 32, num_heads=2, chunk_size=16)
    x = torch.randn(1000, 2, 2)
    with torch.no_grad():
        out32, s32 = m(x)
        out64, s64 = m.double()(x.double())
    scale = float(out64.abs().max())
    assert float((out32.double() - out64).abs().max()) <= 1e-4 * scale
    assert float((s32.m.double() - s64.m).abs().max()) <= 1e-4 * float(s64.m.abs().max())


def test_compiled_equals_torch_in_float32_and_float64():
    """The two paths against each other at a training-like size (H = 64, 4 heads, T = 300,
    lengths), outputs and every gradient."""
    from lstmkit.nn._mlstm_kernel import PATH

    if PATH.unavailable_reason() is not None:
        pytest.skip(f"compiled mLSTM recurrence unavailable here: {PATH.unavailable_reason()}")
    for dtype, tol in ((F64, 1e-10), (torch.float32, 2e-4)):
        torch.manual_seed(0)
        m = MLSTM(2, 64, num_heads=4, chunk_size=16, dtype=dtype)
        x = torch.randn(300, 4, 2, dtype=dtype)
        res = {}
        for backend in ("torch", "compiled"):
            with mlstm_backend(backend):
                x_ = x.clone().requires_grad_()
                out, state = m(x_, lengths=[300, 250, 17, 1])
                loss = (out * torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)).sum() + state.C.sum()
                grads = torch.autograd.grad(loss, [x_, *m.parameters()])
                res[backend] = (out.detach(), *(f.detach() for f in state), *grads)
        for i, (a, b) in enumerate(zip(res["compiled"], res["torch"])):
            assert_close(a, b, tol * max(1.0, float(b.abs().max())), f"{dtype} result {i}")


def test_mlstm_backend_errors():
    from lstmkit.nn._mlstm_kernel import MLSTMKernelUnavailable

    with pytest.raises(ValueError, match=r"mlstm backend must be one of \('auto', 'compiled', 'torch'\), got 'c'"):
        with mlstm_backend("c"):
            pass
    m = MLSTM(2, 16, num_heads=2, dtype=torch.bfloat16)
    with mlstm_backend("compiled"), pytest.raises(MLSTMKernelUnavailable, match="float32/float64 CPU tensors"):
        m(torch.zeros(4, 1, 2, dtype=torch.bfloat16))
