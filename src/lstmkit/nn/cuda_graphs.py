"""The variants' recurrence on CUDA, replayed from CUDA graphs instead of launched op by op.

Why graphs. :mod:`lstmkit.nn.recurrence` runs a variant layer (peephole, layer norm, zoneout,
recurrent dropout, projection) as ~10 kernels per step forward and ~20 backward. On a GPU each
launch costs a few microseconds of CPU time while the kernels themselves, at (B, H) sized
tensors, take about as long or less: the loop is launch-bound, not bandwidth- or FLOP-bound.
A CUDA graph records the whole T-step forward (and, separately, the whole backward) once and
replays it with one launch, so the per-step CPU cost disappears while every kernel -- and so
every number -- stays exactly the one the eager path computes on the GPU. The alternatives were
weighed against that: a fused Triton step kernel removes launches only for the element-wise
part (the matrix products stay separate launches) and needs a forward and a backward kernel per
variant combination, each a second implementation of the maths to keep in step with the
reference; ``torch.compile`` of the step unrolls T steps at compile time. Graphs need neither a
new dependency nor a second implementation.

What graphs need, and how it is met:

- fixed shapes and addresses: one captured pair (forward, backward) per *key* -- the shapes and
  dtypes of every input and which optional inputs are present -- with the inputs copied into
  the pair's static buffers before each replay and the outputs (and input gradients) cloned out
  of them after it. A key is captured the second time it is seen (a shape met once, such as a
  ragged last batch, runs eagerly), and at most :data:`MAX_ENTRIES` pairs are kept (least
  recently used dropped first), and a pair is captured only where the device has room for it
  (about :data:`ROOM` times the input projections' size; least recently used pairs of any key
  are dropped to make it, else the call runs eagerly);
- no second forward over activations a backward still needs: a pair whose forward output is
  still waiting for its backward is *busy*; a call that finds every pair of its key busy (the
  next layer or direction of the same model, an LSTM called twice in one step) captures another
  pair, up to :data:`PER_KEY`, then runs eagerly. A backward whose activations were nonetheless
  overwritten (``retain_graph=True`` and a second backward after another forward) raises instead
  of returning wrong gradients;
- no randomness and no host synchronisation inside: the dropout and zoneout masks are drawn by
  the caller and are inputs, and the recurrence never reads a value back to the CPU.

Dispatch is by :func:`wanted`: CUDA tensors only (the CPU path is untouched), not while a
stream is already being captured, not under ``torch.inference_mode`` and not when
``LSTMKIT_CUDA_GRAPHS=0``. The graph object is
pluggable (:data:`GRAPH`): the tests run this module on the CPU with :class:`EagerGraph`, which
"replays" by re-running the recorded function into the same output buffers, so the keying,
static buffers, busy pairs and gradients are checked without a GPU.
"""

from __future__ import annotations

import os
import weakref
from collections import OrderedDict
from typing import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["wanted", "graphed_recurrence", "clear", "CudaGraph", "EagerGraph", "MAX_ENTRIES", "PER_KEY"]

MAX_ENTRIES = 16  # captured (forward, backward) pairs kept, all keys together
PER_KEY = 8  # pairs of one key (layers and directions of one model share a key)
CAPTURE_AFTER = 2  # a key is captured the n-th time it is seen
ROOM = 8  # device memory a new pair needs, in multiples of its (T, B, 4H) input: activations, static buffers


class CudaGraph:
    """One ``torch.cuda.CUDAGraph``: warm up on a side stream, capture ``fn``, replay."""

    def __init__(self, pool=None) -> None:
        self.graph, self.pool = None, pool

    def capture(self, fn: Callable[[], Sequence]) -> Sequence:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # cuBLAS handles and workspaces exist before the capture
            fn()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=self.pool):
            out = fn()
        return out

    def replay(self) -> None:
        self.graph.replay()

    def memory_pool(self):
        return self.graph.pool()


class EagerGraph:
    """The stand-in the CPU tests use: "replay" re-runs ``fn`` and writes into the captured outputs."""

    def __init__(self, pool=None) -> None:
        self.fn, self.out = None, None

    def capture(self, fn: Callable[[], Sequence]) -> Sequence:
        self.fn, self.out = fn, fn()
        return self.out

    def replay(self) -> None:
        for static, new in zip(self.out, self.fn()):
            if static is not None:
                static.copy_(new)

    def memory_pool(self):
        return None


GRAPH: type = CudaGraph


