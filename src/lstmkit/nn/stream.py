"""Streaming inference: one LSTM step per call, with the state kept between calls.

At batch 1 an LSTM step is one matrix-vector product per layer, bound by reading the weights
from cache (a few microseconds at H = 128), and a handful of element-wise gates; what a
per-step call of ``torch.nn.LSTM`` (or ``nn.LSTMCell``, or an ONNX runtime) adds on top is
dispatch, several times that. An :class:`LSTMStream` snapshots the weights of a unidirectional
``lstmkit.nn.LSTM`` or ``torch.nn.LSTM`` once, keeps ``(h, c)`` in preallocated buffers and
advances them with one call per step into one of three backends:

- ``"c"``: a small C kernel (``_stream_kernel.c``: one matrix-vector product per layer into
  blocks of accumulators held in registers, then the gates with a branch-free exp that
  vectorises), compiled on first use with the system compiler (``$LSTMKIT_CC``, else ``cc`` on
  ``PATH``) into ``$LSTMKIT_CACHE_DIR`` (default ``~/.cache/lstmkit``), the file named by a hash
  of the source, compiler, flags and CPU (:mod:`lstmkit.nn._stream_kernel` builds and loads it),
  and called through ``ctypes``: one foreign call per step, whatever the number of layers. float32 and float64, accumulating in that dtype; it differs from torch
  by rounding only (summation order, fused multiply-adds, exp to about an ulp).
- ``"numpy"``: the same layout in NumPy, one GEMV and eight in-place ufuncs per layer.
- ``"torch"``: the reference, any dtype and device, every variant; each layer runs
  :func:`lstmkit.nn.lstm_cell_step`, so the maths lives in one place.

``backend="auto"`` takes ``"c"`` when the model allows it and the kernel builds, else
``"numpy"`` (and logs why), and ``"torch"`` for models only it can run (peephole, layer norm or
zoneout; parameters off the CPU or not float32/float64). NumPy arrays in and out are the
fastest; tensors cost a conversion each way.

Semantics are eval mode's, whatever ``module.training`` says: torch's inter-layer dropout and the
locked dropouts are the identity, zoneout blends with its expectation ``1 - z`` (torch backend).
``forget_bias`` only initialises weights, so it needs nothing here. The weights are copied when
the stream is built: rebuild the stream after changing them. A stream holds mutable state: use
one per thread.

Layout shared by the C and NumPy backends (B batch, D input size, H hidden, R = proj_size or H,
L layers): one state row per batch element, ``[x | 1 | h_0 | 1 | h_1 | ... | 1 | h_{L-1}]``, so
layer ``l`` reads ``[input_l | 1 | h_l]`` as one contiguous slice and multiplies it by
``[W_ih | b_ih + b_hh | W_hh]``: bias included, one matrix product per layer, and the new
``h_l`` lands where layer ``l + 1`` reads its input.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from ..checks import check_int
from ._stream_kernel import BLOCK_BYTES, Ctx, KernelUnavailable, load_kernel
from .cell import LSTMState, lstm_cell_step, variant_parameters, zoneout_update
from .lstm import LSTM

__all__ = ["LSTMStream", "KernelUnavailable"]

logger = logging.getLogger(__name__)

Backend = Literal["auto", "c", "numpy", "torch"]
_BACKENDS = ("auto", "c", "numpy", "torch")
_FAST_DTYPES = (torch.float32, torch.float64)
_NP_DTYPES = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}
_LOGGED: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _LOGGED:
        _LOGGED.add(message)
        logger.warning(message)


class LSTMStream:
    """Step a unidirectional LSTM one input at a time, keeping its state.

    Args:
        lstm: an ``lstmkit.nn.LSTM`` or ``torch.nn.LSTM``, unidirectional, any number of layers,
            with or without ``proj_size``. Its weights are copied now.
        batch_size: B, the number of independent streams advanced together.
        backend: ``"auto"``, ``"c"``, ``"numpy"`` or ``"torch"`` (see the module docstring).
            ``backend`` then holds the one chosen.

    ``step(x_t)`` takes one time step, (B, D) or (D,) when B = 1, as a NumPy array or a CPU
    tensor (any device for ``"torch"``) of the stream's ``dtype``, and returns the top layer's
    output (B, R) or (R,), a new array or tensor like the input. ``state`` and ``reset(state)``
    use torch's ``(h, c)``, shapes (L, B, R) and (L, B, H), so a state moves freely between the
    stream and ``lstm(x, state)``. ``run(x)`` steps through (T, B, D) (or (T, D) when B = 1).
    """

    def __init__(self, lstm: LSTM | nn.LSTM, batch_size: int = 1, backend: Backend = "auto") -> None:
        if not isinstance(lstm, (LSTM, nn.LSTM)):
            raise TypeError(f"lstm must be an lstmkit.nn.LSTM or a torch.nn.LSTM, got {type(lstm).__name__}")
        if lstm.bidirectional:
            raise ValueError("a bidirectional LSTM cannot stream: its backward direction reads the sequence from "
                             "its end; stream a unidirectional model")
        batch_size = check_int("batch_size", batch_size)
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        weight = lstm.weight_ih_l0
        self.dtype: torch.dtype = weight.dtype
        self.device: torch.device = weight.device
        self.input_size, self.hidden_size, self.num_layers = lstm.input_size, lstm.hidden_size, lstm.num_layers
        self.proj_size, self.batch_size = lstm.proj_size, batch_size
        self._out_size = lstm.proj_size or lstm.hidden_size
        torch_only = _needs_torch(lstm, self.dtype, self.device)
        if backend in ("c", "numpy") and torch_only:
            raise ValueError(f"backend={backend!r} cannot run this model ({torch_only}); use backend='torch' or 'auto'")
        if backend == "auto":
            backend = "torch" if torch_only else "c"
            if backend == "c":
                try:
                    kernel = load_kernel()
                except KernelUnavailable as e:
                    _log_once(f"LSTMStream: falling back to the NumPy backend: {e}")
                    backend = "numpy"
        elif backend == "c":
            kernel = load_kernel()
        self.backend: str = backend
        if backend == "torch":
            self._impl = _TorchBackend(lstm, batch_size)
        else:
            layers = [_snapshot(lstm, layer) for layer in range(lstm.num_layers)]
            np_dtype = _NP_DTYPES[self.dtype]
            if backend == "numpy":
                self._impl = _NumpyBackend(layers, batch_size, self.input_size, np_dtype)
            else:
                self._impl = _CBackend(kernel, layers, batch_size, self.input_size, np_dtype)
        self._np_dtype = _NP_DTYPES.get(self.dtype)
        self._shapes = ((batch_size, self.input_size),) + (((self.input_size,),) if batch_size == 1 else ())

    def __repr__(self) -> str:
        return (f"LSTMStream(input_size={self.input_size}, hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
                f"proj_size={self.proj_size}, batch_size={self.batch_size}, dtype={self.dtype}, backend={self.backend!r})")

    # -- stepping -----------------------------------------------------------------------
    def step(self, x_t: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """x_t (B, D) or (D,) -> the top layer's output (B, R) or (R,); the state advances.

        A non-finite x_t raises ``ValueError`` and leaves the state as it was.
        """
        if isinstance(x_t, np.ndarray):
            if x_t.dtype != self._np_dtype:
                raise TypeError(f"x_t has dtype {x_t.dtype}, expected the stream's dtype {self.dtype}")
            is_tensor = False
        elif isinstance(x_t, Tensor):
            if x_t.dtype != self.dtype:
                raise TypeError(f"x_t has dtype {x_t.dtype}, expected the stream's dtype {self.dtype}")
            is_tensor = True
        else:
            raise TypeError(f"x_t must be a NumPy array or a torch Tensor, got {type(x_t).__name__}")
        if x_t.shape not in self._shapes:
            raise ValueError(f"x_t must have shape {self._shapes[0]} (batch_size, input_size)"
                             + (f" or {self._shapes[1]}" if len(self._shapes) > 1 else "")
                             + f", got {tuple(x_t.shape)}")
        return self._impl.step(x_t, is_tensor)

    def run(self, x: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """Step through x (T, B, D), or (T, D) when B = 1 -> top-layer outputs (T, B, R) or (T, R).

        The whole of x is checked first: on an error the state is left as it was.
        """
        is_tensor = self._check_type("x", x)
        if x.ndim != 3 and not (x.ndim == 2 and self.batch_size == 1) or tuple(x.shape[1:]) not in self._shapes:
            raise ValueError(f"x must have shape (T, {self.batch_size}, {self.input_size})"
                             + (f" or (T, {self.input_size})" if self.batch_size == 1 else "")
                             + f", got {tuple(x.shape)}")
        if not bool((torch.isfinite(x).all() if is_tensor else np.isfinite(x).all())):
            raise ValueError("x contains NaN or infinity; the state is unchanged")
        if x.shape[0] == 0:
            shape = tuple(x.shape[:-1]) + (self._out_size,)
            return x.new_zeros(shape) if is_tensor else np.zeros(shape, x.dtype)
        return self._impl.run(x, is_tensor)

    # -- state --------------------------------------------------------------------------
    @property
    def state(self) -> LSTMState:
        """A copy of the current ``(h, c)``: tensors (L, B, R) and (L, B, H) on the stream's device."""
        return self._impl.get_state()

    @state.setter
    def state(self, value) -> None:
        self.reset(value)

    def reset(self, state: tuple[np.ndarray | Tensor, np.ndarray | Tensor] | None = None) -> None:
        """Set the state to ``(h, c)`` (tensors or arrays, (L, B, R) and (L, B, H), or (L, R) and
        (L, H) when B = 1, of the stream's dtype), or to zeros when ``state`` is None."""
        L, B = self.num_layers, self.batch_size
        if state is None:
            self._impl.set_state(np.zeros((L, B, self._out_size)), np.zeros((L, B, self.hidden_size)))
            return
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError("state must be a pair (h, c) of tensors or arrays")
        pair = []
        for name, t, width in (("state[0] (h)", state[0], self._out_size), ("state[1] (c)", state[1], self.hidden_size)):
            is_tensor = self._check_type(name, t)
            if tuple(t.shape) == (L, width) and B == 1:
                t = t[:, None]
            if tuple(t.shape) != (L, B, width):
                raise ValueError(f"{name} must have shape {(L, B, width)} (num_layers, batch_size, size), got {tuple(t.shape)}")
            if not bool(torch.isfinite(t).all() if is_tensor else np.isfinite(t).all()):
                raise ValueError(f"{name} contains NaN or infinity")
            pair.append(t)
        self._impl.set_state(*pair)

    def _check_type(self, name: str, a) -> bool:
        """Raise unless ``a`` is an array or tensor of the stream's dtype; True for a tensor."""
        if isinstance(a, Tensor):
            if a.dtype != self.dtype:
                raise TypeError(f"{name} has dtype {a.dtype}, expected the stream's dtype {self.dtype}")
            return True
        if isinstance(a, np.ndarray):
            if a.dtype != self._np_dtype:
                raise TypeError(f"{name} has dtype {a.dtype}, expected the stream's dtype {self.dtype}")
            return False
        raise TypeError(f"{name} must be a NumPy array or a torch Tensor, got {type(a).__name__}")


