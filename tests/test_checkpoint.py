import hashlib
import json
import os
import pickle
import stat

import numpy as np
import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as save_file_bytes

from lstmkit.checkpoint import META, WEIGHTS, _model_json, atomic_write_bytes, load_checkpoint, save_checkpoint
from lstmkit.data.preprocess import LabelMap, Standardizer
from lstmkit.models import create_model
from lstmkit.nn import LSTM
from lstmkit.tasks.classify import Classifier, Preprocessor, load_classifier


def test_round_trip(tmp_path):
    m = LSTM(3, 4, 2, bidirectional=True, peephole=True)
    save_checkpoint(tmp_path / "run", m.state_dict(), {"labels": ["a", "b"], "hidden": 4})
    sd, meta = load_checkpoint(tmp_path / "run")
    assert meta == {"labels": ["a", "b"], "hidden": 4}
    m2 = LSTM(3, 4, 2, bidirectional=True, peephole=True)
    m2.load_state_dict(sd)
    x = torch.randn(5, 2, 3)
    assert torch.equal(m(x)[0], m2(x)[0])
    assert not list((tmp_path / "run").glob("*.tmp"))  # no temporary files left behind


class _Boom:
    def __reduce__(self):
        return (pytest.fail, ("unpickled a user file!",))


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_pickles_are_refused_without_executing(tmp_path, kind):
    save_checkpoint(tmp_path, {"w": torch.ones(2)}, {})
    if kind == "pickle":
        (tmp_path / WEIGHTS).write_bytes(pickle.dumps(_Boom()))
    else:
        torch.save({"w": _Boom()}, tmp_path / WEIGHTS)
    with pytest.raises(ValueError, match="refused without unpickling"):
        load_checkpoint(tmp_path)


def test_truncated_tampered_and_broken_files(tmp_path):
    save_checkpoint(tmp_path, {"w": torch.arange(10.0)}, {"k": 1})
    blob = (tmp_path / WEIGHTS).read_bytes()
    (tmp_path / WEIGHTS).write_bytes(blob[:-8])
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        load_checkpoint(tmp_path)
    (tmp_path / WEIGHTS).write_bytes(blob[:-4] + b"\x00\x00\x80\x7f")  # same length, one value changed
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        load_checkpoint(tmp_path)
    (tmp_path / WEIGHTS).write_bytes(blob)
    (tmp_path / META).write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_checkpoint(tmp_path)
    (tmp_path / META).write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ValueError, match="not an lstmkit checkpoint description"):
        load_checkpoint(tmp_path)
    (tmp_path / META).unlink()
    with pytest.raises(FileNotFoundError, match="model.json is missing"):
        load_checkpoint(tmp_path)


def test_meta_must_be_json(tmp_path):
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_checkpoint(tmp_path, {"w": torch.ones(1)}, {"x": float("nan")})
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_checkpoint(tmp_path, {"w": torch.ones(1)}, {"x": object()})
    assert not (tmp_path / WEIGHTS).exists()  # nothing written half-way


# ------------------------------------------------------------ safetensors of any header length (item 1)

def _repadded(blob: bytes, low: int) -> bytes:
    """``blob`` (a safetensors file) with its header padded by spaces to a length N, N % 256 == low:
    other writers than safetensors' own (which pads to a multiple of 8) write any length."""
    n = int.from_bytes(blob[:8], "little")
    header, data = blob[8:8 + n].rstrip(b" "), blob[8 + n:]
    n = len(header) + (low - len(header)) % 256
    return n.to_bytes(8, "little") + header.ljust(n, b" ") + data


def test_every_safetensors_header_length_loads(tmp_path):
    """A safetensors file loads whatever the low byte of its header length (0x80, a pickle's first
    byte, among them); safetensors reads headers of any length, padded or not."""
    lows = set()
    for low in range(256):
        sd = {"w": torch.arange(float(low % 7 + 1))}
        blob = _repadded(save_file_bytes(sd), low)
        assert blob[0] == low and torch.equal(st_load(blob)["w"], sd["w"])  # safetensors itself reads it
        (tmp_path / WEIGHTS).write_bytes(blob)
        (tmp_path / META).write_bytes(_model_json(blob, {"low": low}))
        got, meta = load_checkpoint(tmp_path)
        assert torch.equal(got["w"], sd["w"]) and meta == {"low": low}
        lows.add(blob[0])
    assert lows == set(range(256))


