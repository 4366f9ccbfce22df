"""``lstmkit explain``: why did the LSTM predict that?

- What the LSTM did: per-step input/forget/output gates, cell and hidden states of the explained
  sample, recorded by :func:`lstmkit.nn.gates.record_gates` (which leaves results bit-identical), and
  per-unit summaries over the input's samples (:mod:`.units`: gate saturation, forget-gate memory horizon).
- What the prediction rests on: Integrated Gradients through Captum with a stated baseline, attention
  weights where the model pools by attention, and a deletion faithfulness check (:mod:`.attribution`).
- :mod:`.core` turns a task's :class:`~.core.Subject` into ``explanation.json`` and PNGs (:mod:`.plots`);
  :mod:`.tasks` holds the classification and forecasting hooks the task registry names.

Needs the ``explain`` extra (Captum, matplotlib). docs/explain.md has worked examples.
"""

from .core import FILES, Subject, explain

__all__ = ["FILES", "Subject", "explain"]
