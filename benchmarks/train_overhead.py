"""Training-loop overhead: ``lstmkit train`` on digits against a minimal hand-written torch loop.

All contenders train the same model (same seed, same initial weights) on the same
length-grouped batches for the same number of epochs, in this process:

- ``minimal``: the shortest correct loop (AdamW, clip_grad_norm_, no validation);
- ``minimal+val``: the same plus one validation forward pass per epoch (what any loop with
  early stopping does);
- ``lstmkit fit``: :func:`lstmkit.tasks.trainer.fit` (validation metrics, ReduceLROnPlateau,
  best-weights copies, gradient-norm logging, NaN checks), timed as ``train_seconds``;
- ``lstmkit train``: the whole :func:`train_classifier` run (loading digits, training,
  test evaluation, writing the run directory with plots and report);
- ``lightning`` (only when the ``lightning`` package is installed): a LightningModule with the
  same steps and validation, progress bar, logger and checkpointing off.

Each contender runs once to warm up, then ``--repeats`` rounds run every contender in turn; the
median is reported, with the ratio minimal / contender (goal for ``lstmkit fit``: >= 0.8).

    python benchmarks/train_overhead.py --epochs 20 --repeats 3 --out benchmarks/results/train_overhead.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from lstmkit.tasks.classify import ClassifyConfig, fit_classifier, load_data, prepare_training, train_classifier  # noqa: E402
from lstmkit.tasks.config import apply_overrides, build, load_yaml  # noqa: E402

PRESET = os.path.join(os.path.dirname(__file__), "..", "src", "lstmkit", "configs", "classify", "digits.yaml")


def _config(epochs: int) -> ClassifyConfig:
    data = apply_overrides(load_yaml(PRESET), [f"train.epochs={epochs}", "train.early_stopping=null", "train.progress=off"])
    return build(ClassifyConfig, data)


def _setup(cfg: ClassifyConfig):
    """The exact model, batches and split that lstmkit's own run starts from."""
    (x, y), _ = load_data(cfg.data)
    p = prepare_training(x, y, cfg.model, cfg.train, cfg.data.normalize)
    return p.model, p.train_set, p.val_set


def minimal_loop(cfg: ClassifyConfig, validate: bool) -> float:
    model, train, val = _setup(cfg)
    t = cfg.train
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    val_batches = list(val)
    start = time.perf_counter()
    for epoch in range(1, t.epochs + 1):
        model.train()
        for x, lengths, y in train.batches(epoch):
            loss = F.cross_entropy(model(x, lengths), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip_norm)
            opt.step()
        if validate:
            model.eval()
            with torch.no_grad():
                _ = [F.cross_entropy(model(x, n), y).item() for x, n, y in val_batches]
    return time.perf_counter() - start


def lstmkit_fit(cfg: ClassifyConfig) -> float:
    (x, y), _ = load_data(cfg.data)
    _, result, _ = fit_classifier(x, y, cfg.model, cfg.train, cfg.data.normalize)
    return result.seconds


def lstmkit_train(cfg: ClassifyConfig) -> float:
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        train_classifier(cfg, d)
        return time.perf_counter() - start


def lightning_loop(cfg: ClassifyConfig) -> float | None:
    try:
        import lightning as L
    except ImportError:
        return None
    model, train, val = _setup(cfg)
    t = cfg.train

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = model

        def training_step(self, batch, _):
            x, n, y = batch
            return F.cross_entropy(self.net(x, n), y)

        def validation_step(self, batch, _):
            x, n, y = batch
            self.log("val_loss", F.cross_entropy(self.net(x, n), y), prog_bar=False)

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=t.lr, weight_decay=t.weight_decay)

    class Batches:  # a plain iterable of ready batches (train re-shuffled per epoch, like the others)
        def __init__(self, source, shuffle):
            self.source, self.shuffle, self.epoch = source, shuffle, 0

        def __iter__(self):
            self.epoch += 1
            return self.source.batches(self.epoch) if self.shuffle else iter(self.source)

        def __len__(self):
            return len(self.source)

    for name in ("lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    trainer = L.Trainer(max_epochs=t.epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=t.clip_norm,
                        num_sanity_val_steps=0)
    start = time.perf_counter()
    trainer.fit(Module(), train_dataloaders=Batches(train, True), val_dataloaders=Batches(val, False))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="write JSON results here")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    cfg = _config(args.epochs)
    contenders = {
        "minimal": lambda: minimal_loop(cfg, validate=False),
        "minimal+val": lambda: minimal_loop(cfg, validate=True),
        "lstmkit fit": lambda: lstmkit_fit(cfg),
        "lstmkit train (end to end)": lambda: lstmkit_train(cfg),
        "lightning": lambda: lightning_loop(cfg),
    }
    times: dict[str, list[float]] = {}
    for name, run in contenders.items():
        if run() is None:  # warm-up; None: not installed
            print(f"{name:28s} skipped (not installed)")
            continue
        times[name] = []
    for _ in range(args.repeats):  # rounds interleave the contenders, so drift hits all alike
        for name in times:
            times[name].append(contenders[name]())
    base = statistics.median(times["minimal"])
    rows = []
    print(f"digits, {args.epochs} epochs, {torch.get_num_threads()} thread(s), median of {args.repeats}")
    print(f"{'contender':28s} {'seconds':>8s} {'minimal / it':>13s}")
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append({"contender": name, "median_s": med, "runs_s": ts, "ratio_minimal_over_this": base / med})
        print(f"{name:28s} {med:8.2f} {base / med:13.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
                       "threads": torch.get_num_threads(), "torch": torch.__version__, "epochs": args.epochs,
                       "repeats": args.repeats, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
