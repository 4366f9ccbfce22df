import json
import pickle

import pytest
import torch

from lstmkit.checkpoint import META, WEIGHTS, load_checkpoint, save_checkpoint
from lstmkit.nn import LSTM


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
