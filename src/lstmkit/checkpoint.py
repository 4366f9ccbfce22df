"""Safe model files: weights in safetensors, everything else in JSON; never a pickle.

``save_checkpoint(dir, state_dict, meta)`` writes ``model.safetensors`` and ``model.json``
atomically (each written to a temporary file in the same directory, flushed, then renamed).
``model.json`` records the SHA-256 of the weights file, so ``load_checkpoint`` detects a
truncated, corrupted or swapped weights file before anything is built from it. A pickle or
``torch.save`` archive put where the weights belong is recognised by its first bytes and refused
without being read further: nothing a user hands us is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

__all__ = ["save_checkpoint", "load_checkpoint", "atomic_write_bytes", "WEIGHTS", "META", "FORMAT_VERSION"]

WEIGHTS, META = "model.safetensors", "model.json"
FORMAT_VERSION = 1


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write then rename: readers see the old file or the whole new one, never half of it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(directory: str | os.PathLike, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``model.safetensors`` (the tensors) and ``model.json`` (``meta`` + integrity data)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    blob = st_save(tensors)
    try:
        meta_text = json.dumps({"format_version": FORMAT_VERSION, "weights_sha256": hashlib.sha256(blob).hexdigest(),
                                "meta": meta}, indent=1, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"meta must be JSON-serialisable (no NaN/inf): {e}") from None
    atomic_write_bytes(directory / WEIGHTS, blob)
    atomic_write_bytes(directory / META, meta_text.encode())


def _refuse_foreign(path: Path, head: bytes) -> None:
    if head[:1] == b"\x80":
        raise ValueError(f"{path} is a Python pickle, refused without unpickling: lstmkit reads safetensors only")
    if head[:2] == b"PK":
        raise ValueError(f"{path} is a zip (torch.save) archive, refused without unpickling: lstmkit reads safetensors only")


def load_checkpoint(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Read and verify a checkpoint written by :func:`save_checkpoint`; returns (state_dict, meta)."""
    directory = Path(directory)
    try:
        device = torch.device(map_location)
    except (RuntimeError, TypeError):
        raise ValueError(f"map_location must be a device such as 'cpu' or 'cuda:0', got {map_location!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"map_location {map_location!r} asks for CUDA, which is not available here")
    weights, meta_path = directory / WEIGHTS, directory / META
    for p in (weights, meta_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} is missing: a checkpoint directory holds {WEIGHTS} and {META}")
    blob = weights.read_bytes()
    _refuse_foreign(weights, blob[:2])
    try:
        info = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{meta_path} is not valid JSON ({e})") from None
    except RecursionError:
        raise ValueError(f"{meta_path} is not an lstmkit checkpoint description (nested too deeply)") from None
    if not isinstance(info, dict) or type(info.get("format_version")) is not int \
            or info["format_version"] != FORMAT_VERSION or not isinstance(info.get("weights_sha256"), str):
        raise ValueError(f"{meta_path} is not an lstmkit checkpoint description (format_version {FORMAT_VERSION})")
    meta = info.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}: 'meta' must be a JSON object, got {type(meta).__name__}")
    if hashlib.sha256(blob).hexdigest() != info["weights_sha256"]:
        raise ValueError(f"{weights} does not match the SHA-256 recorded in {meta_path}: truncated, corrupted or replaced")
    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError) as e:
        raise ValueError(f"{weights} is not a valid safetensors file ({e})") from None
    return {k: v.to(device) for k, v in tensors.items()}, meta
