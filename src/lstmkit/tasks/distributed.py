"""Data-parallel training on PyTorch's own engine: ``torch.distributed`` (gloo on CPU, NCCL on
GPU), ``DistributedDataParallel`` for the gradient all-reduce, and ``torch.distributed.run``
(torchrun) as the launcher. Nothing here is a home-made communication layer.

``lstmkit train CONFIG --devices N --strategy ddp`` re-executes the same command line under
``python -m torch.distributed.run --standalone --nproc-per-node N``; each worker then finds
torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``),
joins the process group and trains. For several machines, start torchrun yourself on each node
(``docs/distributed.md``): a command that already runs under torchrun is not re-launched.

How a step is split: every rank builds the same batches in the same order (same seed), and each
takes its contiguous share of every batch's rows. Its mean loss is weighted by
``rows_on_this_rank * world / rows_in_batch`` before backward, so DDP's averaged gradient is
exactly the gradient of the whole batch's mean loss: the same steps, batch size and learning
rate as one process. Without dropout the run equals the single-process run up to floating-point
summation order (tested); with dropout each rank draws its own masks (rank r re-seeds with the
seed + r after DDP has broadcast rank 0's initial weights), so runs agree in distribution, not
bit for bit. A rank whose share is empty (a batch smaller than the world) runs one row with
weight 0. Validation runs in full on every rank
(same weights, same data, so the same decisions: plateau, early stopping, best epoch); only
rank 0 writes the run directory.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Sequence

import torch
from torch import Tensor, nn

from ..checks import check_int

__all__ = ["STRATEGIES", "world", "launch", "init_from_env", "shard", "under_launcher", "wrap_model"]

log = logging.getLogger(__name__)

STRATEGIES = ("ddp",)


def world() -> tuple[int, int]:
    """(rank, world size) of the current process group; (0, 1) when not distributed."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def under_launcher() -> bool:
    """True inside a process started by torchrun (or any launcher setting its variables)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def launch(argv: Sequence[str], devices: int) -> int:
    """Run ``lstmkit <argv>`` in ``devices`` worker processes on this machine through torchrun;
    returns the launcher's exit code."""
    devices = check_int("devices", devices, minimum=2)
    if torch.cuda.is_available() and torch.cuda.device_count() < devices:
        raise ValueError(f"--devices {devices} but only {torch.cuda.device_count()} CUDA device(s) are visible")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={devices}",
           "-m", "lstmkit", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    log.info("launching %d workers: %s", devices, " ".join(cmd))
    return subprocess.run(cmd, env=env).returncode


def init_from_env(device: str, strategy: str = "ddp") -> tuple[int, int]:
    """Join the process group torchrun described (gloo for CPU, NCCL for CUDA); returns
    (rank, world size). CUDA workers take the GPU of their LOCAL_RANK."""
    import torch.distributed as dist

    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if not under_launcher():
        raise ValueError("distributed training needs torchrun's RANK, WORLD_SIZE and LOCAL_RANK; run "
                         "`lstmkit train ... --devices N` or start it under torchrun")
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size()


def shard(batch: Sequence, rank: int, world_size: int) -> tuple[tuple, float]:
    """(this rank's rows of the batch, loss weight). Every tensor whose first dimension is the
    batch size is split into contiguous shares; other items pass through. The weight makes the
    DDP average of the ranks' weighted mean losses equal the whole batch's mean loss."""
    first = next((t for t in batch if isinstance(t, Tensor) and t.dim() > 0), None)
    if first is None:
        raise ValueError("a batch to shard needs at least one tensor with a batch dimension")
    n = first.shape[0]
    index = torch.tensor_split(torch.arange(n), world_size)[rank]
    weight = len(index) * world_size / n
    if len(index) == 0:  # more ranks than rows: run one row without effect on the gradient
        index, weight = torch.arange(1), 0.0
    index = index.to(first.device)
    out = tuple(t.index_select(0, index) if isinstance(t, Tensor) and t.dim() > 0 and t.shape[0] == n else t
                for t in batch)
    return out, weight


class _Methods(nn.Module):
    """Calls ``model(...)`` or one of its methods (``model.loss(...)``, ``model.nll(...)``) as this
    module's forward, so that a task's loss that calls a model method still runs through DDP's
    forward, which is what makes DDP average the gradients."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, method: str | None, *args, **kwargs):
        return (self.model if method is None else getattr(self.model, method))(*args, **kwargs)


class _DistributedModel:
    """What a task's loss sees under torch.distributed: the model, called or asked for a method, with
    every call going through DistributedDataParallel; attributes that are not methods are the model's."""

    def __init__(self, ddp: nn.Module, model: nn.Module) -> None:
        self._ddp, self._model = ddp, model

    def __call__(self, *args, **kwargs):
        return self._ddp(None, *args, **kwargs)

    def __getattr__(self, name: str):
        value = getattr(self._model, name)
        if callable(value) and not isinstance(value, nn.Module):
            return lambda *args, **kwargs: self._ddp(name, *args, **kwargs)
        return value


def wrap_model(model: nn.Module, device: torch.device, rank: int) -> _DistributedModel:
    """``model`` wrapped in DistributedDataParallel for the training steps of rank ``rank``."""
    from torch.nn.parallel import DistributedDataParallel

    ddp = DistributedDataParallel(_Methods(model), device_ids=[device.index] if device.type == "cuda" else None)
    if rank:  # the same initial weights (DDP broadcasts rank 0's), but each rank its own dropout masks
        torch.manual_seed(torch.initial_seed() + rank)
    return _DistributedModel(ddp, model)