# -- weights --------------------------------------------------------------------------------
def _snapshot(lstm: LSTM | nn.LSTM, layer: int) -> dict:
    """One layer's weights as float64 NumPy arrays (W_ih (4H, D_l), W_hh (4H, R), b (4H,) the sum
    of both biases, W_hr (R, H) or None), rounded to the model's dtype by each backend."""
    sfx = f"_l{layer}"
    get = lambda name: getattr(lstm, name + sfx).detach().to("cpu", torch.float64).numpy()  # noqa: E731
    w_ih, w_hh = get("weight_ih"), get("weight_hh")
    bias = get("bias_ih") + get("bias_hh") if lstm.bias else np.zeros(w_ih.shape[0])
    return {"w_ih": w_ih, "w_hh": w_hh, "bias": bias, "w_hr": get("weight_hr") if lstm.proj_size else None}


def _needs_torch(lstm, dtype: torch.dtype, device: torch.device) -> str:
    """Why only the torch backend can run this model ('' when the fast backends can)."""
    variant = getattr(lstm, "variant", None)
    if variant is not None:
        names = [n for n in ("peephole", "layer_norm") if getattr(variant, n)]
        names += ["zoneout"] if any(r > 0 for r in variant.zoneout_rates) else []
        if names:
            return f"variants {', '.join(names)}"
    if dtype not in _FAST_DTYPES:
        return f"dtype {dtype}; the fast backends run float32 and float64"
    if device.type != "cpu":
        return f"parameters on {device}; the fast backends run on the CPU"
    return ""


