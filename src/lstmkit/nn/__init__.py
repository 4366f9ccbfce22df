"""lstmkit.nn: the LSTM core. Depends on torch and numpy only.

- :class:`LSTM`, :class:`LSTMCell`: torch's interface and parameter names, lengths on every
  call, a fused fast path, and the variants of :class:`VariantConfig`.
- :func:`create_pool`: lengths-aware sequence pooling (last, mean, max, attention).
- :class:`ReNetLayer`: ReNet's two bidirectional sweeps over an image's patch grid.
- :class:`RowLSTM`, :class:`DiagonalBiLSTM`, :class:`MaskedConv2d`: PixelRNN's layers.
- :class:`ConvLSTM`, :class:`ConvLSTMCell`: Shi et al.'s convolutional LSTM with peepholes.
- :class:`SLSTM`, :class:`MLSTM`, :class:`MinLSTM`: xLSTM's sLSTM and mLSTM (Beck et al. 2024) and
  minLSTM (Feng et al. 2024), with torch.nn.LSTM's interface, lengths and a step API;
  :func:`create_recurrent` by name, :class:`ResidualRecurrent` blocks, :class:`RecurrentStream`.
- :mod:`lstmkit.nn.reference`: a NumPy LSTM with hand-written backpropagation through time.
"""

from . import reference
from .cell import LSTMCell, LSTMState, lstm_cell_step
from .convlstm import ConvLSTM, ConvLSTMCell
from .lengths import reverse_padded
from .lstm import LSTM, SequenceMasks
from .minlstm import MinLSTM, MinLSTMState
from .mlstm import MLSTM, MLSTMState
from .modern import RecurrentStream, ResidualRecurrent, create_recurrent, list_recurrent
from .pixelrnn import DiagonalBiLSTM, MaskedConv2d, RowLSTM, skew, unskew
from .pooling import SequencePool, create_pool, list_pools
from .recurrence import lstm_recurrence
from .slstm import SLSTM, SLSTMState
from .stream import KernelUnavailable, LSTMStream
from .sweep2d import ReNetLayer
from .variants import VariantConfig, parse_variants

__all__ = [
    "LSTM",
    "LSTMCell",
    "LSTMState",
    "LSTMStream",
    "KernelUnavailable",
    "SequenceMasks",
    "SequencePool",
    "create_pool",
    "list_pools",
    "VariantConfig",
    "lstm_cell_step",
    "lstm_recurrence",
    "parse_variants",
    "reference",
    "reverse_padded",
    "ReNetLayer",
    "ConvLSTM",
    "ConvLSTMCell",
    "MaskedConv2d",
    "RowLSTM",
    "DiagonalBiLSTM",
    "skew",
    "unskew",
    "SLSTM",
    "SLSTMState",
    "MLSTM",
    "MLSTMState",
    "MinLSTM",
    "MinLSTMState",
    "ResidualRecurrent",
    "RecurrentStream",
    "create_recurrent",
    "list_recurrent",
]
