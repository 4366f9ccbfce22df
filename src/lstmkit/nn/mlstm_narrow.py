"""mLSTM's chunkwise form in input coordinates, for an input no wider than a head (``MLSTM``'s
``mode="chunkwise"`` when :func:`narrow_pays`): :func:`mlstm_chunkwise_narrow` in PyTorch, and
for p <= ``COMPILED_MAX_P`` :func:`mlstm_recurrent_narrow` on the compiled kernel
(:mod:`._mlstm_kernel`), the same maths as a recurrence over the p x p memory.

Every projection of an mLSTM cell reads x_t only, so with x'_t = [x_t; 1] (p = D + 1 entries
with a bias, else p = D) and A_q = [W_q, b_q], A_k = [W_k, b_k] / sqrt(d), A_v = [W_v, b_v]
(each d x p, per head)::

    q_t = A_q x'_t,  k_t = A_k x'_t,  v_t = A_v x'_t
    q_t . k_s = x'_t^T M x'_s                   with M = A_q^T A_k (p x p)
    sum_s w_s v_s k_s^T = A_v G A_k^T,          with G = sum_s w_s x'_s x'_s^T (p x p)
    sum_s w_s k_s = A_k g,                       with g = sum_s w_s x'_s (p)

So the matrix memory written by the sequence is A_v G A_k^T: it lives in a p x p space. The
chunkwise form is then computed in that space: per step and head it costs O(L p + p^2 + p d)
multiply-adds instead of O(L d + d^2) (L the chunk size, d the head size), and the d x d memory
is formed once, for the returned state. An incoming state (C_0, n_0, m_0) is carried beside it
with a scalar weight (its decay), because C_0 need not have that structure: the state entering
chunk c is ``alpha_c C_0 + A_v G_c A_k^T`` (and ``alpha_c n_0 + A_k g_c``), both scaled by
exp(-m_c) as in the stabilised equations.

Across chunks there is no loop either (up to ``PARALLEL_CHUNKS_MAX`` chunks; beyond, a loop
over the chunks keeps memory linear): with Phi_c the summed log forget gates before chunk c,
the state entering chunk c is the parallel form over chunks (chunk j's write, scaled by its own
maximum m_j, enters with log weight Phi_c - Phi_{j+1} + m_j; the incoming state with Phi_c + m_0)
and its stabiliser is the running maximum m_c = Phi_c + max(m_0, max_{j<c} (m_j - Phi_{j+1})),
the max-stabiliser the recurrence computes. The chunk-level sums are formed in float64 (a few
numbers per chunk), so long sequences lose no precision to the cumulative sums.

The stabilisers, decay weights and normaliser are exactly those of
:func:`lstmkit.nn.mlstm.mlstm_chunkwise`; only the order of the products changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["COMPILED_MAX_P", "PARALLEL_CHUNKS_MAX", "mlstm_chunkwise_narrow", "mlstm_recurrent_narrow",
           "narrow_pays"]


# the compiled recurrence's cost grows as p^2 per step and head: measured at d = 32, T = 500,
# B = 32 (forward + backward), it is 2.1x faster than the PyTorch chunkwise form in input
# coordinates at p = 9, level at p = 17 and 0.7x at p = 25
COMPILED_MAX_P = 16


def narrow_pays(p: int, head_size: int) -> bool:
    """Whether the input-coordinates form is the one to take: an input (p = D + 1 with a bias) no
    wider than a head (its per-step cost O(L p + p^2 + p d) against O(L d + d^2); measured at
    d = 32, T = 500: 1.2x faster than the head-space form at p = 32, 1.7x at p = 9, in PyTorch)."""
    return p <= head_size


# up to this many chunks the states at the chunk boundaries come from one (NC + 1, NC) weight
# matrix (float64, NC^2 memory per lane); beyond, from a loop over the chunks (NC memory)
PARALLEL_CHUNKS_MAX = 256


def _chunk_states_loop(total: Tensor, m_loc: Tensor, m_init: Tensor, G_loc: Tensor, g_loc: Tensor):
    """The states at every chunk boundary, one chunk after another (the recurrence across chunks):
    G (B, NH, NC + 1, p, p), g (B, NH, NC + 1, p), alpha and m (B, NH, NC + 1)."""
    B, NH, _, p, _ = G_loc.shape
    G, g, a, m = G_loc.new_zeros(B, NH, p, p), g_loc.new_zeros(B, NH, p), torch.ones_like(m_init), m_init
    Gs, gs, alphas, ms = [G], [g], [a], [m]
    for tot, ml, Gl, gl in zip(total.unbind(-1), m_loc.unbind(-1), G_loc.unbind(2), g_loc.unbind(2)):
        m_new = torch.maximum(tot + m, ml)
        f, i = torch.exp(tot + m - m_new), torch.exp(ml - m_new)
        G = f[..., None, None] * G + i[..., None, None] * Gl
        g = f.unsqueeze(-1) * g + i.unsqueeze(-1) * gl
        a, m = f * a, m_new
        Gs.append(G)
        gs.append(g)
        alphas.append(a)
        ms.append(m)
    return torch.stack(Gs, 2), torch.stack(gs, 2), torch.stack(alphas, -1), torch.stack(ms, -1)


def _chunk_states(total: Tensor, m_loc: Tensor, m_init: Tensor):
    """The stabilised log weights with which each chunk's write and the incoming state enter the
    state at each chunk boundary. total, m_loc (B, NH, NC), m_init (B, NH). Returns
    w (B, NH, NC + 1, NC) (row c: the state entering chunk c; row NC: the final state),
    alpha (B, NH, NC + 1) and m (B, NH, NC + 1), in the dtype of ``total``."""
    dtype, nc = total.dtype, total.shape[-1]
    tot = total.double()
    phi = F.pad(torch.cumsum(tot, dim=-1), (1, 0))  # Phi_c, c = 0..NC: (B, NH, NC + 1)
    src = m_loc.double() - phi[..., 1:]  # m_j - Phi_{j+1}: (B, NH, NC)
    run = torch.cummax(src, dim=-1).values  # max_{j<=c}
    best = torch.maximum(F.pad(run, (1, 0), value=float("-inf")), m_init.double().unsqueeze(-1))
    m = phi + best  # m_c = Phi_c + max(m_0, max_{j<c} (m_j - Phi_{j+1})): (B, NH, NC + 1)
    below = torch.ones(nc + 1, nc, dtype=torch.bool, device=total.device).triu(0)  # j >= c: not yet written
    log_w = ((phi - m).unsqueeze(-1) + src.unsqueeze(-2)).masked_fill_(below, float("-inf"))
    alpha = torch.exp(phi + m_init.double().unsqueeze(-1) - m)
    return torch.exp(log_w).to(dtype), alpha.to(dtype), m.to(dtype)


def mlstm_chunkwise_narrow(x: Tensor, aq: Tensor, ak: Tensor, av: Tensor, i_pre: Tensor, log_f: Tensor, size: int,
                           state: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """The chunkwise form in input coordinates (module docstring). x (T, B, p) the input with
    its column of ones (padded steps finite); aq, ak, av (NH, d, p) (ak scaled by 1/sqrt(d));
    i_pre, log_f (B, NH, T); chunks of ``size`` steps; state (C (B, NH, d, d), n (B, NH, d),
    m (B, NH)). Returns h~ (T, B, NH, d) and the final state; equal to
    :func:`lstmkit.nn.mlstm.mlstm_chunkwise` on q, k, v = x' A^T."""
    T, B, p = x.shape
    NH, d, _ = aq.shape
    nc = -(-T // size)
    extra = nc * size - T
    xb = x.transpose(0, 1)  # -> (B, T, p)
    if extra:  # identity steps at the end: i~ = -inf, log f = 0
        xb = F.pad(xb, (0, 0, 0, extra))
        i_pre = F.pad(i_pre, (0, extra), value=float("-inf"))
        log_f = F.pad(log_f, (0, extra))
    xc = xb.reshape(B, 1, nc, size, p)  # every head reads the same input
    i_pre, log_f = i_pre.view(B, NH, nc, size), log_f.view(B, NH, nc, size)
    C_init, n_init, m_init = state
    cum = torch.cumsum(log_f, dim=-1)  # (B, NH, NC, L)
    total = cum[..., -1]  # each chunk's log decay (B, NH, NC)
    # what each chunk writes into the state by its end, scaled by its own maximum, in p x p
    log_ws = total.unsqueeze(-1) - cum + i_pre
    m_loc = log_ws.amax(-1).clamp_min(torch.finfo(x.dtype).min)  # (B, NH, NC); finite for an all-padding chunk
    ws = torch.exp(log_ws - m_loc.unsqueeze(-1)).unsqueeze(-1)  # (B, NH, NC, L, 1)
    xw = ws * xc  # (B, NH, NC, L, p)
    g_loc = xw.sum(-2)  # (B, NH, NC, p)
    G_loc = xw.transpose(-1, -2) @ xc  # (B, NH, NC, p, p)
    # the state at every chunk boundary at once (module docstring)
    if nc <= PARALLEL_CHUNKS_MAX:
        w, alpha, m_b = _chunk_states(total, m_loc, m_init)
        G_b = (w @ G_loc.flatten(-2)).unflatten(-1, (p, p))  # (B, NH, NC + 1, p, p)
        g_b = w @ g_loc  # (B, NH, NC + 1, p)
    else:  # a long sequence of many chunks: memory linear in their number
        G_b, g_b, alpha, m_b = _chunk_states_loop(total, m_loc, m_init, G_loc, g_loc)
    G0, g0, a0, m0 = G_b[:, :, :nc], g_b[:, :, :nc], alpha[..., :nc], m_b[..., :nc]
    # every chunk's outputs: q_t . k_s = P_t . x'_s with P = x' M, M = A_q^T A_k, one product for all heads
    mqk = aq.transpose(-1, -2) @ ak  # (NH, p, p)
    P = (xb @ mqk.transpose(0, 1).reshape(p, NH * p)).view(B, nc, size, NH, p).permute(0, 3, 1, 2, 4)
    src = i_pre - cum  # (B, NH, NC, L)
    mt = cum + torch.maximum(torch.cummax(src, dim=-1).values, m0.unsqueeze(-1))
    above = torch.ones(size, size, dtype=torch.bool, device=x.device).triu(1)
    log_d = ((cum - mt).unsqueeze(-1) + src.unsqueeze(-2)).masked_fill_(above, float("-inf"))  # (B, NH, NC, L, L)
    sm = (P @ xc.transpose(-1, -2)) * torch.exp(log_d)
    w0 = torch.exp(cum + m0.unsqueeze(-1) - mt).unsqueeze(-1)  # the entering state's weight (B, NH, NC, L, 1)
    # numerator in p coordinates: A_v (S x' + w0 G_c P_t) [+ w0 alpha_c C_0 A_q x'_t]
    u = sm @ xc + w0 * (P @ G0.transpose(-1, -2))  # (B, NH, NC, L, p)
    den = sm.sum(-1, keepdim=True) + w0 * (P * g0.unsqueeze(-2)).sum(-1, keepdim=True)
    # an incoming state that is zero (and wants no gradient) adds nothing: skip its terms
    given = any(t.requires_grad for t in (C_init, n_init)) or bool(C_init.any()) or bool(n_init.any())
    if given:
        nq = (aq.transpose(-1, -2) @ n_init.unsqueeze(-1)).squeeze(-1)  # A_q^T n_0: (B, NH, p)
        den = den + w0 * a0[..., None, None] * (xc * nq[:, :, None, None]).sum(-1, keepdim=True)
    scale = 1.0 / torch.maximum(den.abs(), torch.exp(-mt).unsqueeze(-1))
    to_time = lambda t: t.reshape(B, NH, nc * size, -1)[:, :, :T].permute(2, 0, 1, 3)  # noqa: E731 -> (T, B, NH, .)
    # h~ = A_v (u scale) for all heads in one product with a block-diagonal (NH p, H) matrix
    h = (to_time(u * scale).reshape(T * B, NH * p) @ torch.block_diag(*av.transpose(-1, -2))).view(T, B, NH, d)
    if given:  # + scale w0 alpha_c C_0 A_q x'_t
        h = h + torch.einsum("tbhq,bhdq->tbhd", to_time((w0 * a0[..., None, None]) * scale) * x.unsqueeze(2),
                             C_init @ aq)
    # the state after the last chunk, in d x d
    a_end = alpha[..., nc]
    C = a_end[..., None, None] * C_init + av @ G_b[:, :, nc] @ ak.transpose(-1, -2)
    n = a_end.unsqueeze(-1) * n_init + (ak @ g_b[:, :, nc].unsqueeze(-1)).squeeze(-1)
    return h, (C, n, m_b[..., nc])


def mlstm_recurrent_narrow(x: Tensor, aq: Tensor, ak: Tensor, av: Tensor, ao: Tensor, i_pre: Tensor, log_f: Tensor,
                           state: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """The layer's output from the compiled recurrence over the p x p memory
    (:mod:`._mlstm_kernel`), step by step as the recurrent form (O(p^2) per step and head, no
    chunks), the output gate and the map back to the heads fused in one more pass. x (T, B, p);
    aq, ak, av (NH, d, p); ao (H, p) = [W_o, b_o]; i_pre, log_f (T, B, NH); state as in
    :func:`mlstm_chunkwise_narrow`. Returns sigmoid(A_o x') * h~ (T, B, H) and the final state."""
    from ._mlstm_kernel import gated_output, narrow_recurrence

    T, B, p = x.shape
    NH, d, _ = aq.shape
    C_init, n_init, m_init = state
    mqk = aq.transpose(-1, -2) @ ak  # (NH, p, p)
    P = (x @ mqk.transpose(0, 1).reshape(p, NH * p)).view(T, B * NH, p).transpose(1, 2)  # -> (T, p, B NH)
    u, den, alpha, m, G_end, g_end = narrow_recurrence(x, P, i_pre.reshape(T, B * NH), log_f.reshape(T, B * NH),
                                                       m_init.reshape(B * NH), NH)
    u = u.transpose(1, 2).reshape(T, B, NH, p)
    den, alpha, m = den.view(T, B, NH), alpha.view(T, B, NH), m.view(T, B, NH)
    given = any(t.requires_grad for t in (C_init, n_init)) or bool(C_init.any()) or bool(n_init.any())
    extra = None
    if given:  # the incoming state, decayed by alpha_t
        nq = (aq.transpose(-1, -2) @ n_init.unsqueeze(-1)).squeeze(-1)  # A_q^T n_0: (B, NH, p)
        den = den + alpha * (x.unsqueeze(2) * nq).sum(-1)
    scale = (1.0 / torch.maximum(den.abs(), torch.exp(-m))).unsqueeze(-1)  # (T, B, NH, 1)
    if given:  # scale alpha_t C_0 A_q x'_t
        extra = torch.einsum("tbhq,bhdq->tbhd", (alpha.unsqueeze(-1) * scale) * x.unsqueeze(2), C_init @ aq)
        extra = extra.reshape(T * B, NH * d)
    H = NH * d
    out = gated_output(x.reshape(T * B, p), ao, (u * scale).reshape(T * B, NH, p), av.reshape(H, p), extra)
    a_end = alpha[-1]  # (B, NH)
    G_end = G_end.view(p, p, B, NH).permute(2, 3, 0, 1)
    g_end = g_end.view(p, B, NH).permute(1, 2, 0)
    C = a_end[..., None, None] * C_init + av @ G_end @ ak.transpose(-1, -2)
    n = a_end.unsqueeze(-1) * n_init + (ak @ g_end.unsqueeze(-1)).squeeze(-1)
    return out.view(T, B, H), (C, n, m[-1])
