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

Every factor that depends only on forward values (``o (1 - tanh^2)``, ``g i (1 - i)``, ...) is
computed for all steps in one batched op before the backward loop, so each step costs two
matrix products and a handful of element-wise ops. ``torch.autograd.gradcheck`` checks it in
the tests, as does agreement with autograd through :func:`lstmkit.nn.cell.lstm_cell_step`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .cell import LN_EPS

__all__ = ["lstm_recurrence"]

_LN_MASK = [True, False, False]  # native_layer_norm_backward: input gradient only


class _Recurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xp, h0, c0, w_hh, w_hr, peep, lnh_w, lnh_b, lnc_w, lnc_b, u_c, u_h, valid, m_rec):
        T, B, G = xp.shape
        H, R = G // 4, h0.shape[-1]
        hs = xp.new_empty(T + 1, B, R)
        cs = xp.new_empty(T + 1, B, H)
        hs[0], cs[0] = h0, c0
        act = xp.new_empty(T, B, G)  # sigmoid(i, f), tanh(g), sigmoid(o)
        tcn = xp.new_empty(T, B, H)  # tanh of the (normalised) cell
        hp_raw = xp.new_empty(T, B, G) if lnh_w is not None else None
        lnh_stats = xp.new_empty(2, T, B, 1) if lnh_w is not None else None
        lnc_stats = xp.new_empty(2, T, B, 1) if lnc_w is not None else None
        q_all = xp.new_empty(T, B, H) if w_hr is not None else None
        w_hh_t = w_hh.t()
        w_hr_t = w_hr.t() if w_hr is not None else None
        for t in range(T):
            h_prev, c_prev = hs[t], cs[t]
            r = h_prev if m_rec is None else h_prev * m_rec
            if lnh_w is None:
                z = torch.addmm(xp[t], r, w_hh_t)
            else:
                torch.mm(r, w_hh_t, out=hp_raw[t])
                z, mean, rstd = torch.native_layer_norm(hp_raw[t], (G,), lnh_w, lnh_b, LN_EPS)
                lnh_stats[0, t], lnh_stats[1, t] = mean, rstd
                z.add_(xp[t])
            a = act[t]
            if peep is not None:
                z[:, :H].addcmul_(peep[0], c_prev)
                z[:, H : 2 * H].addcmul_(peep[1], c_prev)
            torch.sigmoid(z[:, : 2 * H], out=a[:, : 2 * H])
            torch.tanh(z[:, 2 * H : 3 * H], out=a[:, 2 * H : 3 * H])
            c_new = torch.addcmul(a[:, H : 2 * H] * c_prev, a[:, :H], a[:, 2 * H : 3 * H])
            if u_c is None:
                cs[t + 1] = c_new
            else:
                torch.lerp(c_prev, c_new, u_c[t], out=cs[t + 1])
            c_t = cs[t + 1]
            if peep is not None:
                z[:, 3 * H :].addcmul_(peep[2], c_t)
            torch.sigmoid(z[:, 3 * H :], out=a[:, 3 * H :])
            if lnc_w is None:
                torch.tanh(c_t, out=tcn[t])
            else:
                n, mean, rstd = torch.native_layer_norm(c_t, (H,), lnc_w, lnc_b, LN_EPS)
                lnc_stats[0, t], lnc_stats[1, t] = mean, rstd
                torch.tanh(n, out=tcn[t])
            if w_hr is None and u_h is None:
                torch.mul(a[:, 3 * H :], tcn[t], out=hs[t + 1])
                continue
            h_new = a[:, 3 * H :] * tcn[t]
            if w_hr is not None:
                q_all[t] = h_new
                h_new = torch.mm(h_new, w_hr_t)
            if u_h is None:
                hs[t + 1] = h_new
            else:
                torch.lerp(h_prev, h_new, u_h[t], out=hs[t + 1])
        out = hs[1:] * valid if valid is not None else hs[1:].clone()
        ctx.save_for_backward(hs, cs, act, tcn, hp_raw, lnh_stats, lnc_stats, q_all, w_hh, w_hr, peep,
                              lnh_w, lnc_w, u_c, u_h, valid, m_rec)
        return out, hs[T].clone(), cs[T].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, d_hT, d_cT):
        (hs, cs, act, tcn, hp_raw, lnh_stats, lnc_stats, q_all, w_hh, w_hr, peep,
         lnh_w, lnc_w, u_c, u_h, valid, m_rec) = ctx.saved_tensors
        T, B, G = act.shape
        H, R = G // 4, hs.shape[-1]
        i, f, g, o = act.split(H, dim=2)
        c_prev, c_all = cs[:-1], cs[1:]
        # Factors of the step derivatives that depend on forward values only, for all steps at once.
        one_m_t2 = 1.0 - tcn * tcn
        f_cell = o * one_m_t2  # dq -> d n
        f_o = tcn * o * (1.0 - o)  # dq -> dz_o
        f_ifg = torch.stack((g * i * (1.0 - i), c_prev * f * (1.0 - f), i * (1.0 - g * g)), dim=2)  # (T, B, 3, H)
        if valid is not None:
            d_out = d_out * valid
        dz = act.new_empty(T, B, G)
        dhp = act.new_empty(T, B, G) if lnh_w is not None else dz
        dht = act.new_empty(T, B, R) if w_hr is not None else None
        dcn_all = act.new_empty(T, B, H) if lnc_w is not None else None
        dh, dc = d_hT.clone(), d_cT.clone()
        for t in range(T - 1, -1, -1):
            dh = dh + d_out[t]
            if u_h is not None:
                dh_new = dh * u_h[t]
                carry_h = dh - dh_new
            else:
                dh_new, carry_h = dh, None
            if w_hr is not None:
                dht[t] = dh_new
                dq = torch.mm(dh_new, w_hr)
            else:
                dq = dh_new
            dz_t = dz[t]
            torch.mul(dq, f_o[t], out=dz_t[:, 3 * H :])
            dn = dq * f_cell[t]
            if lnc_w is not None:
                dcn_all[t] = dn
                dn = torch.ops.aten.native_layer_norm_backward(
                    dn, c_all[t], (H,), lnc_stats[0, t], lnc_stats[1, t], lnc_w, None, _LN_MASK)[0]
            if peep is not None:
                dn.addcmul_(dz_t[:, 3 * H :], peep[2])
            dct = dn + dc
            if u_c is not None:
                dc_new = dct * u_c[t]
                carry_c = dct - dc_new
            else:
                dc_new, carry_c = dct, None
            torch.mul(dc_new.unsqueeze(1), f_ifg[t], out=dz_t[:, : 3 * H].view(B, 3, H))
            dc = dc_new * f[t]
            if peep is not None:
                dc.addcmul_(dz_t[:, :H], peep[0]).addcmul_(dz_t[:, H : 2 * H], peep[1])
            if carry_c is not None:
                dc += carry_c
            if lnh_w is not None:
                dhp[t] = torch.ops.aten.native_layer_norm_backward(
                    dz_t, hp_raw[t], (G,), lnh_stats[0, t], lnh_stats[1, t], lnh_w, None, _LN_MASK)[0]
            dh = torch.mm(dhp[t], w_hh)
            if m_rec is not None:
                dh.mul_(m_rec)
            if carry_h is not None:
                dh += carry_h
        # Parameter gradients: one reduction over all (T * B) rows each.
        r_all = hs[:-1] if m_rec is None else hs[:-1] * m_rec
        d_w_hh = dhp.reshape(T * B, G).t().mm(r_all.reshape(T * B, R))
        d_w_hr = dht.reshape(T * B, R).t().mm(q_all.reshape(T * B, H)) if w_hr is not None else None
        d_peep = None
        if peep is not None:
            d_peep = torch.stack((
                (dz[..., :H] * c_prev).sum((0, 1)),
                (dz[..., H : 2 * H] * c_prev).sum((0, 1)),
                (dz[..., 3 * H :] * c_all).sum((0, 1)),
            ))
        d_lnh_w = d_lnh_b = d_lnc_w = d_lnc_b = None
        if lnh_w is not None:
            z_hat = (hp_raw - lnh_stats[0]) * lnh_stats[1]
            d_lnh_w, d_lnh_b = (dz * z_hat).sum((0, 1)), dz.sum((0, 1))
            c_hat = (c_all - lnc_stats[0]) * lnc_stats[1]
            d_lnc_w, d_lnc_b = (dcn_all * c_hat).sum((0, 1)), dcn_all.sum((0, 1))
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
    """
    if (ln_hh is None) != (ln_c is None):
        raise ValueError("layer norm needs both ln_hh and ln_c (or neither)")
    lnh = ln_hh if ln_hh is not None else (None, None)
    lnc = ln_c if ln_c is not None else (None, None)
    return _Recurrence.apply(
        xp.contiguous(), h0.contiguous(), c0.contiguous(), weight_hh, weight_hr, peephole,
        lnh[0], lnh[1], lnc[0], lnc[1], update_c, update_h, valid, recurrent_mask,
    )