def _layout(batch: int, input_size: int, out_size: int, layers: int, dtype) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The state rows (B, D + L (1 + R)) with their 1-columns set, and each layer's
    (input offset, h offset) in a row."""
    buf = np.zeros((batch, input_size + layers * (1 + out_size)), dtype)
    offsets = []
    for layer in range(layers):
        one = input_size + layer * (1 + out_size)
        buf[:, one] = 1.0
        offsets.append((0 if layer == 0 else one - out_size, one + 1))
    return buf, offsets


class _ArrayBackend:
    """What the C and NumPy backends share: the state rows, reading and writing the state."""

    def __init__(self, layers: list[dict], batch: int, input_size: int, dtype) -> None:
        self.dtype, self.batch, self.input_size = dtype, batch, input_size
        self.hidden = layers[0]["w_hh"].shape[0] // 4
        self.out_size = layers[0]["w_hh"].shape[1]
        self.buf, self.offsets = _layout(batch, input_size, self.out_size, len(layers), dtype)
        self.c = np.zeros((len(layers), batch, self.hidden), dtype)
        top = self.offsets[-1][1]
        self.top = self.buf[:, top : top + self.out_size]  # -> (B, R), a view
        self.top1 = self.top[0]

    def h_view(self, layer: int) -> np.ndarray:
        off = self.offsets[layer][1]
        return self.buf[:, off : off + self.out_size]

    def get_state(self) -> LSTMState:
        h = np.stack([self.h_view(layer) for layer in range(len(self.c))])
        return LSTMState(torch.from_numpy(h), torch.from_numpy(self.c.copy()))

    def set_state(self, h, c) -> None:
        h, c = (t.detach().cpu().numpy() if isinstance(t, Tensor) else t for t in (h, c))
        for layer in range(len(self.c)):
            self.h_view(layer)[...] = h[layer]
        self.c[...] = c

    def output(self, one_d: bool, is_tensor: bool):
        out = self.top1.copy() if one_d else self.top.copy()
        return torch.from_numpy(out) if is_tensor else out

    def run(self, x, is_tensor: bool):
        xs = _as_cpu_array(x, "x") if is_tensor else x
        out = np.stack([self.step(xt, False) for xt in xs])
        return torch.from_numpy(out) if is_tensor else out


def _as_cpu_array(x: Tensor, name: str = "x_t") -> np.ndarray:
    if x.requires_grad:
        x = x.detach()
    try:
        return x.numpy()
    except TypeError:  # on an accelerator
        raise ValueError(f"{name} is on {x.device}; this backend runs on the CPU (pass a CPU tensor or an array)") from None


class _NumpyBackend(_ArrayBackend):
    """Per layer: ``z = [input | 1 | h] @ Wt`` with the gate columns ordered (i, f, o, g) and the
    sigmoid gates' columns halved (exact), so one ``tanh`` over z gives tanh(z_g) and
    sigmoid(z) = (tanh(z / 2) + 1) / 2 for the other three."""

    def __init__(self, layers, batch, input_size, dtype) -> None:
        super().__init__(layers, batch, input_size, dtype)
        H, B = self.hidden, batch
        order = np.r_[0 : 2 * H, 3 * H : 4 * H, 2 * H : 3 * H]  # (i, f, g, o) -> (i, f, o, g)
        scale = np.r_[np.full(3 * H, 0.5), np.ones(H)]
        self.layers = []
        for layer, (w, (in_off, h_off)) in enumerate(zip(layers, self.offsets)):
            cat = np.concatenate([w["w_ih"], w["bias"][:, None], w["w_hh"]], axis=1)  # -> (4H, K)
            wt = np.ascontiguousarray((cat[order] * scale[:, None]).T, dtype)  # -> (K, 4H)
            z, tmp = np.zeros((B, 4 * H), dtype), np.zeros((B, H), dtype)
            gates = (z[:, : 3 * H], z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :])
            wr = None if w["w_hr"] is None else np.ascontiguousarray(w["w_hr"].T, dtype)  # -> (H, R)
            op = self.buf[:, in_off : h_off + self.out_size]
            self.layers.append((op, wt, z, gates, self.c[layer], tmp, wr, self.h_view(layer)))
        self.x = self.buf[:, :input_size]

    def step(self, x, is_tensor: bool):
        if is_tensor:
            x = _as_cpu_array(x)
        if np.count_nonzero(np.isfinite(x)) != x.size:  # half the cost of np.isfinite(x).all()
            raise ValueError("x_t contains NaN or infinity; the state is unchanged")
        self.x[...] = x  # (D,) broadcasts over the single row
        mul, add, tanh, matmul = np.multiply, np.add, np.tanh, np.matmul
        for op, wt, z, (sig, i, f, o, g), c, tmp, wr, h in self.layers:
            matmul(op, wt, out=z)  # -> (B, 4H)
            tanh(z, out=z)
            mul(sig, 0.5, out=sig)
            add(sig, 0.5, out=sig)  # i, f, o = sigmoid(z_i, z_f, z_o)
            mul(c, f, out=c)
            mul(i, g, out=tmp)
            add(c, tmp, out=c)  # c = f c + i g
            tanh(c, out=tmp)
            if wr is None:
                mul(o, tmp, out=h)
            else:
                mul(o, tmp, out=tmp)
                matmul(tmp, wr, out=h)  # -> (B, R)
        return self.output(x.ndim == 1, is_tensor)


class _CBackend(_ArrayBackend):
    """The compiled kernel: weights transposed into column blocks, one call per step."""

    def __init__(self, kernel: ctypes.CDLL, layers, batch, input_size, dtype) -> None:
        super().__init__(layers, batch, input_size, dtype)
        H, R, B = self.hidden, self.out_size, batch
        sfx = "f32" if dtype == np.float32 else "f64"
        block = BLOCK_BYTES // np.dtype(dtype).itemsize
        zld = -(-4 * H // block) * block
        pld = -(-R // block) * block if layers[0]["w_hr"] is not None else 0
        self.weights, self.proj = [], []
        for w in layers:
            cat = np.concatenate([w["w_ih"], w["bias"][:, None], w["w_hh"]], axis=1)  # -> (4H, K)
            self.weights.append(_column_blocks(cat, zld, block, dtype))
            if pld:
                self.proj.append(_column_blocks(w["w_hr"], pld, block, dtype))
        self.x = np.zeros((B, input_size), dtype)
        self.z = np.zeros((B, zld), dtype)
        self.hh = np.zeros((B, H), dtype)
        self.pz = np.zeros((B, max(pld, 1)), dtype)
        (w, self._w), (wr, self._wr) = _pointers(self.weights), _pointers(self.proj)  # tables kept alive
        self.ctx = Ctx(B, input_size, H, R, len(layers), self.buf.shape[1], zld, pld,
                       self.x.ctypes.data, self.buf.ctypes.data, self.c.ctypes.data, self.z.ctypes.data,
                       self.hh.ctypes.data, self.pz.ctypes.data, w, wr)
        self.ctx_ref = ctypes.byref(self.ctx)
        self.kernel = getattr(kernel, f"lstmkit_stream_step_{sfx}")
        self.kernel_run = getattr(kernel, f"lstmkit_stream_run_{sfx}")

    def step(self, x, is_tensor: bool):
        if is_tensor:
            x = _as_cpu_array(x)
        self.x[...] = x  # (D,) broadcasts over the single row
        if self.kernel(self.ctx_ref) != 1:  # the kernel checks x before touching the state
            raise ValueError("x_t contains NaN or infinity; the state is unchanged")
        return self.output(x.ndim == 1, is_tensor)

    def run(self, x, is_tensor: bool):
        xs = np.ascontiguousarray(_as_cpu_array(x, "x") if is_tensor else x)
        out = np.empty(xs.shape[:-1] + (self.out_size,), self.dtype)
        done = self.kernel_run(self.ctx_ref, xs.ctypes.data, out.ctypes.data, xs.shape[0])
        if done != xs.shape[0]:  # run() checked x already; only a concurrent change gets here
            raise ValueError(f"x contains NaN or infinity at step {done}; the state is after step {done - 1}")
        return torch.from_numpy(out) if is_tensor else out


def _column_blocks(w: np.ndarray, n: int, block: int, dtype) -> np.ndarray:
    """W (N, K) -> W^T zero-padded to (K, n), stored as (n / block, K, block) contiguous."""
    wt = np.zeros((w.shape[1], n), dtype)
    wt[:, : w.shape[0]] = w.T
    return np.ascontiguousarray(wt.reshape(w.shape[1], n // block, block).transpose(1, 0, 2))


def _pointers(arrays: list[np.ndarray]):
    """A C array of the arrays' data pointers: (pointer to it, the table that owns it)."""
    table = (ctypes.c_void_p * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])
    return ctypes.cast(table, ctypes.POINTER(ctypes.c_void_p)), table


