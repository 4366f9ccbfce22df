r"""Safe model files: weights in safetensors, everything else in JSON; never a pickle.

``save_checkpoint(dir, state_dict, meta)`` writes ``model.safetensors`` and ``model.json``
atomically (each written to a temporary file in the same directory, flushed, then renamed), with
the permissions of any other file the user creates (``0o666`` less the umask).

``model.json`` (format 2) is ``{"format_version": 2, "weights_sha256": W, "sha256": S,
"meta": {...}}``: ``W`` is the hex SHA-256 of ``model.safetensors`` and ``S`` the hex SHA-256 of
``b"lstmkit-checkpoint-2\n" + W.encode() + b"\n" + canonical(meta)``, where ``canonical(meta)``
is ``json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False,
ensure_ascii=True).encode()``. So ``load_checkpoint`` detects a truncated, corrupted or swapped
weights file *and* an edited description (classes, normalisation statistics, pooling,
architecture: everything a prediction depends on) before anything is built from them.
Format 1, written by older versions (``{"format_version": 1, "weights_sha256": W, "meta": {...}}``),
still loads; only its weights are checked, its ``meta`` is not covered by any hash.

A file put where the weights belong is first checked for the shape of a safetensors file: its first
8 bytes are a little-endian u64 ``N``, it is at least ``8 + N`` bytes long, and those ``N`` bytes
(the header) open a JSON object.
Anything else is refused without being read further and named by its first bytes: a pickle
(``0x80`` and a protocol byte), a zip such as a ``torch.save`` archive, or not a safetensors file.
Nothing a user hands us is ever unpickled.

Training checkpoints (everything a run needs to continue bit for bit, written as files of this
format plus a manifest) are :mod:`lstmkit.checkpoint.train_state`. The atomic writers are here
too: :func:`atomic_write_bytes` (a file) and :func:`atomic_write_dir` (a folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

__all__ = ["save_checkpoint", "load_checkpoint", "atomic_write_bytes", "atomic_write_dir", "WEIGHTS", "META",
           "FORMAT_VERSION"]

WEIGHTS, META = "model.safetensors", "model.json"
FORMAT_VERSION = 2  # written; 1 and 2 are read
_HEADER_START = re.compile(rb"[ \t\r\n]*\{")  # safetensors' header: a JSON object (blanks allowed around it)
_NOT_SAFETENSORS = "is not a safetensors file"


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (Linux), else set and restored."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write then rename: readers see the old file or the whole new one, never half of it. The file
    gets the mode any other new file of the user's gets (``0o666`` less the umask), not mkstemp's 0600."""
    path = Path(path)
    if not path.parent.is_dir():  # else mkstemp's error would name its temporary file, not the user's path
        raise FileNotFoundError(f"cannot write {path}: directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o666 & ~_umask())
            else:  # pragma: no cover - Windows: only the read-only bit exists
                os.chmod(tmp, 0o666 & ~_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_dir(out: str | os.PathLike, files: dict[str, bytes]) -> None:
    """The folder ``out`` with ``files`` ({name: bytes}) all at once: written into a hidden sibling
    folder, then renamed to ``out``, which must not exist or be empty."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, data in files.items():
            atomic_write_bytes(tmp / name, data)
        if out.is_dir():
            out.rmdir()  # raises unless empty
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _canonical(meta: Any) -> bytes:
    return json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=True).encode()


def _sealed(weights_sha256: str, meta: dict) -> str:
    """The format-2 ``sha256``: the weights' hash and the canonical description, hashed together."""
    return hashlib.sha256(b"lstmkit-checkpoint-2\n" + weights_sha256.encode() + b"\n" + _canonical(meta)).hexdigest()


def _model_json(blob: bytes, meta: dict) -> bytes:
    """``model.json``'s bytes for the weights file ``blob`` described by ``meta`` (a JSON object)."""
    weights_sha256 = hashlib.sha256(blob).hexdigest()
    return json.dumps({"format_version": FORMAT_VERSION, "weights_sha256": weights_sha256,
                       "sha256": _sealed(weights_sha256, meta), "meta": meta},
                      indent=1, sort_keys=True, allow_nan=False).encode()


def save_checkpoint(directory: str | os.PathLike, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``model.safetensors`` (the tensors) and ``model.json`` (``meta`` + integrity data)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    try:  # hashed as it will read back (tuples become lists, keys strings)
        meta = json.loads(json.dumps(meta, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ValueError(f"meta must be JSON-serialisable (no NaN/inf): {e}") from None
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    blob = st_save(tensors)
    meta_bytes = _model_json(blob, meta)
    atomic_write_bytes(directory / WEIGHTS, blob)
    atomic_write_bytes(directory / META, meta_bytes)


def _foreign(blob: bytes) -> str | None:
    """None when ``blob`` has the shape of a safetensors file (u64 little-endian header length N,
    at least 8 + N bytes, a header that opens a JSON object), else what its first bytes say it is."""
    if len(blob) >= 8:
        n = int.from_bytes(blob[:8], "little")
        if 8 + n <= len(blob) and _HEADER_START.match(blob, 8, 8 + n):
            return None
    if blob[:1] == b"\x80" and blob[1:2] >= b"\x02":  # PROTO opcode, protocol 2 or later
        return "is a Python pickle"
    if blob[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "is a zip (torch.save) archive"
    return _NOT_SAFETENSORS


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
    foreign = _foreign(blob)
    refusal = "refused without unpickling: lstmkit reads safetensors only"
    if foreign is not None and foreign != _NOT_SAFETENSORS:  # named by its magic bytes: no need to go on
        raise ValueError(f"{weights} {foreign}, {refusal}")
    try:
        info = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{meta_path} is not valid JSON ({e})") from None
    except RecursionError:
        raise ValueError(f"{meta_path} is not an lstmkit checkpoint description (nested too deeply)") from None
    version = info.get("format_version") if isinstance(info, dict) else None
    if type(version) is not int or version not in (1, 2) or not isinstance(info.get("weights_sha256"), str) \
            or (version == 2 and not isinstance(info.get("sha256"), str)):
        raise ValueError(f"{meta_path} is not an lstmkit checkpoint description (format_version 1 or 2)")
    meta = info.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}: 'meta' must be a JSON object, got {type(meta).__name__}")
    if hashlib.sha256(blob).hexdigest() != info["weights_sha256"]:  # a file cut inside its header is "truncated"
        raise ValueError(f"{weights} {_NOT_SAFETENSORS + ' and ' if foreign else ''}does not match the SHA-256 "
                         f"recorded in {meta_path}: truncated, corrupted or replaced")
    if foreign:
        raise ValueError(f"{weights} {foreign}, {refusal}")
    if version == 2:
        try:
            sealed = _sealed(info["weights_sha256"], meta)
        except (ValueError, RecursionError):  # NaN/inf or nesting the writer never produces
            sealed = None
        if sealed != info["sha256"]:
            raise ValueError(f"{meta_path} was edited: its contents do not match the SHA-256 recorded in it, so the "
                             "model it describes may not be the one trained; restore the file or save the model again")
    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError) as e:
        raise ValueError(f"{weights} is not a valid safetensors file ({e})") from None
    return {k: v.to(device) for k, v in tensors.items()}, meta
