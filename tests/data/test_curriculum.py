"""Curriculum by length: the schedule's exact subsets per epoch, windows for equal lengths, wiring."""

import json

import numpy as np
import pytest
import torch

from lstmkit.cli import main
from lstmkit.data.collate import SequenceBatches
from lstmkit.data.curriculum import CurriculumBatches, LengthCurriculum
from lstmkit.tasks.trainer import TrainConfig, fit
from tests.tasks.helpers import write_npz


def test_schedule_gives_exact_subsets_per_epoch():
    lengths = np.array([5, 1, 9, 3, 7, 2, 10, 4, 8, 6])  # 1..10
    c = LengthCurriculum(lengths, start=0.3, epochs=4)
    assert [c.quantile(e) for e in (1, 2, 3, 4)] == pytest.approx([0.3, 0.55, 0.8, 1.0])
    assert [c.max_length(e) for e in (1, 2, 3, 4, 9)] == [3, 6, 8, 10, 10]  # ceil(q * 10)-th smallest
    assert sorted(lengths[c.subset(1)]) == [1, 2, 3] and sorted(lengths[c.subset(2)]) == [1, 2, 3, 4, 5, 6]
    assert len(c.subset(4)) == 10
    rows = c.schedule(5)
    assert [r["samples"] for r in rows] == [3, 6, 8, 10, 10] and rows[0] == {"epoch": 1, "quantile": 0.3,
                                                                           "max_length": 3, "samples": 3}


def _sequences(lengths, d=2):
    return [np.full((n, d), float(i), dtype=np.float32) for i, n in enumerate(lengths)]


def test_curriculum_batches_hold_exactly_the_epochs_subset_bucketed_by_length():
    lengths = [5, 1, 9, 3, 7, 2, 10, 4, 8, 6]
    base = SequenceBatches(_sequences(lengths), np.arange(10) % 2, batch_size=2, shuffle=True, seed=1)
    cb = CurriculumBatches(base, start=0.3, epochs=4, seed=1)
    for epoch, allowed in ((1, 3), (2, 6), (3, 8)):
        seen = []
        for x, lens, y in cb.batches(epoch):
            assert x.shape[1] == int(lens.max()) and len(lens) <= 2
            assert (lens <= allowed).all()
            seen += x[:, 0, 0].long().tolist()  # each sequence is filled with its index
            assert torch.equal(y, torch.as_tensor([i % 2 for i in x[:, 0, 0].long().tolist()]))
        assert sorted(seen) == sorted(i for i, n in enumerate(lengths) if n <= allowed)
    full = [tuple(t.tolist()) for b in cb.batches(5) for t in b[1:2]]
    assert full == [tuple(t.tolist()) for b in base.batches(5) for t in b[1:2]]  # after the warm-up: the plain epoch


def test_equal_lengths_get_random_windows_of_the_scheduled_length():
    seqs = [np.arange(20, dtype=np.float32)[:, None] + 100 * i for i in range(6)]
    base = SequenceBatches(seqs, np.zeros(6, dtype=int), batch_size=4, shuffle=True, seed=0)
    cb = CurriculumBatches(base, start=0.25, epochs=2, seed=0)
    assert cb.curriculum.equal and cb.curriculum.max_length(1) == 5 and cb.curriculum.max_length(2) == 15
    for x, lens, _ in cb.batches(1):
        assert x.shape[1] == 5 and (lens == 5).all()
        steps = x[..., 0] % 100
        assert torch.equal(steps[:, 1:] - steps[:, :-1], torch.ones(len(x), 4))  # consecutive steps of the series
    again = [b[0] for b in cb.batches(1)]
    assert all(torch.equal(a, b[0]) for a, b in zip(again, cb.batches(1)))  # seeded


def test_fit_refuses_a_curriculum_the_batches_do_not_carry():
    net = torch.nn.Linear(2, 2)
    batch = (torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="train.curriculum 'length' needs length-bucketed sequence batches"):
        fit(net, lambda e: [batch], [batch], lambda m, b: torch.nn.functional.cross_entropy(m(b[0]), b[1]),
            lambda m, bs: {"loss": 0.0}, TrainConfig(epochs=1, curriculum="length", progress="off"))


def test_classify_run_records_the_schedule(tmp_path):
    data = write_npz(tmp_path / "train.npz", 60, seed=0)
    test = write_npz(tmp_path / "test.npz", 20, seed=1)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"task: classify\ndata: {{train: {data}, test: {test}}}\nmodel: {{name: rnn_classifier, "
                   "hidden_size: 8}\ntrain: {epochs: 3, batch_size: 16, progress: 'off', curriculum: length, "
                   "curriculum_start: 0.5, curriculum_epochs: 2}\n")
    assert main(["-q", "train", str(cfg), "--out", str(tmp_path / "run")]) == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    rows = m["curriculum"]
    assert [r["quantile"] for r in rows] == [0.5, 1.0, 1.0] and rows[0]["samples"] < rows[1]["samples"]