class _TorchBackend:
    """The reference: :func:`lstm_cell_step` per layer, on the model's device and dtype."""

    def __init__(self, lstm, batch: int) -> None:
        p = next(lstm.parameters())
        self.dtype, self.device = p.dtype, p.device
        variant = getattr(lstm, "variant", None)
        z_c, z_h = variant.zoneout_rates if variant is not None else (0.0, 0.0)
        H, R = lstm.hidden_size, lstm.proj_size or lstm.hidden_size
        like = torch.empty((), dtype=p.dtype, device=p.device)
        self.layers = []
        for layer in range(lstm.num_layers):
            sfx = f"_l{layer}"
            get = lambda name: getattr(lstm, name + sfx).detach().clone()  # noqa: E731
            kw = {"weight_hr": get("weight_hr") if lstm.proj_size else None}
            if variant is not None:
                kw.update({k: (tuple(t.detach().clone() for t in v) if isinstance(v, tuple) else v.detach().clone())
                           for k, v in variant_parameters(lstm, sfx, variant).items()})
            kw["update_c"] = zoneout_update(z_c, (batch, H), like, False)
            kw["update_h"] = zoneout_update(z_h, (batch, R), like, False)
            biases = (get("bias_ih"), get("bias_hh")) if lstm.bias else (None, None)
            self.layers.append(((get("weight_ih"), get("weight_hh")) + biases, kw))
        self.h = torch.zeros(lstm.num_layers, batch, R, dtype=p.dtype, device=p.device)
        self.c = torch.zeros(lstm.num_layers, batch, H, dtype=p.dtype, device=p.device)

    def _advance(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            for layer, (weights, kw) in enumerate(self.layers):
                x, c = lstm_cell_step(x, self.h[layer], self.c[layer], *weights, **kw)
                self.h[layer], self.c[layer] = x, c
        return x

    def _tensor(self, x, is_tensor: bool) -> Tensor:
        x = x.detach() if is_tensor else torch.from_numpy(x)
        return x.to(self.device)

    def step(self, x, is_tensor: bool):
        x = self._tensor(x, is_tensor)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x_t contains NaN or infinity; the state is unchanged")
        y = self._advance(x.reshape(-1, x.shape[-1]))
        y = y[0] if x.dim() == 1 else y
        return y if is_tensor else y.cpu().numpy()

    def run(self, x, is_tensor: bool):
        x = self._tensor(x, is_tensor)
        y = torch.stack([self._advance(xt.reshape(-1, xt.shape[-1])) for xt in x])
        y = y.reshape(*x.shape[:-1], y.shape[-1])
        return y if is_tensor else y.cpu().numpy()

    def get_state(self) -> LSTMState:
        return LSTMState(self.h.clone(), self.c.clone())

    def set_state(self, h, c) -> None:
        self.h.copy_(torch.as_tensor(h))
        self.c.copy_(torch.as_tensor(c))