def test_save_checkpoint_round_trips_every_header_length_it_writes(tmp_path):
    """What save_checkpoint writes (safetensors pads headers to 8 bytes) loads for every low byte
    its header length can have, 0x80 (a pickle's first byte) among them."""
    lows = set()
    for extra in range(0, 256, 4):  # the tensor name's length steers the header length
        save_checkpoint(tmp_path, {"w" + "x" * extra: torch.ones(2)}, {"extra": extra})
        lows.add((tmp_path / WEIGHTS).read_bytes()[0])
        assert load_checkpoint(tmp_path)[1] == {"extra": extra}
    assert lows == set(range(0, 256, 8)) and 0x80 in lows


def test_header_length_reading_pk_is_not_a_zip(tmp_path):
    """A header 0x4B50 bytes long: the file starts with b"PK" like a zip, and is safetensors."""
    w = torch.full((3,), 2.0)
    base = len(save_file_bytes({"": w})[8:].split(b"}}")[0]) + 2  # the header's length for an empty name
    name = "n" * (0x4B50 - base)
    save_checkpoint(tmp_path, {name: w}, {"pk": True})
    assert (tmp_path / WEIGHTS).read_bytes()[:2] == b"PK"
    sd, meta = load_checkpoint(tmp_path)
    assert torch.equal(sd[name], w) and meta == {"pk": True}


