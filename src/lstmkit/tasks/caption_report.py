"""The report of a captioning run (:mod:`lstmkit.tasks.caption`): ``report.md`` with BLEU and exact
match for the model (greedy and beam, test and validation) and the baselines, example captions,
the per-word attention PNGs and the learning curves."""

from __future__ import annotations

from pathlib import Path

from ..checkpoint import atomic_write_bytes
from ..eval.plots import plot_learning_curves

__all__ = ["write_report"]


def write_report(out: Path, config: dict, metrics: dict, history: list, best_epoch: int, attention_files: list
                 ) -> None:
    """``report.md`` and ``learning_curves.png`` of a captioning run from its resolved ``config`` and
    ``metrics`` (metrics.json's dict)."""
    plot_learning_curves(history, out / "learning_curves.png", metric="bleu4", best_epoch=best_epoch)
    f = lambda v: f"{v:.3f}"  # noqa: E731
    rows = [("model, greedy (test)", metrics["test"]["greedy"]), (f"model, beam {metrics['beam']} (test)",
                                                                  metrics["test"]["beam"]),
            ("model, greedy (val)", metrics["val"]["greedy"]), (f"model, beam {metrics['beam']} (val)",
                                                                metrics["val"]["beam"]),
            ("baseline: most frequent caption (test)", metrics["baselines"]["most_frequent_caption"]),
            ("baseline: nearest training image (test)", metrics["baselines"]["nearest_neighbour"])]
    lines = [f"# Captioning run: {config['data']['source']}", "",
             f"{metrics['n_train']} train / {metrics['n_val']} validation / {metrics['n_test']} test images; "
             f"{metrics['parameters']:,} parameters; {metrics['epochs']} epochs (best {metrics['best_epoch']}); "
             f"training {metrics['train_seconds']:.0f} s, {metrics['cpu_seconds']:.0f} CPU s in all; "
             f"seed {metrics['seed']}.",
             "", "BLEU on the 0-1 scale (sacrebleu corpus BLEU / 100, all references); exact: the caption equals one "
             "of its references.", "", "| | BLEU-1 | BLEU-2 | BLEU-3 | BLEU-4 | exact |", "|---|---|---|---|---|---|"]
    lines += [f"| {label} | " + " | ".join(f(m[k]) for k in ("bleu1", "bleu2", "bleu3", "bleu4", "exact")) + " |"
              for label, m in rows]
    lines += ["", "## Test examples", "", "| # | greedy | beam | references |", "|---|---|---|---|"]
    lines += [f"| {e['index']} | {e['greedy']} | {e['beam']} | {' / '.join(e['references'])} |"
              for e in metrics["examples"]]
    lines += ["", "## Attention per generated word (beam search)", ""] + [f"![]({a})" for a in attention_files]
    lines += ["", "## Learning curves", "", "![](learning_curves.png)", ""]
    atomic_write_bytes(out / "report.md", "\n".join(lines).encode())
