"""lstmkit.export: trained run directories as files other runtimes read.

- :func:`export_onnx`: a classification or forecasting run directory -> ``model.onnx`` plus its
  description ``model.onnx.json`` (inputs, outputs, preprocessing, classes or forecast settings,
  opset), with dynamic batch and time axes and variable lengths handled inside the graph; a series
  classifier's graph standardises raw series itself unless asked not to.
- :class:`ExportRecurrent` (:mod:`.recurrent`): an LSTM/GRU/RNN encoder as fused ONNX operators,
  lengths through gathers and masks.
- :func:`run_export_command`: the ``lstmkit export`` subcommand (its parser is in :mod:`lstmkit.cli_runs`).
"""

from .onnx import DEFAULT_OPSET, FORMATS, ExportRecurrent, export_onnx, run_export_command

__all__ = ["DEFAULT_OPSET", "FORMATS", "ExportRecurrent", "export_onnx", "run_export_command"]
