"""The LSTM recurrence over a whole sequence with a hand-written backward pass.

Used whenever a variant keeps a layer off torch's fused kernel. The input side of every step,
``xp_t = LN(W_ih x_t) + b_ih + b_hh`` (LN only with layer norm), has no recurrence and is
computed for all steps at once by the caller with ordinary autograd. This module runs the
part that must go step by step:

    forward, per step t (shapes: B batch, H hidden, R = proj_size or H, G = 4H)
        r    = h_{t-1} * m_rec                       # variational dropout mask, or 1
        z    = xp_t + LN_hh(r W_hh^T)                # (B, G); LN_hh only with layer norm
        z_i += p_i * c_{t-1};  z_f += p_f * c_{t-1}  # peepholes
        i, f, g = sigmoid(z_i), sigmoid(z_f), tanh(z_g)
        c~   = f * c_{t-1} + i * g
        c_t  = c_{t-1} + u^c_t * (c~ - c_{t-1})       # zoneout / padding: u in [0, 1]
        z_o += p_o * c_t;  o = sigmoid(z_o)
        h~   = (o * tanh(LN_c(c_t))) W_hr^T          # projection optional
        h_t  = h_{t-1} + u^h_t * (h~ - h_{t-1})
        y_t  = h_t * valid_t

    backward, per step t from T-1 down to 0, with dh, dc the gradients flowing in from t+1
        dh   += dy_t * valid_t
        dh~   = u^h_t dh;  carry_h = (1 - u^h_t) dh
        dq    = dh~ W_hr                              # q = o * tanh(n),  n = LN_c(c_t)
        dz_o  = dq * tanh(n) * o (1 - o)
        dc_t  = LN_c'(dq * o * (1 - tanh(n)^2)) + dz_o * p_o + dc
        dc~   = u^c_t dc_t;  carry_c = (1 - u^c_t) dc_t
        dz_i  = dc~ * g * i (1 - i);  dz_f = dc~ * c_{t-1} * f (1 - f);  dz_g = dc~ * i (1 - g^2)
        dc    = dc~ * f + dz_i * p_i + dz_f * p_f + carry_c
        dh    = (LN_hh'(dz) W_hh) * m_rec + carry_h
    and the parameter gradients are single matrix products over all steps at the end
    (dW_hh = sum_t LN_hh'(dz_t)^T r_t, dW_hr = sum_t dh~_t^T q_t, peepholes, LN gains/shifts).

Each step costs two matrix products (one forward, one backward) and a handful of element-wise
ops on (B, H)-sized tensors; see the notes on ``_Recurrence`` for why per-step factors are not
precomputed for all steps at once. ``torch.autograd.gradcheck`` checks the backward in the
tests, as does agreement with autograd through :func:`lstmkit.nn.cell.lstm_cell_step`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import cuda_graphs
from .cell import LN_EPS
from .fused_recurrence import fused_recurrence, use_fused

__all__ = ["lstm_recurrence"]

_LN_MASK = [True, False, False]  # native_layer_norm_backward: input gradient only


class _Recurrence(torch.autograd.Function):
    # Implementation notes, from profiling on CPU at (T, B, H) = (100, 32, 128):
    # - per-step results stay lists of small contiguous tensors (kept on ctx; they are neither
    #   inputs nor outputs): writing into strided slices of (T, ...) buffers was 2-5x slower
    #   per op, and large fresh (T, B, 4H) temporaries cost more in page faults than they save;
    # - the g slot holds sigmoid(2 z_g), so g = tanh(z_g) = 2 s - 1 and every slot's derivative
    #   is s (1 - s) (times 4 for g): one op gives all four gate derivatives;
    # - native_layer_norm_backward reads mean/rstd as contiguous arrays: they stay separate.

    @staticmethod
    def forward(ctx, xp, h0, c0, w_hh, w_hr, peep, lnh_w, lnh_b, lnc_w, lnc_b, u_c, u_h, valid, m_rec):
        T, G = xp.shape[0], xp.shape[2]
        H = G // 4
        hs, cs, acts, gs, tcs, qs = [h0], [c0], [], [], [], []
        lnh, lnc = [], []  # (raw input, mean, rstd) per step
        w_hh_t = w_hh.t()
        w_hr_t = w_hr.t() if w_hr is not None else None
        for t in range(T):
            h_prev, c_prev = hs[-1], cs[-1]
            r = h_prev if m_rec is None else h_prev * m_rec
            if lnh_w is None:
                z = torch.addmm(xp[t], r, w_hh_t)  # -> (B, 4H)
            else:
                raw = torch.mm(r, w_hh_t)
                z, mean, rstd = torch.native_layer_norm(raw, (G,), lnh_w, lnh_b, LN_EPS)
                z.add_(xp[t])
                lnh.append((raw, mean, rstd))
            z[:, 2 * H : 3 * H].mul_(2.0)
            if peep is None:
                z.sigmoid_()  # i, f, s_g, o
            else:
                z[:, :H].addcmul_(peep[0], c_prev)
                z[:, H : 2 * H].addcmul_(peep[1], c_prev)
                z[:, : 3 * H].sigmoid_()
            g = z[:, 2 * H : 3 * H].mul(2.0).sub_(1.0)  # tanh(z_g)
            c_new = z[:, H : 2 * H] * c_prev
            c_new.addcmul_(z[:, :H], g)
            if u_c is not None:
                c_new = torch.lerp(c_prev, c_new, u_c[t])
            if peep is not None:
                z[:, 3 * H :].addcmul_(peep[2], c_new).sigmoid_()
            if lnc_w is None:
                tc = torch.tanh(c_new)
            else:
                n, mean, rstd = torch.native_layer_norm(c_new, (H,), lnc_w, lnc_b, LN_EPS)
                lnc.append((c_new, mean, rstd))
                tc = n.tanh_()
            h_new = z[:, 3 * H :] * tc
            if w_hr is not None:
                qs.append(h_new)
                h_new = torch.mm(h_new, w_hr_t)
            if u_h is not None:
                h_new = torch.lerp(h_prev, h_new, u_h[t])
            hs.append(h_new)
            cs.append(c_new)
            acts.append(z)
            gs.append(g)
            tcs.append(tc)
        out = torch.stack(hs[1:])  # -> (T, B, R)
        if valid is not None:
            out.mul_(valid)
        ctx.steps = (hs, cs, acts, gs, tcs, qs, lnh, lnc)
        ctx.save_for_backward(w_hh, w_hr, peep, lnh_w, lnc_w, u_c, u_h, valid, m_rec)
        return out, hs[-1].clone(), cs[-1].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, d_hT, d_cT):
        w_hh, w_hr, peep, lnh_w, lnc_w, u_c, u_h, valid, m_rec = ctx.saved_tensors
        hs, cs, acts, gs, tcs, qs, lnh, lnc = ctx.steps
        T, (B, G) = len(acts), acts[0].shape
        H, R = G // 4, hs[0].shape[-1]
        if valid is not None:
            d_out = d_out * valid
        dzs, dhps, dhts, dcns = [], [], [], []
        dh, dc = d_hT, d_cT
        for t in range(T - 1, -1, -1):
            a, tc = acts[t], tcs[t]
            o = a[:, 3 * H :]
            dh = dh + d_out[t]
            carry_h = None
            if u_h is not None:
                dh_new = dh * u_h[t]
                carry_h = dh - dh_new
            else:
                dh_new = dh
            if w_hr is not None:
                dhts.append(dh_new)
                dq = torch.mm(dh_new, w_hr)
            else:
                dq = dh_new
            dq_o = dq * o
            dn = torch.addcmul(dq_o, dq_o * tc, tc, value=-1.0)  # dq * o * (1 - tanh(n)^2)
            if lnc_w is not None:
                dcns.append(dn)
                c_t, mean, rstd = lnc[t]
                dn = torch.ops.aten.native_layer_norm_backward(dn, c_t, (H,), mean, rstd, lnc_w, None, _LN_MASK)[0]
            sd = torch.addcmul(a, a, a, value=-1.0)  # s (1 - s) for every slot
            if peep is not None:
                dn.addcmul_(dq * tc * sd[:, 3 * H :], peep[2])  # dz_o * p_o
            dct = dn + dc
            carry_c = None
            if u_c is not None:
                dc_new = dct * u_c[t]
                carry_c = dct - dc_new
            else:
                dc_new = dct
            dz_t = torch.cat((dc_new * gs[t], dc_new * cs[t], dc_new * a[:, :H] * 4.0, dq * tc), dim=1).mul_(sd)
            dc = dc_new * a[:, H : 2 * H]
            if peep is not None:
                dc.addcmul_(dz_t[:, :H], peep[0]).addcmul_(dz_t[:, H : 2 * H], peep[1])
            if carry_c is not None:
                dc += carry_c
            if lnh_w is not None:
                raw, mean, rstd = lnh[t]
                dhp_t = torch.ops.aten.native_layer_norm_backward(dz_t, raw, (G,), mean, rstd, lnh_w, None, _LN_MASK)[0]
                dhps.append(dhp_t)
            else:
                dhp_t = dz_t
            dzs.append(dz_t)
            dh = torch.mm(dhp_t, w_hh)
            if m_rec is not None:
                dh.mul_(m_rec)
            if carry_h is not None:
                dh += carry_h
        dz = torch.stack(dzs[::-1])  # -> (T, B, 4H): also the gradient of xp
        dhp = torch.stack(dhps[::-1]) if lnh_w is not None else dz
        # Parameter gradients: one reduction over all (T * B) rows each.
        r_all = torch.stack(hs[:-1])
        if m_rec is not None:
            r_all.mul_(m_rec)
        d_w_hh = dhp.reshape(T * B, G).t().mm(r_all.reshape(T * B, R))
        d_w_hr = None
        if w_hr is not None:
            d_w_hr = torch.stack(dhts[::-1]).reshape(T * B, R).t().mm(torch.stack(qs).reshape(T * B, H))
        d_peep = None
        if peep is not None:
            c_prev, c_all = torch.stack(cs[:-1]), torch.stack(cs[1:])
            d_peep = torch.stack((
                (dz[..., :H] * c_prev).sum((0, 1)),
                (dz[..., H : 2 * H] * c_prev).sum((0, 1)),
                (dz[..., 3 * H :] * c_all).sum((0, 1)),
            ))
        d_lnh_w = d_lnh_b = d_lnc_w = d_lnc_b = None
        if lnh_w is not None:
            z_hat = torch.stack([(raw - mean) * rstd for raw, mean, rstd in lnh])
            d_lnh_w, d_lnh_b = (dz * z_hat).sum((0, 1)), dz.sum((0, 1))
            dcn = torch.stack(dcns[::-1])
            c_hat = torch.stack([(c - mean) * rstd for c, mean, rstd in lnc])
            d_lnc_w, d_lnc_b = (dcn * c_hat).sum((0, 1)), dcn.sum((0, 1))
        return (dz, dh, dc, d_w_hh, d_w_hr, d_peep, d_lnh_w, d_lnh_b, d_lnc_w, d_lnc_b,
                None, None, None, None)


def lstm_recurrence(
    xp: Tensor,
    h0: Tensor,
    c0: Tensor,
    weight_hh: Tensor,
    *,
    weight_hr: Tensor | None = None,
    peephole: Tensor | None = None,
    ln_hh: tuple[Tensor, Tensor] | None = None,
    ln_c: tuple[Tensor, Tensor] | None = None,
    update_c: Tensor | None = None,
    update_h: Tensor | None = None,
    valid: Tensor | None = None,
    recurrent_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the recurrence over precomputed input projections.

    Args (T time, B batch, H hidden, R = proj_size or H):
        xp: (T, B, 4H) input projections with both biases added (and LN_ih applied).
        h0, c0: (B, R), (B, H) initial state.
        update_c, update_h: multipliers broadcastable to (T, B, H) / (T, B, R): zoneout masks
            times step validity; None means 1.
        valid: (T, B, 1) 0/1 step validity (zeroes outputs past each length); None: all valid.
        recurrent_mask: (B, R) locked dropout mask on ``h_{t-1}``; None: no dropout.
    Returns: outputs (T, B, R), h_T (B, R), c_T (B, H).

    Runs on the fused kernel of :mod:`lstmkit.nn.fused_recurrence` when it is available (see
    ``set_recurrence_backend``), else on the PyTorch loop below; both compute the same thing.
    """
    if (ln_hh is None) != (ln_c is None):
        raise ValueError("layer norm needs both ln_hh and ln_c (or neither)")
    if use_fused(xp):
        return fused_recurrence(xp, h0, c0, weight_hh, weight_hr=weight_hr, peephole=peephole, ln_hh=ln_hh,
                                ln_c=ln_c, update_c=update_c, update_h=update_h, valid=valid,
                                recurrent_mask=recurrent_mask)
    lnh = ln_hh if ln_hh is not None else (None, None)
    lnc = ln_c if ln_c is not None else (None, None)
    inputs = (xp.contiguous(), h0.contiguous(), c0.contiguous(), weight_hh, weight_hr, peephole,
              lnh[0], lnh[1], lnc[0], lnc[1], update_c, update_h, valid, recurrent_mask)
    if cuda_graphs.wanted(xp):  # on CUDA: the same steps, replayed from a CUDA graph (no launch per op)
        out = cuda_graphs.graphed_recurrence(_Recurrence, inputs)
        if out is not None:
            return out
    return _Recurrence.apply(*inputs)
