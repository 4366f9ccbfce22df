"""A NumPy LSTM layer with forward and hand-written backpropagation through time (BPTT).

The readable proof of the math; the tests check it against torch's autograd and against
finite differences. One layer, one direction, torch's gate order (i, f, g, o) and weight
shapes, so ``weight_ih`` (4H, D), ``weight_hh`` (4H, H), ``bias_ih``/``bias_hh`` (4H,) copy
straight from ``torch.nn.LSTM``'s ``*_l0`` parameters. Arrays are time-major: x (T, B, D).

Forward, for t = 1..T (sigma = logistic sigmoid, * = element-wise product):
    z_t = x_t W_ih^T + h_{t-1} W_hh^T + b_ih + b_hh          (B, 4H) = [a_i | a_f | a_g | a_o]
    i_t = sigma(a_i)   f_t = sigma(a_f)   g_t = tanh(a_g)   o_t = sigma(a_o)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

Backward, given dL/dh_t from the outputs (dy_t) and dL/dh_T, dL/dc_T from the final state,
for t = T..1, with dh and dc carrying the gradient from step t+1:
    dh_t  = dy_t + dh                                    (output and recurrent paths)
    do_t  = dh_t * tanh(c_t)
    dc_t  = dc + dh_t * o_t * (1 - tanh(c_t)^2)
    df_t  = dc_t * c_{t-1};  di_t = dc_t * g_t;  dg_t = dc_t * i_t
    da_i  = di_t * i_t (1 - i_t);  da_f = df_t * f_t (1 - f_t)
    da_g  = dg_t * (1 - g_t^2);    da_o = do_t * o_t (1 - o_t)
    dz_t  = [da_i | da_f | da_g | da_o]
    dW_ih += dz_t^T x_t;  dW_hh += dz_t^T h_{t-1};  db_ih += sum_b dz_t;  db_hh += sum_b dz_t
    dx_t  = dz_t W_ih
    dh    = dz_t W_hh            (to step t-1)
    dc    = dc_t * f_t           (to step t-1)
and finally dh_0 = dh, dc_0 = dc.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LSTMParams", "lstm_forward", "lstm_backward"]


@dataclass
class LSTMParams:
    weight_ih: np.ndarray  # (4H, D)
    weight_hh: np.ndarray  # (4H, H)
    bias_ih: np.ndarray  # (4H,)
    bias_hh: np.ndarray  # (4H,)

    @classmethod
    def from_torch(cls, module, layer: int = 0) -> "LSTMParams":
        """Copy one layer's weights out of a torch-compatible LSTM (as float64 arrays)."""
        get = lambda name: getattr(module, f"{name}_l{layer}").detach().cpu().double().numpy().copy()  # noqa: E731
        return cls(get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"))


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # stable for large |a|


def lstm_forward(x: np.ndarray, h0: np.ndarray, c0: np.ndarray, p: LSTMParams):
    """x (T, B, D), h0 and c0 (B, H) -> (y (T, B, H), h_T, c_T, cache)."""
    if x.ndim != 3:
        raise ValueError(f"x must be (T, B, D), got shape {x.shape}")
    T = x.shape[0]
    H = p.weight_hh.shape[1]
    hs = [h0]
    cs = [c0]
    gates = []
    for t in range(T):
        z = x[t] @ p.weight_ih.T + hs[-1] @ p.weight_hh.T + p.bias_ih + p.bias_hh
        i, f = _sigmoid(z[:, :H]), _sigmoid(z[:, H : 2 * H])
        g, o = np.tanh(z[:, 2 * H : 3 * H]), _sigmoid(z[:, 3 * H :])
        c = f * cs[-1] + i * g
        h = o * np.tanh(c)
        gates.append((i, f, g, o))
        hs.append(h)
        cs.append(c)
    y = np.stack(hs[1:])
    cache = {"x": x, "hs": hs, "cs": cs, "gates": gates, "params": p}
    return y, hs[-1], cs[-1], cache


def lstm_backward(dy: np.ndarray, dh_T: np.ndarray, dc_T: np.ndarray, cache) -> dict[str, np.ndarray]:
    """Gradients of a loss L given dL/dy (T, B, H), dL/dh_T and dL/dc_T (B, H).

    Returns ``x``, ``h0``, ``c0``, ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``.
    """
    x, hs, cs, gates, p = cache["x"], cache["hs"], cache["cs"], cache["gates"], cache["params"]
    T = x.shape[0]
    grads = {name: np.zeros_like(getattr(p, name)) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    dx = np.zeros_like(x)
    dh, dc = dh_T.copy(), dc_T.copy()
    for t in reversed(range(T)):
        i, f, g, o = gates[t]
        c_prev, c = cs[t], cs[t + 1]
        tc = np.tanh(c)
        dh_t = dy[t] + dh
        do = dh_t * tc
        dc_t = dc + dh_t * o * (1.0 - tc**2)
        df, di, dg = dc_t * c_prev, dc_t * g, dc_t * i
        dz = np.concatenate(
            [di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g**2), do * o * (1.0 - o)], axis=1
        )
        grads["weight_ih"] += dz.T @ x[t]
        grads["weight_hh"] += dz.T @ hs[t]
        grads["bias_ih"] += dz.sum(0)
        grads["bias_hh"] += dz.sum(0)
        dx[t] = dz @ p.weight_ih
        dh = dz @ p.weight_hh
        dc = dc_t * f
    grads.update(x=dx, h0=dh, c0=dc)
    return grads