def wanted(x: Tensor) -> bool:
    """Whether the recurrence over ``x`` goes through graphs: CUDA, not inside a capture, not turned off."""
    if not x.is_cuda or os.environ.get("LSTMKIT_CUDA_GRAPHS", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    # under inference_mode the static buffers would be inference tensors, unusable by a later training step
    return not torch.is_inference_mode_enabled() and not torch.cuda.is_current_stream_capturing()


class _Ctx:
    """Stands in for autograd's ctx while the recurrence's forward and backward are captured."""

    def save_for_backward(self, *tensors: Tensor | None) -> None:
        self.saved_tensors = tensors


class _Token:
    """Lives as long as the autograd node whose backward still needs a pair's activations."""


class _Pair:
    """One captured forward and (captured on first use) backward, with their static buffers."""

    def __init__(self, function, inputs: Sequence[Tensor | None]) -> None:
        self.function = function
        self.inputs = [None if t is None else torch.empty(t.shape, dtype=t.dtype, device=t.device) for t in inputs]
        self._load(self.inputs, inputs)
        self.ctx = _Ctx()
        self.fwd = GRAPH()
        with torch.no_grad():
            self.outputs = self.fwd.capture(lambda: function.forward(self.ctx, *self.inputs))
        self.bwd = self.grads = self.d_inputs = None
        self.owner: weakref.ref | None = None
        self.generation = 0

    @staticmethod
    def _load(static: Sequence[Tensor | None], values: Sequence[Tensor | None]) -> None:
        for s, v in zip(static, values):
            if s is not None:
                s.copy_(v)

    def busy(self) -> bool:
        return self.owner is not None and self.owner() is not None

    def forward(self, inputs: Sequence[Tensor | None]) -> list[Tensor]:
        self._load(self.inputs, inputs)
        self.fwd.replay()
        self.generation += 1
        return [o.clone() for o in self.outputs]

    def backward(self, grads: Sequence[Tensor]) -> list[Tensor | None]:
        if self.bwd is None:
            self.grads = [torch.empty(g.shape, dtype=g.dtype, device=g.device) for g in grads]
            self._load(self.grads, grads)
            backward = getattr(self.function.backward, "__wrapped__", self.function.backward)
            self.bwd = GRAPH(self.fwd.memory_pool())
            with torch.no_grad():
                self.d_inputs = self.bwd.capture(lambda: backward(self.ctx, *self.grads))
        else:
            self._load(self.grads, grads)
        self.bwd.replay()
        return [None if d is None else d.clone() for d in self.d_inputs]


class _Graphed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pair: _Pair, *inputs):
        out = pair.forward(inputs)
        ctx.pair, ctx.generation = pair, pair.generation
        if any(t is not None and t.requires_grad for t in inputs):
            ctx.token = _Token()
            pair.owner = weakref.ref(ctx.token)
        return tuple(out)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        pair = ctx.pair
        if pair.generation != ctx.generation:
            raise RuntimeError("the CUDA-graphed LSTM recurrence ran forward again before this backward, which "
                               "overwrote the activations it needs (a second backward with retain_graph=True?); "
                               "set LSTMKIT_CUDA_GRAPHS=0 for this use")
        d_inputs = pair.backward(grads)
        pair.owner = None
        return (None, *d_inputs)


_pairs: OrderedDict[tuple, list[_Pair]] = OrderedDict()
_seen: dict[tuple, int] = {}


def clear() -> None:
    """Drop every captured graph (their memory pools go back to the allocator)."""
    _pairs.clear()
    _seen.clear()


def _key(inputs: Sequence[Tensor | None]) -> tuple:
    return tuple(None if t is None else (tuple(t.shape), t.dtype, str(t.device)) for t in inputs)


def _free_pair(function, key: tuple, inputs: Sequence[Tensor | None]) -> _Pair | None:
    """A pair of ``key`` that is not busy, captured now if needed; None: run eagerly."""
    pairs = _pairs.get(key)
    if pairs is None:
        _seen[key] = _seen.get(key, 0) + 1
        if _seen[key] < CAPTURE_AFTER:
            return None
        pairs = _pairs[key] = []
    _pairs.move_to_end(key)
    for pair in pairs:
        if not pair.busy():
            return pair
    if len(pairs) >= PER_KEY:
        return None
    while sum(len(p) for p in _pairs.values()) >= MAX_ENTRIES and _evict(key):
        pass
    if sum(len(p) for p in _pairs.values()) >= MAX_ENTRIES or not _room(inputs[0]):
        return None
    pair = _Pair(function, inputs)
    pairs.append(pair)
    return pair


def _available(device: torch.device) -> int:
    """Bytes a capture can use: free on the device plus cached by torch's allocator but unused."""
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def _room(xp: Tensor) -> bool:
    """Whether a pair for the input projections ``xp`` fits, after dropping unused pairs if needed."""
    if not xp.is_cuda:
        return True
    needed = ROOM * xp.numel() * xp.element_size()
    while _available(xp.device) < needed and _evict(None):
        pass
    return _available(xp.device) >= needed


def _evict(keep: tuple | None) -> bool:
    """Drop the least recently used pair that is not busy (never one of ``keep``); whether one was."""
    for key, pairs in _pairs.items():
        if key == keep:
            continue
        for pair in pairs:
            if not pair.busy():
                pairs.remove(pair)
                if not pairs:
                    del _pairs[key]
                return True
    return False


def graphed_recurrence(function, inputs: Sequence[Tensor | None]) -> tuple[Tensor, ...] | None:
    """``function.apply(*inputs)`` (an autograd Function with static ``forward(ctx, ...)`` and
    ``backward(ctx, ...)``) replayed from captured graphs, or None where this call must run
    eagerly (a shape seen for the first time, or every pair of its key busy)."""
    key = _key(inputs)
    pair = _free_pair(function, key, inputs)
    if pair is None:
        return None
    return _Graphed.apply(pair, *inputs)