class _Flag:
    """Unpickling this creates the directory ``path``: a trap that shows whether anything was unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


_FOREIGN = [("torch.save", r"is a zip \(torch.save\) archive, refused without unpickling"),
            ("torch.save-legacy", r"is a Python pickle, refused without unpickling"),
            *[(f"pickle-{p}", r"is a Python pickle, refused without unpickling" if p >= 2 else
               r"is not a safetensors file") for p in range(pickle.HIGHEST_PROTOCOL + 1)]]


@pytest.mark.parametrize("forged", [False, True], ids=["hash-kept", "hash-forged"])
@pytest.mark.parametrize("kind, message", _FOREIGN, ids=[k for k, _ in _FOREIGN])
def test_foreign_files_are_refused_by_name_without_unpickling(tmp_path, kind, message, forged):
    flag = tmp_path / "unpickled"
    run = tmp_path / "run"
    save_checkpoint(run, {"w": torch.ones(2)}, {"k": 1})
    if kind.startswith("pickle-"):
        blob = pickle.dumps({"w": _Flag(flag)}, protocol=int(kind.split("-")[1]))
        pickle.loads(blob)  # the trap is armed
        assert flag.is_dir()
        flag.rmdir()
        (run / WEIGHTS).write_bytes(blob)
    else:
        archive = tmp_path / "archive.pt"  # torch.load reads a *.safetensors name with safetensors
        torch.save({"w": _Flag(flag)}, archive, _use_new_zipfile_serialization=kind == "torch.save")
        torch.load(archive, weights_only=False)  # the trap is armed
        assert flag.is_dir()
        flag.rmdir()
        (run / WEIGHTS).write_bytes(archive.read_bytes())
    if forged:  # a model.json forged to match: the file is still refused for what it is
        (run / META).write_bytes(_model_json((run / WEIGHTS).read_bytes(), {"k": 1}))
    with pytest.raises(ValueError, match=f"{WEIGHTS} {message}") as e:
        load_checkpoint(run)
    if not forged and message == r"is not a safetensors file":
        assert "does not match the SHA-256" in str(e.value)
    elif message == r"is not a safetensors file":
        assert "refused without unpickling" in str(e.value)
    assert not flag.exists()


# ------------------------------------------------------------ model.json is covered by the hash (item 5)

def _classifier_run(directory):
    spec = {"name": "rnn_classifier", "input_size": 2, "num_classes": 3, "hidden_size": 4, "pooling": "mean"}
    pre = Preprocessor("series", LabelMap.fit(["a", "b", "c"]), 2,
                       Standardizer.fit([np.arange(10.0).reshape(5, 2)]), None)
    torch.manual_seed(0)
    Classifier(create_model(spec["name"], **{k: v for k, v in spec.items() if k != "name"}), pre, spec).save(directory)
    return directory


@pytest.mark.parametrize("field", ["classes", "mean", "pooling", "hidden_size"])
def test_edited_description_is_refused(tmp_path, field):
    """Everything a prediction depends on is hashed: an edit is named as one, not as a torch error."""
    run = _classifier_run(tmp_path / "run")
    x = [np.ones((4, 2))]
    before = load_classifier(run).predict_proba(x)
    text = (run / META).read_text()
    info = json.loads(text)
    assert info["format_version"] == 2 and info["weights_sha256"] and info["sha256"]
    pre, model = info["meta"]["preprocess"], info["meta"]["model"]
    if field == "classes":
        assert "a" in pre["labels"]["classes"]
        pre["labels"] = json.loads(json.dumps(pre["labels"]).replace('"a"', '"z"'))
    elif field == "mean":
        pre["standardizer"]["mean"][0] += 1.0
    elif field == "pooling":
        model["pooling"] = "max"
    else:
        model["hidden_size"] = 8
    assert info != json.loads(text)
    (run / META).write_text(json.dumps(info))
    with pytest.raises(ValueError, match=rf"{run / META} was edited: its contents do not match the SHA-256 "
                                         "recorded in it"):
        load_classifier(run)
    (run / META).write_text(json.dumps(json.loads(text)))  # another layout of the same content is no edit
    np.testing.assert_array_equal(load_classifier(run).predict_proba(x), before)


def test_format_1_files_still_load_with_their_weights_checked(tmp_path):
    save_checkpoint(tmp_path, {"w": torch.arange(4.0)}, {"labels": ["a", "b"]})
    blob = (tmp_path / WEIGHTS).read_bytes()
    v1 = {"format_version": 1, "weights_sha256": hashlib.sha256(blob).hexdigest(), "meta": {"labels": ["a", "b"]}}
    (tmp_path / META).write_text(json.dumps(v1, indent=1, sort_keys=True))
    sd, meta = load_checkpoint(tmp_path)
    assert torch.equal(sd["w"], torch.arange(4.0)) and meta == {"labels": ["a", "b"]}
    (tmp_path / META).write_text(json.dumps({**v1, "meta": {"labels": ["b", "a"]}}))
    assert load_checkpoint(tmp_path)[1] == {"labels": ["b", "a"]}  # format 1: meta is not covered (documented)
    (tmp_path / WEIGHTS).write_bytes(blob[:-4] + b"\x00\x00\x80\x7f")
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        load_checkpoint(tmp_path)
    (tmp_path / META).write_text(json.dumps({**v1, "format_version": 2}))  # format 2 without its "sha256"
    with pytest.raises(ValueError, match="not an lstmkit checkpoint description"):
        load_checkpoint(tmp_path)


# ------------------------------------------------------------ file modes follow the umask (item 7)

@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_are_written_with_the_umask_mode(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        save_checkpoint(tmp_path, {"w": torch.ones(1)}, {})
        atomic_write_bytes(tmp_path / "metrics.json", b"{}")
        atomic_write_bytes(tmp_path / "metrics.json", b"{}")  # replacing a file too
    finally:
        os.umask(old)
    for name in (WEIGHTS, META, "metrics.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_writing_into_a_missing_directory_names_the_path_not_a_temporary_file(tmp_path):
    from lstmkit.checkpoint import atomic_write_bytes

    target = tmp_path / "missing_dir" / "p.csv"
    with pytest.raises(FileNotFoundError, match=rf"cannot write {target}: directory {target.parent} does not exist") as e:
        atomic_write_bytes(target, b"x")
    assert ".tmp" not in str(e.value)


def test_a_folder_is_written_whole_or_not_at_all(tmp_path):
    from lstmkit.checkpoint import atomic_write_dir

    out = tmp_path / "deep" / "bt"
    atomic_write_dir(out, {"a.csv": b"x,y\n", "b.json": b"{}"})
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.json"] and (out / "a.csv").read_bytes() == b"x,y\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    atomic_write_dir(empty, {"c.md": b"# c"})  # an empty folder is replaced
    assert [p.name for p in empty.iterdir()] == ["c.md"]
    with pytest.raises(OSError):  # a folder with files is not
        atomic_write_dir(out, {"d.md": b"d"})
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep", "empty"]  # no temporary folder left
    assert [p.name for p in out.parent.iterdir()] == ["bt"]
